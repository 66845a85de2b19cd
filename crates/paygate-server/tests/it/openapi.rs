//! The OpenAPI description is served and true: every path and method in it is a route of the app.

use paygate_testkit::{Backend, TestApp, db_tests};
use reqwest::{Method, StatusCode};
use serde_json::Value;

async fn every_documented_operation_is_a_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (s, spec) = app
        .send(app.client.get(app.url("/admin/v1/openapi.json")))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(spec["openapi"], "3.0.3");
    let token = app.admin_token().await;
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.len() >= 30, "{} paths", paths.len());
    let mut checked = 0;
    for (path, ops) in paths {
        // Ids that do not exist: the route must answer with its own "not found", not the router's.
        let url = path
            .replace("{companyID}", "no_such_company")
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "x_unknown"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in ops.as_object().unwrap() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut req = app
                .client
                .request(m.clone(), app.url(&url))
                .bearer_auth(&token);
            if op.get("requestBody").is_some() {
                req = req.json(&serde_json::json!({}));
            }
            let (status, body): (StatusCode, Value) = app.send(req).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !(status == StatusCode::NOT_FOUND && body["error"]["code"] == "not_found"),
                "{method} {path} is not a route: {body}"
            );
            assert!(
                body["error"].is_null() || body["error"]["code"].is_string(),
                "{method} {path}: {body}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 39, "{checked} operations checked");
}

db_tests!(every_documented_operation_is_a_route);
