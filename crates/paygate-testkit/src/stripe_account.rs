//! A fake Stripe account for the tests of connecting automatically (issue 17): `GET /v1/account`,
//! the webhook endpoints (`/v1/webhook_endpoints`: create, list, update, delete) kept in memory,
//! `GET /v1/events` (an empty list), on a wiremock server on loopback. The test changes the
//! endpoints behind Paygate's back ([`FakeStripeAccount::disable`], [`FakeStripeAccount::remove`],
//! [`FakeStripeAccount::set_url`]) and reads what Paygate asked for.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// One endpoint of the fake account.
#[derive(Debug, Clone)]
pub struct FakeEndpoint {
    pub id: String,
    pub url: String,
    pub enabled_events: Vec<String>,
    pub status: String,
    pub api_version: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub secret: String,
}

impl FakeEndpoint {
    fn json(&self, with_secret: bool) -> Value {
        let metadata: serde_json::Map<String, Value> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut v = json!({
            "id": self.id, "object": "webhook_endpoint", "url": self.url,
            "enabled_events": self.enabled_events, "status": self.status,
            "api_version": self.api_version, "livemode": false, "metadata": metadata,
            "application": null, "created": 1_700_000_000, "description": null,
        });
        if with_secret {
            v["secret"] = json!(self.secret);
        }
        v
    }
}

#[derive(Debug, Default)]
struct State {
    endpoints: Vec<FakeEndpoint>,
    created: usize,
    account: Value,
    /// Answer every call with this status (a revoked key: 401).
    fail_with: Option<u16>,
}

/// The fake account (clone: the same state).
#[derive(Clone)]
pub struct FakeStripeAccount {
    pub server: Arc<MockServer>,
    state: Arc<Mutex<State>>,
}

fn form(req: &Request) -> Vec<(String, String)> {
    let body = String::from_utf8_lossy(&req.body);
    reqwest::Url::parse(&format!("http://x/?{body}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn missing() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({"error": {
        "type": "invalid_request_error", "code": "resource_missing",
        "message": "No such webhook endpoint"}}))
}

fn refused(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": {
        "type": "invalid_request_error", "code": "invalid_api_key",
        "message": "Invalid API Key provided"}}))
}

struct Handler {
    state: Arc<Mutex<State>>,
    op: Op,
}

#[derive(Clone, Copy)]
enum Op {
    Account,
    Create,
    List,
    Update,
    Delete,
}

impl Respond for Handler {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.state.lock().unwrap();
        if let Some(s) = st.fail_with {
            return refused(s);
        }
        let id = req.url.path().rsplit('/').next().unwrap_or("").to_owned();
        match self.op {
            Op::Account => ResponseTemplate::new(200).set_body_json(st.account.clone()),
            Op::Create => {
                let f = form(req);
                st.created += 1;
                let e = FakeEndpoint {
                    id: format!("we_fake{}", st.created),
                    url: f
                        .iter()
                        .find(|(k, _)| k == "url")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default(),
                    enabled_events: f
                        .iter()
                        .filter(|(k, _)| k == "enabled_events[]")
                        .map(|(_, v)| v.clone())
                        .collect(),
                    status: "enabled".into(),
                    api_version: f
                        .iter()
                        .find(|(k, _)| k == "api_version")
                        .map(|(_, v)| v.clone()),
                    metadata: f
                        .iter()
                        .filter_map(|(k, v)| {
                            k.strip_prefix("metadata[")
                                .and_then(|k| k.strip_suffix(']'))
                                .map(|k| (k.to_owned(), v.clone()))
                        })
                        .collect(),
                    secret: crate::new_secret(),
                };
                let body = e.json(true);
                st.endpoints.push(e);
                ResponseTemplate::new(200).set_body_json(body)
            }
            Op::List => {
                let data: Vec<Value> = st.endpoints.iter().map(|e| e.json(false)).collect();
                ResponseTemplate::new(200).set_body_json(json!({
                    "object": "list", "data": data, "has_more": false, "url": "/v1/webhook_endpoints"}))
            }
            Op::Update => {
                let f = form(req);
                let Some(e) = st.endpoints.iter_mut().find(|e| e.id == id) else {
                    return missing();
                };
                if let Some((_, u)) = f.iter().find(|(k, _)| k == "url") {
                    e.url = u.clone();
                }
                let events: Vec<String> = f
                    .iter()
                    .filter(|(k, _)| k == "enabled_events[]")
                    .map(|(_, v)| v.clone())
                    .collect();
                if !events.is_empty() {
                    e.enabled_events = events;
                }
                match f
                    .iter()
                    .find(|(k, _)| k == "disabled")
                    .map(|(_, v)| v.as_str())
                {
                    Some("false") => e.status = "enabled".into(),
                    Some("true") => e.status = "disabled".into(),
                    _ => {}
                }
                ResponseTemplate::new(200).set_body_json(e.json(false))
            }
            Op::Delete => {
                let before = st.endpoints.len();
                st.endpoints.retain(|e| e.id != id);
                if st.endpoints.len() == before {
                    return missing();
                }
                ResponseTemplate::new(200).set_body_json(json!({
                    "id": id, "object": "webhook_endpoint", "deleted": true}))
            }
        }
    }
}

impl FakeStripeAccount {
    /// A fake account `account_id` (test mode), charges and payouts as given.
    pub async fn start(account_id: &str, charges_enabled: bool, payouts_enabled: bool) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(State {
            account: json!({
                "id": account_id, "object": "account", "country": "IT",
                "default_currency": "eur", "charges_enabled": charges_enabled,
                "payouts_enabled": payouts_enabled, "details_submitted": charges_enabled,
                "requirements": {"currently_due": [], "disabled_reason": null},
            }),
            ..State::default()
        }));
        let h = |op| Handler {
            state: state.clone(),
            op,
        };
        Mock::given(method("GET"))
            .and(path("/v1/account"))
            .respond_with(h(Op::Account))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/webhook_endpoints"))
            .respond_with(h(Op::Create))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/webhook_endpoints"))
            .respond_with(h(Op::List))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(r"^/v1/webhook_endpoints/[^/]+$"))
            .respond_with(h(Op::Update))
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path_regex(r"^/v1/webhook_endpoints/[^/]+$"))
            .respond_with(h(Op::Delete))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/events"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "object": "list", "data": [], "has_more": false, "url": "/v1/events"})))
            .mount(&server)
            .await;
        Self {
            server: Arc::new(server),
            state,
        }
    }

    /// The API base to give Paygate.
    pub fn uri(&self) -> String {
        self.server.uri()
    }

    /// The endpoints the account has now.
    pub fn endpoints(&self) -> Vec<FakeEndpoint> {
        self.state.lock().unwrap().endpoints.clone()
    }

    /// Stripe disables the endpoint (after failed deliveries).
    pub fn disable(&self, id: &str) {
        for e in self.state.lock().unwrap().endpoints.iter_mut() {
            if e.id == id {
                e.status = "disabled".into();
            }
        }
    }

    /// Someone deletes the endpoint in the Dashboard.
    pub fn remove(&self, id: &str) {
        self.state.lock().unwrap().endpoints.retain(|e| e.id != id);
    }

    /// Someone changes the endpoint's URL in the Dashboard.
    pub fn set_url(&self, id: &str, url: &str) {
        for e in self.state.lock().unwrap().endpoints.iter_mut() {
            if e.id == id {
                e.url = url.to_owned();
            }
        }
    }

    /// Every later call is answered with `status` (401: the key was revoked); `None` heals.
    pub fn fail_with(&self, status: Option<u16>) {
        self.state.lock().unwrap().fail_with = status;
    }

    /// The account's `charges_enabled` / `payouts_enabled` from now on.
    pub fn set_enabled(&self, charges: bool, payouts: bool) {
        let mut st = self.state.lock().unwrap();
        st.account["charges_enabled"] = json!(charges);
        st.account["payouts_enabled"] = json!(payouts);
    }

    /// The requests Paygate made with `method` to `path` (exact).
    pub async fn requests(&self, m: &str, p: &str) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == m && r.url.path() == p)
            .collect()
    }

    /// The form of a request as pairs.
    pub fn form(req: &Request) -> Vec<(String, String)> {
        form(req)
    }
}

/// Makes the company's live account ready to go live for tests that switch to live: a live
/// `stripe_accounts` row for `account_id` with charges and payouts enabled, as an
/// `account.updated` would leave it, dated 0 so any real event supersedes it.
pub async fn live_account_ready(app: &crate::TestApp, company_id: &str, account_id: &str) {
    use sea_orm::{ActiveModelTrait, Set};
    let c = app.app.tenants.company(company_id).await.unwrap();
    paygate_db::entities::stripe_account::ActiveModel {
        company_pk: Set(c.id),
        account_id: Set(account_id.to_owned()),
        livemode: Set(true),
        charges_enabled: Set(true),
        payouts_enabled: Set(true),
        details_submitted: Set(true),
        currently_due: Set("[]".into()),
        disabled_reason: Set(None),
        state_created: Set(0),
        updated_at: Set(paygate_db::now_ms()),
        ..Default::default()
    }
    .insert(&app.app.db)
    .await
    .unwrap();
}
