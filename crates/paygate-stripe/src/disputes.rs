//! Disputes and their evidence files: update a dispute's evidence (`POST /v1/disputes/{id}`,
//! form-encoded `evidence[field]=…` and `submit`), close (accept) a dispute
//! (`POST /v1/disputes/{id}/close`), and upload a file (`POST /v1/files` on Stripe's files host,
//! multipart/form-data). Every call carries the caller's idempotency key.

use std::collections::BTreeMap;

use rand::Rng as _;
use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;

use crate::client::{RawBody, StripeClient};
use crate::error::StripeError;
use crate::form::{FormBuilder, encode_path_segment};

/// `POST /v1/disputes/{id}`: the evidence (Stripe's field names: texts and `file_…` ids) and
/// whether to submit it now (`submit=true`) or only save it in Stripe (`submit=false`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateDispute {
    pub evidence: BTreeMap<String, String>,
    pub submit: bool,
}

impl UpdateDispute {
    /// The form: `evidence[field]=value` for each field, then `submit`.
    #[must_use]
    pub fn to_form(&self) -> FormBuilder {
        let mut form = FormBuilder::new();
        form.push_map("evidence", &self.evidence)
            .push("submit", self.submit);
        form
    }
}

/// Stripe's `evidence_details` of a dispute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct EvidenceDetails {
    pub due_by: Option<i64>,
    pub has_evidence: bool,
    pub past_due: bool,
    pub submission_count: i64,
}

/// A dispute as Stripe answers it (the parts Paygate reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Dispute {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub evidence_details: Option<EvidenceDetails>,
}

/// A file to upload (`POST /v1/files`).
#[derive(Clone, PartialEq, Eq)]
pub struct FileUpload {
    /// Stripe's `purpose`, for example `dispute_evidence`.
    pub purpose: String,
    /// The file's name as the user gave it.
    pub filename: String,
    /// Its media type (`application/pdf`, `image/png`, `image/jpeg`).
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for FileUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileUpload")
            .field("purpose", &self.purpose)
            .field("filename", &self.filename)
            .field("content_type", &self.content_type)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// A file as Stripe answers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct File {
    /// `file_…`.
    pub id: String,
    #[serde(default)]
    pub purpose: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub size: Option<i64>,
}

/// Characters a multipart header value may not carry as they are.
fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' | '\r' | '\n' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect()
}

impl FileUpload {
    /// The multipart/form-data body (`purpose` then `file`) and its boundary.
    fn to_multipart(&self) -> RawBody {
        let token: u128 = rand::thread_rng().r#gen();
        let boundary = format!("paygate-{token:032x}");
        let mut bytes = Vec::with_capacity(self.bytes.len() + 512);
        bytes.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{}\r\n",
                header_safe(&self.purpose)
            )
            .as_bytes(),
        );
        bytes.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                header_safe(&self.filename),
                header_safe(&self.content_type)
            )
            .as_bytes(),
        );
        bytes.extend_from_slice(&self.bytes);
        bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        RawBody {
            content_type: format!("multipart/form-data; boundary={boundary}"),
            bytes,
        }
    }
}

impl StripeClient {
    /// Updates a dispute's evidence (`POST /v1/disputes/{id}`); with `submit = true` Stripe
    /// sends it to the bank and the evidence can no longer change.
    ///
    /// # Errors
    ///
    /// Any [`StripeError`]. Evidence of a dispute no longer waiting for it is an
    /// `invalid_request_error`.
    pub async fn update_dispute(
        &self,
        key: &SecretString,
        dispute_id: &str,
        params: &UpdateDispute,
        idempotency_key: &str,
    ) -> Result<Dispute, StripeError> {
        self.send(
            key,
            Method::POST,
            &format!("/v1/disputes/{}", encode_path_segment(dispute_id)),
            None,
            Some(&params.to_form()),
            Some(idempotency_key),
        )
        .await
    }

    /// Closes a dispute (`POST /v1/disputes/{id}/close`): the merchant accepts it and loses
    /// the disputed amount.
    ///
    /// # Errors
    ///
    /// Any [`StripeError`].
    pub async fn close_dispute(
        &self,
        key: &SecretString,
        dispute_id: &str,
        idempotency_key: &str,
    ) -> Result<Dispute, StripeError> {
        self.send(
            key,
            Method::POST,
            &format!("/v1/disputes/{}/close", encode_path_segment(dispute_id)),
            None,
            None,
            Some(idempotency_key),
        )
        .await
    }

    /// Uploads a file (`POST /v1/files`, multipart/form-data) to Stripe's files host
    /// ([`ClientConfig::files_base`](crate::ClientConfig::files_base)).
    ///
    /// # Errors
    ///
    /// Any [`StripeError`]. A type or size Stripe does not take for the purpose is an
    /// `invalid_request_error`.
    pub async fn upload_file(
        &self,
        key: &SecretString,
        file: &FileUpload,
        idempotency_key: &str,
    ) -> Result<File, StripeError> {
        let base = self.config().files_base.clone();
        self.send_raw(
            key,
            Method::POST,
            &base,
            "/v1/files",
            None,
            Some(file.to_multipart()),
            Some(idempotency_key),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_is_bracketed_and_submit_last() {
        let mut evidence = BTreeMap::new();
        evidence.insert("customer_name".to_owned(), "Ada L".to_owned());
        evidence.insert("receipt".to_owned(), "file_1".to_owned());
        let form = UpdateDispute {
            evidence,
            submit: false,
        }
        .to_form();
        assert_eq!(
            form.encode(),
            "evidence[customer_name]=Ada%20L&evidence[receipt]=file_1&submit=false"
        );
    }

    #[test]
    fn multipart_names_cannot_break_out() {
        let body = FileUpload {
            purpose: "dispute_evidence".into(),
            filename: "a\"\r\nb.pdf".into(),
            content_type: "application/pdf".into(),
            bytes: b"%PDF".to_vec(),
        }
        .to_multipart();
        let text = String::from_utf8_lossy(&body.bytes);
        assert!(text.contains("filename=\"a___b.pdf\""), "{text}");
        assert!(
            body.content_type
                .starts_with("multipart/form-data; boundary=")
        );
    }
}
