//! Disputes: the evidence update (form-encoded `evidence[field]`, `submit`), the close, and the
//! file upload (multipart to the files host, not the API host), each with our idempotency key.

use std::collections::BTreeMap;

use paygate_stripe::{FileUpload, StripeClient, UpdateDispute};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{KEY, config, decode_form, key, received, setup};

fn dispute_json(status: &str, submissions: i64) -> serde_json::Value {
    json!({
        "id": "dp_1", "object": "dispute", "status": status,
        "evidence_details": {"due_by": 1_900_000_000, "has_evidence": true, "past_due": false, "submission_count": submissions}
    })
}

#[tokio::test]
async fn update_dispute_form_encodes_evidence_and_submit() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/disputes/dp_1"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(header("idempotency-key", "dpe-1"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(dispute_json("under_review", 1)))
        .expect(1)
        .mount(&server)
        .await;
    let mut evidence = BTreeMap::new();
    evidence.insert("customer_name".to_owned(), "Ada & Co".to_owned());
    evidence.insert(
        "product_description".to_owned(),
        "2 × Mug\nline 2".to_owned(),
    );
    evidence.insert("receipt".to_owned(), "file_abc".to_owned());
    let d = client
        .update_dispute(
            &key(),
            "dp_1",
            &UpdateDispute {
                evidence,
                submit: true,
            },
            "dpe-1",
        )
        .await
        .expect("updated");
    assert_eq!(d.status, "under_review");
    assert_eq!(d.evidence_details.expect("details").submission_count, 1);
    let reqs = received(&server).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        decode_form(&reqs[0].body),
        vec![
            ("evidence[customer_name]".to_owned(), "Ada & Co".to_owned()),
            (
                "evidence[product_description]".to_owned(),
                "2 × Mug\nline 2".to_owned()
            ),
            ("evidence[receipt]".to_owned(), "file_abc".to_owned()),
            ("submit".to_owned(), "true".to_owned()),
        ]
    );
    // The brackets stay literal, as Stripe's own libraries send them.
    let raw = String::from_utf8(reqs[0].body.clone()).expect("utf-8");
    assert!(
        raw.contains("evidence[customer_name]=Ada%20%26%20Co"),
        "{raw}"
    );
}

#[tokio::test]
async fn close_dispute_posts_to_close_with_an_idempotency_key() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/disputes/dp_1/close"))
        .and(header("idempotency-key", "dpc-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(dispute_json("lost", 0)))
        .expect(1)
        .mount(&server)
        .await;
    let d = client
        .close_dispute(&key(), "dp_1", "dpc-1")
        .await
        .expect("closed");
    assert_eq!(d.status, "lost");
    assert!(received(&server).await[0].body.is_empty());
}

#[tokio::test]
async fn upload_file_goes_to_the_files_host_as_multipart() {
    let api = MockServer::start().await;
    let files = MockServer::start().await;
    let client = StripeClient::new(paygate_stripe::ClientConfig {
        files_base: files.uri(),
        ..config(api.uri())
    })
    .expect("client builds");
    Mock::given(method("POST"))
        .and(path("/v1/files"))
        .and(header("idempotency-key", "file-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "file_123", "object": "file", "purpose": "dispute_evidence",
            "filename": "receipt.pdf", "size": 9
        })))
        .expect(1)
        .mount(&files)
        .await;
    let f = client
        .upload_file(
            &key(),
            &FileUpload {
                purpose: "dispute_evidence".into(),
                filename: "receipt.pdf".into(),
                content_type: "application/pdf".into(),
                bytes: b"%PDF-1.4\n".to_vec(),
            },
            "file-1",
        )
        .await
        .expect("uploaded");
    assert_eq!(f.id, "file_123");
    assert!(
        received(&api).await.is_empty(),
        "nothing reached the API host"
    );
    let reqs = received(&files).await;
    let ct = reqs[0]
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .expect("content type");
    let boundary = ct
        .strip_prefix("multipart/form-data; boundary=")
        .expect("multipart");
    let body = String::from_utf8(reqs[0].body.clone()).expect("utf-8");
    assert!(body.starts_with(&format!("--{boundary}\r\n")), "{body}");
    assert!(
        body.contains(
            "Content-Disposition: form-data; name=\"purpose\"\r\n\r\ndispute_evidence\r\n"
        ),
        "{body}"
    );
    assert!(
        body.contains("name=\"file\"; filename=\"receipt.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\n\r\n"),
        "{body}"
    );
    assert!(body.ends_with(&format!("--{boundary}--\r\n")));
}
