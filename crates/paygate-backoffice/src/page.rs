//! What every page shares: the layout's data ([`Page`]), field-level validation messages
//! ([`FieldErrors`]), the error type of page handlers ([`PageError`]) and the response helpers.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use paygate_db::Mode;
use paygate_tenant::TenantError;

use crate::i18n::Lang;
use crate::nav::{self, NavItem};
use crate::session::{Principal, SessionInfo};

/// What the guard middleware resolved for a request (language, CSRF token, session); put in
/// the request's extensions before any handler runs.
#[derive(Clone, Debug)]
pub struct RequestCtx {
    pub lang: Lang,
    /// The token forms must send back in `csrf`: the session's, or the visitor's pre-session
    /// token.
    pub csrf: String,
    pub session: Option<Arc<SessionInfo>>,
    /// A catalogue key to show once.
    pub flash: Option<String>,
    /// Path and query of the request (where the language switch comes back to).
    pub path: String,
    /// Whether cookies get `Secure` (public URL or request over https).
    pub secure: bool,
}

/// One link of the navigation.
#[derive(Clone, Debug)]
pub struct NavLink {
    /// The page it goes to.
    pub path: &'static str,
    /// The link: the path, with `?mode=` when the merchant chose a mode other than the
    /// company's environment and the page shows data (see [`Page::set_mode`]).
    pub href: String,
    pub label: String,
    pub current: bool,
    /// A data page (shows objects of one mode).
    pub data: bool,
}

/// The mode a data page shows, for the layout: the banner ("Test data") or the label ("Live
/// data"), and the link to the same page in the other mode.
#[derive(Clone, Debug)]
pub struct ModeBar {
    pub mode: Mode,
    /// The page in the other mode (its list, for the page of one object).
    pub switch_href: String,
}

impl ModeBar {
    /// Whether the page shows test data (the banner).
    pub fn is_test(&self) -> bool {
        self.mode == Mode::Test
    }
    /// `test` or `live`, for the hidden `mode` field of forms.
    pub fn code(&self) -> &'static str {
        self.mode.as_str()
    }
}

/// `path` with `mode=…` in its query (after what it already has).
pub fn mode_href(path: &str, mode: Mode) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}mode={}", mode.as_str())
}

/// Query parameters a link to the other mode drops: the mode itself and the cursors of the
/// lists (a cursor is a position in one mode's list).
const NOT_KEPT_ACROSS_MODES: [&str; 3] = ["mode", "before", "after"];

/// One button of the language switch.
#[derive(Clone, Debug)]
pub struct LangLink {
    pub code: &'static str,
    pub name: &'static str,
    pub current: bool,
}

/// The layout's data: every page template has it as its `ctx` field, and calls its helpers
/// (`ctx.t("key")`, `ctx.money(amount, currency)` …).
#[derive(Clone, Debug)]
pub struct Page {
    pub lang: Lang,
    /// The CSRF token: `<input type="hidden" name="csrf" value="{{ ctx.csrf }}">` in every form.
    pub csrf: String,
    /// The page title, translated.
    pub title: String,
    pub nav: Vec<NavLink>,
    pub langs: Vec<LangLink>,
    /// The signed-in e-mail address.
    pub who: Option<String>,
    /// The company of a signed-in user.
    pub company: Option<String>,
    /// Where the brand link goes.
    pub home: &'static str,
    pub flash: Option<String>,
    /// The current path, for the language switch.
    pub next: String,
    /// The operator console's pages have a different accent.
    pub console: bool,
    /// The mode of a data page; `None` on the other pages.
    pub mode: Option<ModeBar>,
    /// The signed-in company's environment: on a merchant page without a mode of its own
    /// (settings, keys, users) the layout's banner shows it, so the environment is in view on
    /// every `/app` page (issue 20). `None` outside the merchant pages.
    pub environment: Option<Mode>,
}

impl Page {
    /// The layout data for `rc`, titled by the catalogue key `title_key`.
    pub fn new(rc: &RequestCtx, title_key: &str) -> Self {
        let lang = rc.lang;
        let path_only = rc.path.split('?').next().unwrap_or("");
        let (items, who, company, home, console): (&[NavItem], _, _, _, _) =
            match rc.session.as_deref().map(|s| &s.principal) {
                Some(Principal::Operator { email, .. }) => {
                    (nav::CONSOLE, Some(email.clone()), None, "/console", true)
                }
                Some(Principal::User {
                    email,
                    company_name,
                    ..
                }) => (
                    nav::MERCHANT,
                    Some(email.clone()),
                    Some(company_name.clone()),
                    "/app",
                    false,
                ),
                None => (&[], None, None, "/signin", false),
            };
        let environment = match rc.session.as_deref().map(|s| &s.principal) {
            Some(Principal::User {
                company_environment,
                ..
            }) => Some(*company_environment),
            _ => None,
        };
        let current = nav::current(items, path_only);
        Self {
            lang,
            csrf: rc.csrf.clone(),
            title: lang.t(title_key).to_owned(),
            nav: items
                .iter()
                .map(|i| NavLink {
                    path: i.href,
                    href: i.href.to_owned(),
                    label: lang.t(i.key).to_owned(),
                    current: current == Some(i.href),
                    data: i.data,
                })
                .collect(),
            langs: Lang::ALL
                .iter()
                .map(|l| LangLink {
                    code: l.code(),
                    name: l.native_name(),
                    current: *l == lang,
                })
                .collect(),
            who,
            company,
            home,
            flash: rc.flash.as_deref().map(|k| lang.t(k).to_owned()),
            next: rc.path.clone(),
            console,
            mode: None,
            environment,
        }
    }

    /// Marks the page as showing data of `mode` (the company works in `environment`): the
    /// layout shows the mode, the "Test data" banner in test mode, and a link to the other mode
    /// — to the same page with the same filters when `switch_path` is this page's path, else to
    /// `switch_path` (the list, from the page of one object, which the other mode does not
    /// have). When `mode` is not the environment's, the menu's data pages keep it.
    pub fn set_mode(&mut self, mode: Mode, environment: Mode, switch_path: &str) {
        let other = match mode {
            Mode::Test => Mode::Live,
            Mode::Live => Mode::Test,
        };
        let (path, query) = self.next.split_once('?').unwrap_or((&self.next, ""));
        let mut kept: Vec<(String, String)> = if path == switch_path {
            serde_urlencoded::from_str::<Vec<(String, String)>>(query)
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, v)| !v.is_empty() && !NOT_KEPT_ACROSS_MODES.contains(&k.as_str()))
                .collect()
        } else {
            Vec::new()
        };
        kept.insert(0, ("mode".to_owned(), other.as_str().to_owned()));
        let switch_href = match serde_urlencoded::to_string(&kept) {
            Ok(q) => format!("{switch_path}?{q}"),
            Err(_) => mode_href(switch_path, other),
        };
        if mode != environment {
            for item in self.nav.iter_mut().filter(|i| i.data) {
                item.href = mode_href(item.path, mode);
            }
        }
        self.mode = Some(ModeBar { mode, switch_href });
    }

    /// Whether the environment banner of a page without a mode shows Test.
    pub fn environment_is_test(&self) -> bool {
        self.environment == Some(Mode::Test)
    }

    /// `path` in this page's mode (`path?mode=test`); `path` itself on a page without one.
    pub fn in_mode(&self, path: &str) -> String {
        match &self.mode {
            Some(m) => mode_href(path, m.mode),
            None => path.to_owned(),
        }
    }

    /// The text of a catalogue key.
    pub fn t<'a>(&self, key: &'a str) -> &'a str {
        self.lang.t(key)
    }
    /// The text of a key with `{0}` replaced.
    pub fn t1(&self, key: &str, a: &str) -> String {
        self.lang.format(key, &[a])
    }
    /// The text of a key with `{0}` and `{1}` replaced.
    pub fn t2(&self, key: &str, a: &str, b: &str) -> String {
        self.lang.format(key, &[a, b])
    }
    /// A date and time from epoch milliseconds (our `*_at` columns), UTC.
    pub fn datetime(&self, ms: impl Int) -> String {
        self.lang.datetime(ms.get())
    }
    /// A date and time from epoch seconds (Stripe's `created`), UTC.
    pub fn datetime_s(&self, secs: impl Int) -> String {
        self.lang.datetime(secs.get().saturating_mul(1000))
    }
    /// A date from epoch milliseconds, UTC.
    pub fn date(&self, ms: impl Int) -> String {
        self.lang.date(ms.get())
    }
    /// An amount in minor units of `currency` (`1999`, `"eur"` → `19,99 €` in Italian).
    pub fn money(&self, minor: impl Int, currency: &str) -> String {
        self.lang.money(minor.get(), currency)
    }
}

/// An integer as templates pass it (by value or by reference).
pub trait Int {
    fn get(self) -> i64;
}
impl Int for i64 {
    fn get(self) -> i64 {
        self
    }
}
impl Int for &i64 {
    fn get(self) -> i64 {
        *self
    }
}
impl Int for &&i64 {
    fn get(self) -> i64 {
        **self
    }
}
impl Int for i32 {
    fn get(self) -> i64 {
        self.into()
    }
}
impl Int for &i32 {
    fn get(self) -> i64 {
        (*self).into()
    }
}

/// Validation messages by field, translated, shown next to their field:
/// `{% if let Some(e) = errors.get("email") %}<p class="field-error">{{ e }}</p>{% endif %}`.
#[derive(Clone, Debug, Default)]
pub struct FieldErrors {
    items: Vec<(String, String)>,
}

impl FieldErrors {
    /// No errors.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a message for `field`, the text of `field_errors.<code>` (or `fallback` when the
    /// catalogue has no such key).
    pub fn add(&mut self, lang: Lang, field: &str, code: &str, fallback: &str) {
        let key = format!("field_errors.{code}");
        let text = if lang.has(&key) || Lang::En.has(&key) {
            lang.t(&key).to_owned()
        } else {
            fallback.to_owned()
        };
        self.items.push((field.to_owned(), text));
    }
    /// Adds an already translated message for `field`.
    pub fn add_text(&mut self, field: &str, text: String) {
        self.items.push((field.to_owned(), text));
    }
    /// The message of `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
    /// Whether `field` has a message (for `aria-invalid` and the error class).
    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }
    /// Whether there is no message at all.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Every message, in the form's order, as (field, message): the error summary at the top of
    /// the page (`backoffice/error_summary.html`) lists them, each linking to `#field`.
    pub fn items(&self) -> &[(String, String)] {
        &self.items
    }
    /// Adds every message of `other`, but none for a field that already has one.
    pub fn merge(&mut self, other: FieldErrors) {
        for (f, m) in other.items {
            if !self.has(&f) {
                self.items.push((f, m));
            }
        }
    }

    /// The field messages of a tenant-configuration error (`Invalid`, and a `Conflict` whose
    /// message starts with a field name); other errors are returned for `?`.
    pub fn from_tenant(lang: Lang, err: TenantError) -> Result<Self, PageError> {
        let mut fe = Self::new();
        match err {
            TenantError::Invalid {
                field,
                code,
                message,
            } => fe.add(lang, field, code, &message),
            TenantError::Conflict { code, message } => {
                let field = match message.split_once(':') {
                    Some((f, _)) if !f.contains(' ') => f.to_owned(),
                    _ => match code {
                        "company_exists" => "company_id".to_owned(),
                        _ => "form".to_owned(),
                    },
                };
                fe.add(lang, &field, code, &message);
            }
            other => return Err(other.into()),
        }
        Ok(fe)
    }

    /// The field message of a user error; other errors are returned for `?`.
    pub fn from_user(lang: Lang, err: paygate_tenant::users::UserError) -> Result<Self, PageError> {
        match err.field() {
            Some(field) => {
                let mut fe = Self::new();
                let msg = err.to_string();
                let fallback = msg.split_once(": ").map(|(_, m)| m).unwrap_or(&msg);
                fe.add(lang, field, err.code(), fallback);
                Ok(fe)
            }
            None => Err(err.into()),
        }
    }
}

/// Why a page could not be served. The guard middleware renders it as a page of the layout in
/// the visitor's language (403, 404, 500), or follows it (`Redirect`).
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not found")]
    NotFound,
    /// Not allowed for this principal.
    #[error("forbidden")]
    Forbidden,
    /// A viewer tried to change something.
    #[error("viewers cannot change anything")]
    ViewerForbidden,
    /// The form's CSRF token was missing or wrong.
    #[error("the form's security token is missing or wrong")]
    Csrf,
    /// A data page was asked for a mode that is neither `test` nor `live` (`?mode=…` or the
    /// hidden `mode` field): 400, rather than silently showing the other mode's data.
    #[error("mode must be test or live")]
    BadMode,
    /// Go elsewhere (303), e.g. to the sign-in page.
    #[error("redirect to {0}")]
    Redirect(String),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl PageError {
    /// 500, logging `cause`.
    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(cause))
    }
    /// The catalogue key of the message the error page shows.
    pub fn message_key(&self) -> &'static str {
        match self {
            PageError::NotFound => "errors.not_found",
            PageError::Forbidden => "errors.forbidden",
            PageError::ViewerForbidden => "errors.viewer_forbidden",
            PageError::Csrf => "errors.csrf",
            PageError::BadMode => "errors.bad_mode",
            PageError::Redirect(_) => "errors.not_found",
            PageError::Internal(_) => "errors.internal",
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::Forbidden | PageError::ViewerForbidden | PageError::Csrf => {
                StatusCode::FORBIDDEN
            }
            PageError::BadMode => StatusCode::BAD_REQUEST,
            PageError::Redirect(_) => StatusCode::SEE_OTHER,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    fn error_response(&self) -> HttpResponse {
        if let PageError::Internal(cause) = self {
            tracing::error!(cause = %paygate_web::error_chain(cause.as_ref()), "page failed");
        }
        match self {
            PageError::Redirect(to) => redirect(to),
            // Replaced by the guard with the page in the visitor's language.
            _ => HttpResponse::build(self.status_code())
                .content_type("text/plain; charset=utf-8")
                .body(Lang::En.t(self.message_key()).to_owned()),
        }
    }
}

impl From<sea_orm::DbErr> for PageError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::internal(e)
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        Self::internal(e)
    }
}

impl From<TenantError> for PageError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::NotFound(_) => PageError::NotFound,
            other => Self::internal(other),
        }
    }
}

impl From<paygate_tenant::users::UserError> for PageError {
    fn from(e: paygate_tenant::users::UserError) -> Self {
        use paygate_tenant::users::UserError as E;
        match e {
            E::NotFound | E::InvitationInvalid => PageError::NotFound,
            other => Self::internal(other),
        }
    }
}

/// The page, 200.
pub fn render(tpl: &impl Template) -> Result<HttpResponse, PageError> {
    render_status(StatusCode::OK, tpl)
}

/// The page with another status (422 for a form with validation errors).
pub fn render_status(status: StatusCode, tpl: &impl Template) -> Result<HttpResponse, PageError> {
    let html = tpl.render()?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// 303 See Other to `to` (after a successful POST).
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
        ))
        .finish()
}

/// A one-shot message for the next page, set by [`redirect_with_flash`] and turned into a
/// cookie by the guard.
#[derive(Clone, Debug)]
pub(crate) struct FlashOut(pub String);

/// 303 to `to`, with a one-shot message (a catalogue key) for the next page.
pub fn redirect_with_flash(to: &str, flash_key: &str) -> HttpResponse {
    let mut res = redirect(to);
    res.extensions_mut().insert(FlashOut(flash_key.to_owned()));
    res
}

/// Whether `next` is a safe place to go back to: a path of this site.
pub fn safe_next(next: &str) -> Option<&str> {
    (next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control()))
    .then_some(next)
}

/// A rejected delivery's reason code in plain words (`rejections.<code>` in the catalogue), or
/// the code itself when the catalogue has no text for it.
pub fn rejection_text(lang: Lang, code: &str) -> String {
    let key = format!("rejections.{code}");
    if Lang::En.has(&key) {
        lang.t(&key).to_owned()
    } else {
        code.to_owned()
    }
}

/// The confirmation page of a destructive or money-moving action: what will happen (naming
/// the thing), and a form that posts `confirm=yes` to `action`. The action's handler does
/// nothing without that field (it answers with this page again), so one click never does it.
#[derive(Template)]
#[template(path = "backoffice/confirm.html")]
pub struct ConfirmTemplate {
    pub ctx: Page,
    /// What will happen, translated, naming the object.
    pub warning: String,
    /// Further lines (translated).
    pub details: Vec<String>,
    pub action: String,
    /// Further hidden fields of the form (e.g. `mode`).
    pub hidden: Vec<(String, String)>,
    pub submit: String,
    pub cancel_href: String,
    pub error: Option<String>,
}

/// Whether a form carried the confirmation page's `confirm=yes`.
pub fn confirmed(confirm: &str) -> bool {
    confirm == "yes"
}

/// The error page.
#[derive(Template)]
#[template(path = "backoffice/error.html")]
pub struct ErrorTemplate {
    pub ctx: Page,
    pub message: String,
    pub status: u16,
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;

    fn page_at(path: &str) -> Page {
        let rc = RequestCtx {
            lang: Lang::En,
            csrf: String::new(),
            session: None,
            flash: None,
            path: path.to_owned(),
            secure: false,
        };
        Page::new(&rc, "events.title")
    }

    #[test]
    fn the_switch_keeps_the_filters_but_not_the_cursor() {
        let mut p = page_at("/app/events?mode=live&type=charge.failed&before=Yz0x&status=");
        p.set_mode(Mode::Live, Mode::Test, "/app/events");
        let m = p.mode.as_ref().unwrap();
        assert!(!m.is_test());
        assert_eq!(m.switch_href, "/app/events?mode=test&type=charge.failed");
        assert_eq!(p.in_mode("/app/events"), "/app/events?mode=live");
    }

    #[test]
    fn from_one_object_the_switch_goes_to_the_list() {
        let mut p = page_at("/app/orders/ord_1?mode=test");
        p.set_mode(Mode::Test, Mode::Test, "/app/orders");
        let m = p.mode.as_ref().unwrap();
        assert!(m.is_test());
        assert_eq!(m.code(), "test");
        assert_eq!(m.switch_href, "/app/orders?mode=live");
    }

    #[test]
    fn pages_without_a_mode_link_plainly() {
        assert_eq!(page_at("/app/users").in_mode("/app/users"), "/app/users");
    }
}
