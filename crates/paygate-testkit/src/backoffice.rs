//! Test helpers for the back office: a cookie-keeping browser-like client, sign-in, the CSRF
//! token of a page, field errors, and users made through the admin API.
//!
//! ```ignore
//! let app = TestApp::spawn(backend).await;
//! let company = unique("co");
//! app.create_company(&company).await;
//! let (email, password) = app.company_user(&company, "admin").await;
//! let b = Browser::new(&app);
//! b.sign_in(&email, &password).await;
//! let page = b.get("/app/users").await;          // keeps the page's CSRF token
//! assert_eq!(page.status, StatusCode::OK);
//! let res = b.post_form("/app/users", &[("email", "x"), ("role", "viewer")]).await;
//! assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
//! assert!(res.field_error("email").is_some());
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;

use crate::{TestApp, unique};

/// A password every test user gets.
pub const USER_PASSWORD: &str = "a long enough test password";

/// A response of the back office.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The CSRF token of the page's forms (`name="csrf" value="…"`).
    pub fn csrf(&self) -> Option<String> {
        csrf_of(&self.body)
    }
    /// The `Location` of a redirect.
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }
    /// Every `Set-Cookie` header, raw (to check attributes).
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
    /// The raw `Set-Cookie` header that sets `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }
    /// The message shown next to `field` (`<p class="field-error" id="FIELD-error">`), or the
    /// form-level one for `"form"`.
    pub fn field_error(&self, field: &str) -> Option<String> {
        let marker = format!("id=\"{field}-error\">");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('<')? + start;
        Some(unescape(&self.body[start..end]))
    }
    /// The body with HTML character references decoded: the text a reader sees (markup
    /// aside). `!page.contains(raw) && page.text().contains(raw)` shows that `raw` was
    /// rendered as text.
    pub fn text(&self) -> String {
        unescape(&self.body)
    }
    /// Whether the body contains `text`.
    pub fn contains(&self, text: &str) -> bool {
        self.body.contains(text)
    }
    /// Every `href` of the page, decoded.
    pub fn links(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(i) = rest.find("<a ") {
            let tag_end = rest[i..].find('>').map_or(rest.len(), |e| i + e);
            if let Some(h) = attr(&rest[i..tag_end], "href") {
                out.push(h);
            }
            rest = &rest[tag_end..];
        }
        out
    }
    /// Every form of the page with the fields a browser would send by default (hidden and
    /// text inputs with their values, checked boxes, selected options, text areas, the first
    /// named submit button).
    pub fn forms(&self) -> Vec<Form> {
        let mut out = Vec::new();
        let mut rest = self.body.as_str();
        while let Some(i) = rest.find("<form") {
            let open_end = rest[i..].find('>').map_or(rest.len(), |e| i + e);
            let close = rest[open_end..]
                .find("</form>")
                .map_or(rest.len(), |e| open_end + e);
            let open = &rest[i..open_end];
            out.push(Form {
                method: attr(open, "method")
                    .unwrap_or_else(|| "get".into())
                    .to_ascii_lowercase(),
                action: attr(open, "action").unwrap_or_default(),
                fields: form_fields(&rest[open_end..close]),
            });
            rest = &rest[close..];
        }
        out
    }
    /// The header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A form of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// `get` or `post`.
    pub method: String,
    pub action: String,
    /// Name and value of each field sent by default, `csrf` included.
    pub fields: Vec<(String, String)>,
}

impl Form {
    /// The fields without `csrf`.
    pub fn fields_without_csrf(&self) -> Vec<(&str, &str)> {
        self.fields
            .iter()
            .filter(|(k, _)| k != "csrf")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// The value of attribute `name` in a tag's text (`<input name="x" …`), decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let mut from = 0;
    while let Some(i) = tag[from..].find(&needle) {
        let at = from + i;
        let preceded = tag[..at].chars().last().is_some_and(|c| c.is_whitespace());
        let start = at + needle.len();
        let end = tag[start..].find('"')? + start;
        if preceded {
            return Some(unescape(&tag[start..end]));
        }
        from = end;
    }
    None
}

fn has_flag(tag: &str, flag: &str) -> bool {
    tag.split(|c: char| c.is_whitespace() || c == '>')
        .any(|w| w == flag || w.starts_with(&format!("{flag}=")))
}

fn form_fields(inner: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut button_taken = false;
    let mut rest = inner;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        let end = rest.find('>').map_or(rest.len(), |e| e + 1);
        let tag = &rest[..end];
        let lower = tag.to_ascii_lowercase();
        let name = attr(tag, "name");
        if lower.starts_with("<input") {
            let ty = attr(tag, "type").unwrap_or_else(|| "text".into());
            let value = attr(tag, "value").unwrap_or_default();
            match (ty.as_str(), name) {
                ("submit" | "button" | "reset" | "file", _) | (_, None) => {}
                ("checkbox" | "radio", Some(n)) => {
                    if has_flag(tag, "checked") {
                        fields.push((n, if value.is_empty() { "on".into() } else { value }));
                    }
                }
                (_, Some(n)) => fields.push((n, value)),
            }
        } else if lower.starts_with("<select") {
            let close = rest.find("</select>").unwrap_or(rest.len());
            if let Some(n) = name {
                let options: Vec<&str> = rest[..close].split("<option").skip(1).collect();
                let chosen = options
                    .iter()
                    .find(|o| has_flag(o.split('>').next().unwrap_or(""), "selected"))
                    .or(options.first());
                if let Some(o) = chosen {
                    fields.push((n, attr(&format!(" {o}"), "value").unwrap_or_default()));
                }
            }
            rest = &rest[close..];
            continue;
        } else if lower.starts_with("<textarea") {
            let close = rest.find("</textarea>").unwrap_or(rest.len());
            if let Some(n) = name {
                fields.push((n, unescape(&rest[end.min(close)..close])));
            }
            rest = &rest[close..];
            continue;
        } else if lower.starts_with("<button")
            && !button_taken
            && let Some(n) = name
        {
            button_taken = true;
            fields.push((n, attr(tag, "value").unwrap_or_default()));
        }
        rest = &rest[end..];
    }
    fields
}

/// Decodes the character references an HTML escaper writes (`&lt;`, `&#60;`, `&#x3c;` …).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value of the first `name="csrf"` hidden field of an HTML page.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[at..].find('"')? + at;
    Some(html[at..end].to_owned())
}

/// A browser-like client: keeps cookies, follows no redirect (tests look at `Location`),
/// remembers the CSRF token of the last page it got.
#[derive(Debug)]
pub struct Browser {
    client: reqwest::Client,
    base_url: String,
    cookies: Mutex<BTreeMap<String, String>>,
    csrf: Mutex<Option<String>>,
    accept_language: Mutex<Option<String>>,
    /// Headers sent with every request (`X-Forwarded-For` of a test behind a proxy).
    extra_headers: Mutex<BTreeMap<String, String>>,
}

impl Browser {
    /// A browser with no cookies, pointed at `app`.
    pub fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base_url: app.base_url.clone(),
            cookies: Mutex::new(BTreeMap::new()),
            csrf: Mutex::new(None),
            accept_language: Mutex::new(None),
            extra_headers: Mutex::new(BTreeMap::new()),
        }
    }

    /// Sends header `name: value` with every request from now on (`None`: no longer).
    pub fn set_header(&self, name: &str, value: Option<&str>) {
        let mut h = self.extra_headers.lock().unwrap();
        match value {
            Some(v) => h.insert(name.to_owned(), v.to_owned()),
            None => h.remove(name),
        };
    }

    /// Sends `Accept-Language: value` from now on.
    pub fn set_accept_language(&self, value: &str) {
        *self.accept_language.lock().unwrap() = Some(value.to_owned());
    }

    /// A cookie's current value.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(name).cloned()
    }

    /// Sets (or, with `None`, drops) a cookie by hand.
    pub fn set_cookie(&self, name: &str, value: Option<&str>) {
        let mut c = self.cookies.lock().unwrap();
        match value {
            Some(v) => c.insert(name.to_owned(), v.to_owned()),
            None => c.remove(name),
        };
    }

    /// The CSRF token of the last page that had one.
    pub fn csrf(&self) -> Option<String> {
        self.csrf.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base_url)
        }
    }

    /// Sends a request with the cookies; records the answer's cookies and CSRF token.
    pub async fn send(&self, mut req: reqwest::RequestBuilder) -> Page {
        let cookie_header = {
            let c = self.cookies.lock().unwrap();
            c.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        if !cookie_header.is_empty() {
            req = req.header(reqwest::header::COOKIE, cookie_header);
        }
        if let Some(al) = self.accept_language.lock().unwrap().clone() {
            req = req.header(reqwest::header::ACCEPT_LANGUAGE, al);
        }
        for (name, value) in self.extra_headers.lock().unwrap().clone() {
            req = req.header(name, value);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap();
        let page = Page {
            status,
            headers,
            body,
        };
        {
            let mut jar = self.cookies.lock().unwrap();
            for raw in page.set_cookies() {
                let first = raw.split(';').next().unwrap_or("");
                let Some((name, value)) = first.split_once('=') else {
                    continue;
                };
                let lower = raw.to_ascii_lowercase();
                let removed = value.is_empty()
                    || lower.contains("max-age=0")
                    || lower.contains("expires=thu, 01 jan 1970");
                if removed {
                    jar.remove(name.trim());
                } else {
                    jar.insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
        if let Some(t) = page.csrf() {
            *self.csrf.lock().unwrap() = Some(t);
        }
        page
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Page {
        self.send(self.client.get(self.url(path))).await
    }

    /// `POST path` with `fields` urlencoded, exactly as given (no CSRF token added).
    pub async fn post_form_raw(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.send(self.client.post(self.url(path)).form(fields))
            .await
    }

    /// `POST path` with `fields` and the CSRF token of the last page (fetching `GET /signin`
    /// first when no page was seen yet).
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = match self.csrf() {
            Some(t) => t,
            None => {
                self.get("/signin").await;
                self.csrf().expect("the sign-in page has a CSRF token")
            }
        };
        let mut all: Vec<(&str, &str)> = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_form_raw(path, &all).await
    }

    /// Signs in through the form; asserts the redirect and returns it.
    pub async fn sign_in(&self, email: &str, password: &str) -> Page {
        let page = self.try_sign_in(email, password).await;
        assert_eq!(
            page.status,
            StatusCode::SEE_OTHER,
            "sign-in of {email} failed: {}",
            page.body
        );
        // Load the landing page so the session's CSRF token is known.
        let to = page.location().unwrap().to_owned();
        self.get(&to).await;
        page
    }

    /// Posts the sign-in form and returns the answer whatever it is.
    pub async fn try_sign_in(&self, email: &str, password: &str) -> Page {
        let form = self.get("/signin").await;
        let token = form.csrf().expect("the sign-in page has a CSRF token");
        self.post_form_raw(
            "/signin",
            &[("csrf", &token), ("email", email), ("password", password)],
        )
        .await
    }

    /// Signs out.
    pub async fn sign_out(&self) -> Page {
        self.post_form("/signout", &[]).await
    }
}

impl TestApp {
    /// A user of `company_id` with `role` (`admin` or `viewer`) and [`USER_PASSWORD`], made
    /// through the admin API; returns its e-mail and password.
    pub async fn company_user(&self, company_id: &str, role: &str) -> (String, String) {
        let email = format!("{}@example.test", unique(role));
        let (status, body) = self
            .admin_post(
                &format!("/admin/v1/companies/{company_id}/users"),
                json!({"email": email, "role": role, "password": USER_PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (email, USER_PASSWORD.to_owned())
    }

    /// A user of `company_id` invited without a password; returns its e-mail and the one-time
    /// invitation URL.
    pub async fn invite_user(&self, company_id: &str, role: &str) -> (String, String) {
        let email = format!("{}@example.test", unique("invited"));
        let (status, body) = self
            .admin_post(
                &format!("/admin/v1/companies/{company_id}/users"),
                json!({"email": email, "role": role}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (email, body["invitation_url"].as_str().unwrap().to_owned())
    }

    /// A company and an admin and a viewer of it: (company id, admin's browser, viewer's
    /// browser), both signed in.
    pub async fn company_with_users(&self) -> (String, Browser, Browser) {
        let company = unique("co");
        self.create_company(&company).await;
        let (admin, pw) = self.company_user(&company, "admin").await;
        let (viewer, vpw) = self.company_user(&company, "viewer").await;
        let a = Browser::new(self);
        a.sign_in(&admin, &pw).await;
        let v = Browser::new(self);
        v.sign_in(&viewer, &vpw).await;
        (company, a, v)
    }

    /// A browser signed in as the test operator.
    pub async fn operator_browser(&self) -> Browser {
        let b = Browser::new(self);
        b.sign_in(crate::OPERATOR_EMAIL, crate::OPERATOR_PASSWORD)
            .await;
        b
    }
}
