//! The OpenAPI 3.1 description of the operators' admin API (`/admin/v1`) and the merchant API
//! (`/api/v1`), served at `GET /admin/v1/openapi.json`.
//!
//! Policy: the document is generated, never written by hand. Operations come from the handlers'
//! `#[utoipa::path]` annotations, schemas from the wire types' `ToSchema` / `IntoParams`
//! derives, so a field added to an `XxxOut` is in the document by construction. The test kit
//! validates every JSON body the API tests receive against it, so a handler and its annotation
//! cannot drift apart unnoticed.
//!
//! A few facts hold for whole classes of operations because extractors, not handlers, produce
//! them; [`document`] adds them by rule rather than repeating them on every handler:
//! - security: operator JWT under `/admin/v1`, company API key under `/api/v1` (unless the
//!   operation says `security(())`: no authentication);
//! - 401 for authenticated operations, 403 `company_suspended` for the merchant API;
//! - 404 `company_not_found` for operations with a `{company_id}`;
//! - 400 `invalid_json`, 413 and 415 for operations with a required JSON body, 400
//!   `invalid_query` / `invalid_cursor` for operations with query parameters;
//! - 500 `internal_error` for every operation;
//! - for every `POST` of the merchant API: the `Idempotency-Key` header, `Idempotent-Replayed`
//!   on its answers, 400 `invalid_idempotency_key` and 409 `idempotency_key_reused` /
//!   `idempotency_key_in_use` (the layer of `crate::idempotency` wraps the whole scope).
//!
//! The notification routes are served by the same handlers to operators (under a company) and to
//! merchants (the company of the key): the merchant operations are copies of the operators' ones
//! without `{company_id}`.
//!
//! Responses always carry every field of their type (an `Option` is `null`, not absent), except
//! the few fields serialized only when set ([`OMITTED_WHEN_UNSET`]); the document says so by
//! listing the nullable fields of response-only schemas as required.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use actix_web::HttpResponse;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::{
    api_keys, audit, auth, companies, connect, domain, events, idempotency, merchant,
    notifications, operators, orders, profiles, reconcile, users,
};

pub use crate::error_body::{ErrorBody, ErrorDetail};

/// The scheme names used in `security(...)`.
pub const OPERATOR_JWT: &str = "operator_jwt";
/// The merchant API's scheme.
pub const MERCHANT_API_KEY: &str = "merchant_api_key";

/// Response fields serialized only when set (`skip_serializing_if`): the only ones a response
/// may lack.
pub const OMITTED_WHEN_UNSET: &[&str] = &[
    "next_cursor",
    // A profile's report of connecting automatically: in the answer to its creation only.
    "auto_configure",
    "key",
    "invitation_url",
    "invitation_expires_at",
    "attempt_log",
    "field",
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Paygate admin and merchant API",
        description = "The operators' admin API under `/admin/v1` (a JWT from \
            `POST /admin/v1/auth/token`) and the merchant API under `/api/v1` (a company API key, \
            `pgk_test_…` or `pgk_live_…`). Every error answer is \
            `{\"error\": {\"code\", \"message\", \"field\"?}}`. Objects mirrored from Stripe \
            belong to one mode, `test` or `live` (`livemode`); reads take `?mode=` (operators: \
            the company's environment by default; merchants: the key's own mode, the other is 403).",
    ),
    paths(
        serve,
        auth::token,
        auth::change_password,
        operators::list,
        operators::add,
        operators::disable,
        operators::enable,
        operators::remove,
        audit::list,
        companies::list,
        companies::create,
        companies::get,
        companies::update,
        companies::delete,
        api_keys::create,
        api_keys::list,
        api_keys::revoke,
        users::list,
        users::create,
        users::delete,
        profiles::list,
        profiles::create,
        profiles::get,
        profiles::update,
        profiles::delete,
        profiles::rotate,
        orders::list_orders,
        orders::list_checkout_sessions,
        domain::get_order,
        domain::get_checkout_session,
        domain::list_payment_intents,
        domain::get_payment_intent,
        domain::get_charge,
        domain::list_disputes,
        domain::get_dispute,
        crate::refunds::get_refund,
        crate::refunds::get_early_fraud_warning,
        domain::list_accounts,
        domain::get_payment_method,
        domain::get_issuing,
        events::list,
        events::stats,
        events::backlog,
        events::get,
        domain::replay,
        events::failures,
        connect::unroutable,
        reconcile::reconcile,
        crate::stripe_check::check,
        notifications::create,
        notifications::list,
        notifications::get,
        notifications::update,
        notifications::delete,
        notifications::rotate,
        notifications::test,
        notifications::replay_failed,
        notifications::messages,
        notifications::message,
        notifications::replay_message,
        notifications::settings,
        notifications::save_settings,
        merchant::create_checkout_session,
        merchant::create_source_order,
        merchant::find_orders,
        merchant::get_order,
        crate::billing::list_subscriptions,
        crate::billing::get_subscription,
        crate::billing::list_invoices,
        crate::billing::get_invoice,
        crate::billing::list_customers,
        crate::billing::get_customer,
        crate::billing::settings,
        crate::billing::save_settings,
        crate::billing::merchant_list_subscriptions,
        crate::billing::merchant_get_subscription,
        crate::billing::merchant_list_invoices,
        crate::billing::merchant_get_invoice,
        crate::billing::merchant_list_customers,
        crate::billing::merchant_get_customer,
        crate::refunds::create,
        crate::subscription_actions::cancel,
        crate::subscription_actions::resume,
        crate::subscription_actions::create_portal_session,
        crate::disputes::evidence,
        crate::disputes::close,
    ),
    components(schemas(ErrorBody, ErrorDetail, paygate_db::Mode)),
    tags(
        (name = "meta", description = "This document."),
        (name = "auth", description = "Operators' sign-in."),
        (name = "operators", description = "The people who run the installation."),
        (name = "audit", description = "Who changed what in tenant configuration, when."),
        (name = "companies", description = "The tenants."),
        (name = "api-keys", description = "A company's keys for the merchant API (one mode each)."),
        (name = "users", description = "A company's back-office users and their invitations."),
        (name = "profiles", description = "A company's Stripe profiles (keys and signing secrets, masked)."),
        (name = "orders", description = "Orders and Checkout Sessions."),
        (name = "payments", description = "Payment intents, charges, disputes, accounts, payment methods and Issuing objects, as Stripe's events left them."),
        (name = "events", description = "Stripe events received, refused, replayed and recovered."),
        (name = "notifications", description = "Notifications to the merchant's systems (operators under a company, merchants with their key) and shopper e-mails."),
        (name = "merchant", description = "The merchant API: Checkout Sessions and orders."),
        (name = "billing", description = "Subscriptions, invoices and customers as Stripe's events left them, and the company's dunning settings."),
    )
)]
struct ApiDoc;

/// The whole document: as utoipa derives it, with the rules of the module docs applied.
pub fn document() -> Value {
    let mut doc =
        serde_json::to_value(ApiDoc::openapi()).expect("the derived OpenAPI document serializes");
    refer_to_generic_arguments(&mut doc);
    prefix_operation_ids(&mut doc);
    copy_merchant_notification_routes(&mut doc);
    add_security(&mut doc);
    add_idempotency(&mut doc);
    add_extractor_errors(&mut doc);
    require_present_fields(&mut doc);
    doc
}

static JSON: LazyLock<String> = LazyLock::new(|| document().to_string());

/// The document serialized, computed once.
pub fn json() -> &'static str {
    &JSON
}

/// This document.
#[utoipa::path(
    get,
    path = "/admin/v1/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "This OpenAPI document", body = Object)),
)]
pub(crate) async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(json())
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every operation of the document, with its path.
fn operations(doc: &mut Value) -> impl Iterator<Item = (&String, &mut Map<String, Value>)> {
    doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.iter_mut())
        .flat_map(|(path, item)| {
            item.as_object_mut()
                .into_iter()
                .flat_map(|ops| ops.iter_mut())
                .filter(|(method, _)| METHODS.contains(&method.as_str()))
                .filter_map(move |(_, op)| op.as_object_mut().map(|op| (path, op)))
        })
}

/// utoipa inlines the argument of a generic (`Page<EventOut>` becomes `Page_EventOut` with
/// `EventOut` copied into it); point at the argument's own component instead.
fn refer_to_generic_arguments(doc: &mut Value) {
    let Some(schemas) = doc["components"]["schemas"].as_object_mut() else {
        return;
    };
    let names: Vec<String> = schemas.keys().cloned().collect();
    for name in &names {
        let Some(arg) = ["Page_", "List_"]
            .iter()
            .find_map(|generic| name.strip_prefix(generic))
        else {
            continue;
        };
        if !schemas.contains_key(arg) {
            continue;
        }
        let target = json!({ "$ref": format!("#/components/schemas/{arg}") });
        if let Some(items) = schemas
            .get_mut(name)
            .and_then(|s| s.pointer_mut("/properties/data/items"))
        {
            *items = target;
        }
    }
}

/// Operation ids are the handlers' names, unique within a module: prefixed with the tag, they
/// are unique in the document (`companies_list`, `notifications_list`).
fn prefix_operation_ids(doc: &mut Value) {
    for (_, op) in operations(doc) {
        let tag = op
            .get("tags")
            .and_then(|t| t[0].as_str())
            .unwrap_or_default()
            .replace('-', "_");
        if let Some(id) = op.get("operationId").and_then(Value::as_str) {
            let id = format!("{tag}_{id}");
            op.insert("operationId".into(), json!(id));
        }
    }
}

const OPERATOR_NOTIFICATIONS: &str = "/admin/v1/companies/{company_id}/notification-";

/// `/api/v1/notification-…` for each `/admin/v1/companies/{company_id}/notification-…`.
fn copy_merchant_notification_routes(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    let copies: Vec<(String, Value)> = paths
        .iter()
        .filter_map(|(path, item)| {
            let rest = path.strip_prefix(OPERATOR_NOTIFICATIONS)?;
            let mut item = item.clone();
            for (method, op) in item.as_object_mut()?.iter_mut() {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                if let Some(id) = op["operationId"].as_str() {
                    op["operationId"] = json!(format!("merchant_{id}"));
                }
                if let Some(params) = op["parameters"].as_array_mut() {
                    params.retain(|p| p["name"] != "company_id");
                    for p in params.iter_mut().filter(|p| p["name"] == "mode") {
                        p["description"] =
                            json!("The key's own mode (the default); the other one is 403.");
                    }
                }
                op["security"] = json!([{ MERCHANT_API_KEY: [] }]);
            }
            Some((format!("/api/v1/notification-{rest}"), item))
        })
        .collect();
    paths.extend(copies);
}

/// The security schemes, and each operation's when it does not say.
fn add_security(doc: &mut Value) {
    doc["components"]["securitySchemes"] = json!({
        OPERATOR_JWT: {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "An operator's token from `POST /admin/v1/auth/token`.",
        },
        MERCHANT_API_KEY: {
            "type": "http", "scheme": "bearer", "bearerFormat": "pgk_test_… or pgk_live_…",
            "description": "A company API key (`POST /admin/v1/companies/{company_id}/api-keys`); \
                it reads and changes its own mode's data only.",
        },
    });
    for (path, op) in operations(doc) {
        if op.contains_key("security") {
            continue;
        }
        let scheme = if path.starts_with("/api/") {
            MERCHANT_API_KEY
        } else {
            OPERATOR_JWT
        };
        op.insert("security".into(), json!([{ scheme: [] }]));
    }
}

/// See the module docs and `crate::idempotency`.
fn add_idempotency(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (_, item) in paths.iter_mut().filter(|(p, _)| p.starts_with("/api/")) {
        let Some(op) = item.get_mut("post").and_then(Value::as_object_mut) else {
            continue;
        };
        let param = json!({
            "name": idempotency::HEADER,
            "in": "header",
            "required": false,
            "description": "Makes the request safe to retry: the same key with the same body \
                answers what the first request answered (2xx, 400 and 422 answers are kept \
                24 hours, per company and mode), without running it again. 1 to 255 visible \
                ASCII characters; a UUID is a good key.",
            "schema": {"type": "string", "minLength": 1, "maxLength": idempotency::MAX_KEY_LEN},
        });
        match op.get_mut("parameters").and_then(Value::as_array_mut) {
            Some(ps) => ps.push(param),
            None => {
                op.insert("parameters".into(), json!([param]));
            }
        }
        if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
            for (status, r) in responses.iter_mut() {
                let kept = status
                    .parse::<u16>()
                    .ok()
                    .and_then(|s| actix_web::http::StatusCode::from_u16(s).ok())
                    .is_some_and(idempotency::is_stored);
                if kept && let Some(r) = r.as_object_mut() {
                    let headers = r.entry("headers").or_insert_with(|| json!({}));
                    headers[idempotency::REPLAYED_HEADER] = json!({
                        "description": "`true` when this is the stored answer to an earlier \
                            request with the same `Idempotency-Key`.",
                        "schema": {"type": "string", "enum": ["true"]},
                    });
                }
            }
        }
        error(
            op,
            "400",
            "The `Idempotency-Key` is empty, longer than 255 characters or not visible ASCII (`invalid_idempotency_key`)",
        );
        error(
            op,
            "409",
            "The `Idempotency-Key` was used with another request (`idempotency_key_reused`) or its first request is still running (`idempotency_key_in_use`)",
        );
        error(op, "413", "The body is too large (`payload_too_large`)");
    }
}

/// Adds `status` with the error body to an operation, or the reason to the status it has.
fn error(op: &mut Map<String, Value>, status: &str, reason: &str) {
    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else {
        return;
    };
    match responses.get_mut(status) {
        Some(r) => {
            let d = r["description"].as_str().unwrap_or_default();
            let mut chars = reason.chars();
            let lower: String = chars
                .next()
                .map(|c| c.to_lowercase().chain(chars).collect())
                .unwrap_or_default();
            if !d.contains(&lower) && !d.contains(reason) {
                r["description"] = json!(if d.is_empty() {
                    reason.to_owned()
                } else {
                    format!("{d}; {lower}")
                });
            }
        }
        None => {
            responses.insert(
                status.into(),
                json!({
                    "description": reason,
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/ErrorBody"}
                    }},
                }),
            );
        }
    }
}

fn has_param(op: &Map<String, Value>, location: &str, name: Option<&str>) -> bool {
    op.get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|ps| {
            ps.iter()
                .any(|p| p["in"] == location && name.is_none_or(|n| p["name"] == n))
        })
}

/// The errors the extractors produce (see the module docs).
fn add_extractor_errors(doc: &mut Value) {
    for (_, op) in operations(doc) {
        let schemes: Vec<String> = op
            .get("security")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .flat_map(|s| s.keys().cloned())
            .collect();
        if schemes.iter().any(|s| s == OPERATOR_JWT) {
            error(
                op,
                "401",
                "The bearer token is missing, invalid or expired (`unauthorized`)",
            );
        }
        if schemes.iter().any(|s| s == MERCHANT_API_KEY) {
            error(
                op,
                "401",
                "The API key is missing, unknown or revoked (`unauthorized`)",
            );
            error(op, "403", "The company is suspended (`company_suspended`)");
            if has_param(op, "query", Some("mode")) {
                error(
                    op,
                    "403",
                    "`mode` names the other mode than the key's (`mode_not_allowed`)",
                );
            }
        }
        if has_param(op, "path", Some("company_id")) {
            error(op, "404", "No such company (`company_not_found`)");
        }
        if op.get("requestBody").is_some_and(|b| b["required"] == true) {
            error(
                op,
                "400",
                "The body is not JSON of the expected shape (`invalid_json`)",
            );
            error(op, "413", "The body is too large (`payload_too_large`)");
            error(
                op,
                "415",
                "The body is not `application/json` (`unsupported_media_type`)",
            );
        }
        if has_param(op, "query", None) {
            error(
                op,
                "400",
                "A query parameter is unknown or invalid (`invalid_query`, `invalid_cursor`)",
            );
        }
        error(
            op,
            "500",
            "An internal error; the cause is logged (`internal_error`)",
        );
    }
}

/// The components a schema refers to, directly or not.
fn references(schema: &Value, components: &Map<String, Value>, seen: &mut BTreeSet<String>) {
    match schema {
        Value::Object(o) => {
            if let Some(name) = o
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                && seen.insert(name.to_owned())
                && let Some(s) = components.get(name)
            {
                references(s, components, seen);
            }
            o.values().for_each(|v| references(v, components, seen));
        }
        Value::Array(a) => a.iter().for_each(|v| references(v, components, seen)),
        _ => {}
    }
}

/// Makes every property of an inline response schema required but [`OMITTED_WHEN_UNSET`]
/// (not crossing `$ref`s: those are components, handled on their own).
fn require_properties(schema: &mut Value) {
    let Some(o) = schema.as_object_mut() else {
        return;
    };
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        let names: Vec<Value> = props
            .keys()
            .filter(|k| !OMITTED_WHEN_UNSET.contains(&k.as_str()))
            .map(|k| json!(k))
            .collect();
        let required = o.entry("required").or_insert_with(|| json!([]));
        if let Some(required) = required.as_array_mut() {
            for n in names {
                if !required.contains(&n) {
                    required.push(n);
                }
            }
        }
    }
    for key in [
        "properties",
        "items",
        "allOf",
        "oneOf",
        "anyOf",
        "additionalProperties",
    ] {
        match o.get_mut(key) {
            Some(Value::Object(m)) if key == "properties" => {
                m.values_mut().for_each(require_properties)
            }
            Some(Value::Array(a)) => a.iter_mut().for_each(require_properties),
            Some(v @ Value::Object(_)) => require_properties(v),
            _ => {}
        }
    }
}

/// See the module docs: in response-only schemas, nullable fields are present.
fn require_present_fields(doc: &mut Value) {
    let components = doc["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut requests = BTreeSet::new();
    let mut responses = BTreeSet::new();
    for (_, op) in operations(doc) {
        if let Some(b) = op.get("requestBody") {
            references(b, &components, &mut requests);
        }
        if let Some(p) = op.get("parameters") {
            references(p, &components, &mut requests);
        }
        if let Some(r) = op.get_mut("responses") {
            references(r, &components, &mut responses);
            for resp in r.as_object_mut().into_iter().flat_map(|r| r.values_mut()) {
                for media in resp["content"]
                    .as_object_mut()
                    .into_iter()
                    .flat_map(|c| c.values_mut())
                {
                    if let Some(s) = media.get_mut("schema") {
                        require_properties(s);
                    }
                }
            }
        }
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        for name in responses.difference(&requests) {
            if let Some(s) = schemas.get_mut(name) {
                require_properties(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_covers_both_apis() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.keys().any(|p| p.starts_with("/admin/v1/")));
        assert!(paths.keys().any(|p| p.starts_with("/api/v1/")));
        assert!(paths.contains_key("/api/v1/notification-endpoints/{endpoint_id}"));
    }

    #[test]
    fn every_merchant_post_takes_an_idempotency_key() {
        let mut doc = document();
        let mut posts = 0;
        for (path, item) in doc["paths"].as_object_mut().expect("paths").iter_mut() {
            let Some(op) = item.get("post") else {
                continue;
            };
            let has = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == idempotency::HEADER));
            assert_eq!(has, path.starts_with("/api/"), "{path}");
            if has {
                posts += 1;
                assert!(
                    op["responses"]["409"]["description"]
                        .as_str()
                        .is_some_and(|d| d.contains("idempotency_key_in_use"))
                );
                let ok = op["responses"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .find(|(s, _)| s.starts_with('2'))
                    .map(|(_, r)| r.clone())
                    .expect("a 2xx answer");
                assert!(
                    ok["headers"][idempotency::REPLAYED_HEADER].is_object(),
                    "{path}"
                );
            }
        }
        assert!(
            posts >= 3,
            "checkout sessions, orders, notification endpoints …"
        );
    }

    #[test]
    fn operation_ids_are_unique() {
        let mut doc = document();
        let mut ids = BTreeSet::new();
        for (path, op) in operations(&mut doc) {
            let id = op["operationId"].as_str().expect("operationId").to_owned();
            assert!(ids.insert(id.clone()), "{id} again at {path}");
        }
    }

    #[test]
    fn generic_lists_refer_to_their_items() {
        let doc = document();
        assert_eq!(
            doc["components"]["schemas"]["Page_CompanyOut"]["properties"]["data"]["items"],
            json!({"$ref": "#/components/schemas/CompanyOut"})
        );
    }

    #[test]
    fn nullable_response_fields_are_required_but_request_fields_are_not() {
        let doc = document();
        let s = &doc["components"]["schemas"];
        let required = |name: &str| s[name]["required"].as_array().cloned().unwrap_or_default();
        assert!(required("ChargeOut").contains(&json!("failure_code")));
        assert!(!required("ApiKeyOut").contains(&json!("key")));
        assert!(!required("EndpointIn").contains(&json!("description")));
        // Both a request and a response: left as derived.
        assert!(!required("SettingsIo").contains(&json!("sender_name")));
    }

    #[test]
    fn the_bodies_of_cancel_and_resume_are_documented_as_optional() {
        let doc = document();
        for p in [
            "/api/v1/subscriptions/{subscription_id}/cancel",
            "/api/v1/subscriptions/{subscription_id}/resume",
        ] {
            let body = &doc["paths"][p]["post"]["requestBody"];
            assert!(body.is_object(), "{p}: {body}");
            assert_ne!(body["required"], true, "{p}: {body}");
        }
        let portal = &doc["paths"]["/api/v1/customers/{customer_id}/portal-sessions"]["post"];
        assert_eq!(portal["requestBody"]["required"], true);
    }
}
