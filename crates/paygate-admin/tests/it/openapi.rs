//! The OpenAPI description is served and true: it is generated from the handlers and their wire
//! types, covers the admin and the merchant API, every operation in it is a route of the app and
//! every route of the app under `/admin/v1` and `/api/v1` is in it. (That every JSON answer the
//! tests receive matches it is checked by `TestApp::send` itself.)

use std::collections::BTreeSet;

use paygate_testkit::{Backend, TestApp, db_tests};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The routes (`METHOD path`) `paygate_admin::configure` and `configure_public` register under
/// `/admin/v1` and `/api/v1`, as written in each module's `configure` (the notification routes
/// twice: under a company for operators, and for the merchant's key).
const ROUTES: &[&str] = &[
    "GET /admin/v1/openapi.json",
    // auth
    "POST /admin/v1/auth/token",
    "POST /admin/v1/auth/password",
    // audit
    "GET /admin/v1/audit-log",
    // api_keys
    "POST /admin/v1/companies/{company_id}/api-keys",
    "GET /admin/v1/companies/{company_id}/api-keys",
    "DELETE /admin/v1/companies/{company_id}/api-keys/{id}",
    // operators
    "GET /admin/v1/operators",
    "POST /admin/v1/operators",
    "POST /admin/v1/operators/{operator_id}/disable",
    "POST /admin/v1/operators/{operator_id}/enable",
    "DELETE /admin/v1/operators/{operator_id}",
    // companies
    "GET /admin/v1/companies",
    "POST /admin/v1/companies",
    "GET /admin/v1/companies/{company_id}",
    "PATCH /admin/v1/companies/{company_id}",
    "DELETE /admin/v1/companies/{company_id}",
    // users
    "GET /admin/v1/companies/{company_id}/users",
    "POST /admin/v1/companies/{company_id}/users",
    "DELETE /admin/v1/companies/{company_id}/users/{user_id}",
    // profiles
    "GET /admin/v1/companies/{company_id}/profiles",
    "POST /admin/v1/companies/{company_id}/profiles",
    "GET /admin/v1/companies/{company_id}/profiles/{profile_id}",
    "PATCH /admin/v1/companies/{company_id}/profiles/{profile_id}",
    "DELETE /admin/v1/companies/{company_id}/profiles/{profile_id}",
    "POST /admin/v1/companies/{company_id}/profiles/{profile_id}/signing-secrets",
    // orders
    "GET /admin/v1/companies/{company_id}/orders",
    "GET /admin/v1/companies/{company_id}/checkout-sessions",
    // domain
    "POST /admin/v1/companies/{company_id}/events/{event_id}/replay",
    "GET /admin/v1/companies/{company_id}/payment-intents",
    "GET /admin/v1/companies/{company_id}/payment-intents/{id}",
    "GET /admin/v1/companies/{company_id}/charges/{id}",
    "GET /admin/v1/companies/{company_id}/disputes",
    "GET /admin/v1/companies/{company_id}/disputes/{id}",
    "GET /admin/v1/companies/{company_id}/refunds/{id}",
    "GET /admin/v1/companies/{company_id}/early-fraud-warnings/{id}",
    "GET /admin/v1/companies/{company_id}/orders/{id}",
    "GET /admin/v1/companies/{company_id}/checkout-sessions/{id}",
    "GET /admin/v1/companies/{company_id}/accounts",
    "GET /admin/v1/companies/{company_id}/payment-methods/{id}",
    "GET /admin/v1/companies/{company_id}/issuing/{id}",
    // events
    "GET /admin/v1/companies/{company_id}/events",
    "GET /admin/v1/companies/{company_id}/events/stats",
    "GET /admin/v1/companies/{company_id}/events/backlog",
    "GET /admin/v1/companies/{company_id}/events/{event_id}",
    "GET /admin/v1/companies/{company_id}/delivery-failures",
    "GET /admin/v1/companies/{company_id}/unroutable-events",
    // reconcile
    "POST /admin/v1/companies/{company_id}/reconcile",
    // stripe_check (issue 17)
    "POST /admin/v1/companies/{company_id}/stripe-check",
    // notifications, operators
    "POST /admin/v1/companies/{company_id}/notification-endpoints",
    "GET /admin/v1/companies/{company_id}/notification-endpoints",
    "GET /admin/v1/companies/{company_id}/notification-endpoints/{endpoint_id}",
    "PATCH /admin/v1/companies/{company_id}/notification-endpoints/{endpoint_id}",
    "DELETE /admin/v1/companies/{company_id}/notification-endpoints/{endpoint_id}",
    "POST /admin/v1/companies/{company_id}/notification-endpoints/{endpoint_id}/rotate-secret",
    "POST /admin/v1/companies/{company_id}/notification-endpoints/{endpoint_id}/test",
    "POST /admin/v1/companies/{company_id}/notification-endpoints/{endpoint_id}/replay",
    "GET /admin/v1/companies/{company_id}/notification-messages",
    "GET /admin/v1/companies/{company_id}/notification-messages/{message_id}",
    "POST /admin/v1/companies/{company_id}/notification-messages/{message_id}/replay",
    "GET /admin/v1/companies/{company_id}/notification-settings",
    "PUT /admin/v1/companies/{company_id}/notification-settings",
    // billing (issue 19)
    "GET /admin/v1/companies/{company_id}/subscriptions",
    "GET /admin/v1/companies/{company_id}/subscriptions/{subscription_id}",
    "GET /admin/v1/companies/{company_id}/invoices",
    "GET /admin/v1/companies/{company_id}/invoices/{invoice_id}",
    "GET /admin/v1/companies/{company_id}/customers",
    "GET /admin/v1/companies/{company_id}/customers/{customer_id}",
    "GET /admin/v1/companies/{company_id}/billing-settings",
    "PUT /admin/v1/companies/{company_id}/billing-settings",
    // merchant
    "POST /api/v1/checkout-sessions",
    "POST /api/v1/orders",
    "GET /api/v1/orders",
    "GET /api/v1/orders/{order_id}",
    "GET /api/v1/subscriptions",
    "GET /api/v1/subscriptions/{subscription_id}",
    "GET /api/v1/invoices",
    "GET /api/v1/invoices/{invoice_id}",
    "GET /api/v1/customers",
    "GET /api/v1/customers/{customer_id}",
    "POST /api/v1/orders/{order_id}/refunds",
    // subscription actions (issue 19)
    "POST /api/v1/subscriptions/{subscription_id}/cancel",
    "POST /api/v1/subscriptions/{subscription_id}/resume",
    "POST /api/v1/customers/{customer_id}/portal-sessions",
    // the dispute workbench (issue 18 part 3)
    "POST /api/v1/disputes/{dispute_id}/evidence",
    "POST /api/v1/disputes/{dispute_id}/close",
    // notifications, merchants
    "POST /api/v1/notification-endpoints",
    "GET /api/v1/notification-endpoints",
    "GET /api/v1/notification-endpoints/{endpoint_id}",
    "PATCH /api/v1/notification-endpoints/{endpoint_id}",
    "DELETE /api/v1/notification-endpoints/{endpoint_id}",
    "POST /api/v1/notification-endpoints/{endpoint_id}/rotate-secret",
    "POST /api/v1/notification-endpoints/{endpoint_id}/test",
    "POST /api/v1/notification-endpoints/{endpoint_id}/replay",
    "GET /api/v1/notification-messages",
    "GET /api/v1/notification-messages/{message_id}",
    "POST /api/v1/notification-messages/{message_id}/replay",
    "GET /api/v1/notification-settings",
    "PUT /api/v1/notification-settings",
];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every (METHOD, template) of the document.
fn documented(spec: &Value) -> BTreeSet<(String, String)> {
    spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|m| METHODS.contains(&m.as_str()))
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

/// A URL for a template, with ids that do not exist.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "x_unknown"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether the app routes `method path`: the router's own answer is 404 `not_found`; a route
/// with unknown ids answers with its own "not found" (or 401 for the wrong credentials).
async fn is_route(app: &TestApp, token: &str, method: &str, path: &str, body: bool) -> bool {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.client.request(m, app.url(path)).bearer_auth(token);
    if body {
        req = req.json(&serde_json::json!({}));
    }
    let (status, body): (StatusCode, Value) = app.send(req).await;
    assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    assert!(
        body["error"].is_null() || body["error"]["code"].is_string(),
        "{method} {path}: {body}"
    );
    !(status == StatusCode::NOT_FOUND && body["error"]["code"] == "not_found")
}

async fn every_documented_operation_is_a_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (s, spec) = app
        .send(app.client.get(app.url("/admin/v1/openapi.json")))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(spec, paygate_admin::openapi::document());
    let token = app.admin_token().await;
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.len() >= 50, "{} paths", paths.len());
    let mut checked = 0;
    for (path, ops) in paths {
        let url = concrete(path);
        for method in METHODS {
            let documented = ops.get(method);
            let routed = is_route(
                &app,
                &token,
                &method.to_uppercase(),
                &url,
                documented.is_some_and(|op| op.get("requestBody").is_some()),
            )
            .await;
            match documented {
                Some(_) => {
                    assert!(routed, "{method} {path} is documented but not a route");
                    checked += 1;
                }
                None => assert!(!routed, "{method} {path} is a route but not documented"),
            }
        }
    }
    assert!(checked >= 70, "{checked} operations checked");
}

async fn every_route_is_documented(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.admin_token().await;
    let spec = paygate_admin::openapi::document();
    let documented = documented(&spec);
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| r.split_once(' ').unwrap())
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    assert_eq!(routes.len(), ROUTES.len(), "a route is listed twice");
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes not in the document: {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(
        unrouted.is_empty(),
        "operations that are no route: {unrouted:?}"
    );
    // The list is true: each entry is a route of the running app.
    for (method, path) in &routes {
        let body = matches!(method.as_str(), "POST" | "PATCH" | "PUT");
        assert!(
            is_route(&app, &token, method, &concrete(path), body).await,
            "{method} {path} is listed but not a route"
        );
    }
}

db_tests!(
    every_documented_operation_is_a_route,
    every_route_is_documented
);

#[test]
fn the_document_covers_both_apis_with_their_security() {
    let spec = paygate_admin::openapi::document();
    let documented = documented(&spec);
    let admin = documented
        .iter()
        .filter(|(_, p)| p.starts_with("/admin/v1/"));
    let merchant = documented.iter().filter(|(_, p)| p.starts_with("/api/v1/"));
    assert!(admin.count() >= 50);
    assert!(merchant.count() >= 17);
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["operator_jwt"]["bearerFormat"], "JWT");
    assert_eq!(schemes["merchant_api_key"]["scheme"], "bearer");
    let op = &spec["paths"]["/api/v1/orders/{order_id}"]["get"];
    assert_eq!(op["security"][0]["merchant_api_key"], serde_json::json!([]));
    let op = &spec["paths"]["/admin/v1/companies"]["get"];
    assert_eq!(op["security"][0]["operator_jwt"], serde_json::json!([]));
    assert_eq!(
        spec["paths"]["/admin/v1/auth/token"]["post"]["security"],
        serde_json::json!([{}])
    );
}

#[test]
fn the_main_wire_types_are_components() {
    let spec = paygate_admin::openapi::document();
    let schemas = &spec["components"]["schemas"];
    for name in [
        "CompanyOut",
        "ProfileOut",
        "ApiKeyOut",
        "UserOut",
        "OperatorOut",
        "OrderOut",
        "OrderSummaryOut",
        "CheckoutSessionOut",
        "PaymentIntentOut",
        "ChargeOut",
        "DisputeOut",
        "EventOut",
        "EventDetailOut",
        "EndpointOut",
        "MessageOut",
        "ErrorBody",
        "Mode",
    ] {
        assert!(schemas[name].is_object(), "{name} is not a component");
    }
    for name in [
        "OrderOut",
        "PaymentIntentOut",
        "EventOut",
        "ApiKeyOut",
        "MessageOut",
    ] {
        assert_eq!(
            schemas[name]["properties"]["livemode"]["type"], "boolean",
            "{name}.livemode"
        );
    }
    assert_eq!(schemas["Mode"]["enum"], serde_json::json!(["test", "live"]));
    // `?mode=` where the handlers read it.
    for (path, method) in [
        ("/admin/v1/companies/{company_id}/orders/{id}", "get"),
        ("/admin/v1/companies/{company_id}/orders", "get"),
        (
            "/admin/v1/companies/{company_id}/events/{event_id}/replay",
            "post",
        ),
        ("/api/v1/orders/{order_id}", "get"),
        ("/api/v1/notification-messages", "get"),
    ] {
        let params = spec["paths"][path][method]["parameters"]
            .as_array()
            .unwrap();
        let mode = params.iter().find(|p| p["name"] == "mode");
        assert!(
            mode.is_some_and(
                |p| p["in"] == "query" && p["schema"]["$ref"] == "#/components/schemas/Mode"
            ),
            "{method} {path}: {params:?}"
        );
    }
}

/// The events a company selects in Stripe are listed in the document as an `enum` taken from
/// `EventType::ALL`, the one list.
#[test]
fn the_stripe_events_enum_is_the_one_list() {
    let spec = paygate_admin::openapi::document();
    let schemas = &spec["components"]["schemas"];
    let mut items = schemas["CompanyOut"]["properties"]["stripe_events"]["items"].clone();
    if let Some(r) = items["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        items = schemas[name].clone();
    }
    let want: Vec<&str> = paygate_wire::EventType::ALL
        .iter()
        .map(|e| e.as_str())
        .collect();
    assert_eq!(items["enum"], serde_json::json!(want), "{items}");
}
