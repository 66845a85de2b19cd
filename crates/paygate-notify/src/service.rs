//! Notification endpoints, their secrets, the message log, replays and the shopper e-mail
//! settings: the operations behind the admin API, the merchant API and the back office.
//!
//! Policy: an endpoint's secret is shown in full only when it is made (creation, rotation);
//! afterwards masked. Secrets are sealed with the master key. Every query is scoped by the
//! company, so one company's ids never reach another's rows. A company has at most
//! `max_endpoints` endpoints (422 `too_many_endpoints`) and sends at most
//! `test_pings_per_hour` test messages in any hour (429 `too_many_test_pings`), counted in the
//! database so every replica agrees; both are checked under a lock on the company's row on
//! PostgreSQL (SQLite has one writer), so concurrent requests cannot pass them together.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

use crate::outbox::{self, MESSAGE_TYPES};
use paygate_db::entities::{
    company, notification_attempt, notification_delivery, notification_endpoint,
    notification_endpoint_secret, notification_message, notification_settings,
};
use paygate_db::{Mode, NotificationStatus, Scope, Tenant, new_id, new_ordered_id, now_ms};
use paygate_tenant::crypto::{Keyring, field, mask};
use paygate_web::{ApiError, rfc3339_ms};

use crate::outbound::{UrlError, check_url};
use crate::signing::generate_secret;

/// A new endpoint.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointIn {
    pub url: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// Changes to an endpoint.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// An endpoint as shown.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointOut {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why Paygate disabled it (deliveries failing for days), if it did.
    pub disabled_reason: Option<String>,
    pub failing_since: Option<String>,
    /// In full only in the answer that made it; masked otherwise.
    pub secret: String,
    pub created_at: String,
    pub updated_at: String,
}

/// A message as listed.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MessageOut {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub livemode: bool,
    pub created_at: String,
    pub payload: Value,
    pub deliveries: Vec<DeliveryOut>,
}

/// A delivery of a message.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryOut {
    pub id: i64,
    pub channel: String,
    pub endpoint_id: Option<String>,
    /// The shopper's address, masked.
    pub recipient: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<String>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptOut>>,
}

/// One attempt.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptOut {
    pub attempted_at: String,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub error: Option<String>,
    pub response_body: Option<String>,
}

/// The shopper e-mail settings of a company.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsIo {
    pub shopper_emails: bool,
    #[serde(default)]
    pub sender_name: Option<String>,
}

/// A page of messages.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessagePage {
    pub data: Vec<MessageOut>,
    pub has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// What one company may do (`PAYGATE_NOTIFY_MAX_ENDPOINTS_PER_COMPANY`,
/// `PAYGATE_NOTIFY_TEST_PINGS_PER_HOUR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifyLimits {
    /// Endpoints a company may have.
    pub max_endpoints: u64,
    /// Test messages a company may send in any hour.
    pub test_pings_per_hour: u64,
}

impl Default for NotifyLimits {
    fn default() -> Self {
        Self {
            max_endpoints: 10,
            test_pings_per_hour: 30,
        }
    }
}

/// The notification operations.
#[derive(Clone, Debug)]
pub struct NotifyService {
    db: DatabaseConnection,
    keyring: Keyring,
    allow_private: bool,
    smtp_configured: bool,
    wake: Arc<Notify>,
    limits: NotifyLimits,
}

fn invalid(field: &'static str, msg: impl Into<String>) -> ApiError {
    ApiError::unprocessable("invalid_parameter", msg.into()).with_field(field)
}

/// A refused URL: `host_unresolvable` and `private_address` say which rule refused it, so a
/// page can say so in words; every other form problem is `invalid_parameter`.
fn url_error(e: UrlError) -> ApiError {
    let code = match e {
        UrlError::Unresolvable => "host_unresolvable",
        UrlError::Private(_) => "private_address",
        UrlError::Invalid | UrlError::Scheme | UrlError::Credentials => "invalid_parameter",
    };
    ApiError::unprocessable(code, format!("url: {e}")).with_field("url")
}

fn check_types(types: &[String]) -> Result<(), ApiError> {
    if types.len() > MESSAGE_TYPES.len() + 1 {
        return Err(invalid("event_types", "too many event types"));
    }
    for t in types {
        if t != "*" && !MESSAGE_TYPES.contains(&t.as_str()) {
            return Err(invalid(
                "event_types",
                format!(
                    "unknown event type {t:?}; known: {}",
                    MESSAGE_TYPES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn check_description(d: &Option<String>) -> Result<(), ApiError> {
    if d.as_ref().is_some_and(|d| d.chars().count() > 500) {
        return Err(invalid(
            "description",
            "description: at most 500 characters",
        ));
    }
    Ok(())
}

fn not_found() -> ApiError {
    ApiError::not_found(
        "notification_endpoint_not_found",
        "no such notification endpoint",
    )
}

fn mask_email(e: &str) -> String {
    match e.split_once('@') {
        Some((user, domain)) => {
            let first: String = user.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

fn delivery_out(d: notification_delivery::Model, log: Option<Vec<AttemptOut>>) -> DeliveryOut {
    DeliveryOut {
        id: d.id,
        channel: d.channel,
        endpoint_id: d.endpoint_id,
        recipient: d.recipient.as_deref().map(mask_email),
        next_attempt_at: (d.status == NotificationStatus::Pending)
            .then(|| rfc3339_ms(d.next_attempt_at)),
        status: d.status,
        attempts: d.attempts,
        last_status_code: d.last_status_code,
        last_error: d.last_error,
        delivered_at: d.delivered_at.map(rfc3339_ms),
        attempt_log: log,
    }
}

fn encode_cursor(created_at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
}

fn decode_cursor(c: &str) -> Result<(i64, String), ApiError> {
    let bad = || ApiError::bad_request("invalid_cursor", "the pagination cursor is not valid");
    let s = String::from_utf8(URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?).map_err(|_| bad())?;
    let (t, id) = s.split_once(':').ok_or_else(bad)?;
    Ok((t.parse().map_err(|_| bad())?, id.to_owned()))
}

impl NotifyService {
    /// The service over `db`. `allow_private` lets endpoints reach private addresses
    /// (`PAYGATE_OUTBOUND_ALLOW_PRIVATE`); `smtp_configured` whether shopper e-mails can be
    /// sent; `wake` nudges the delivery workers.
    pub fn new(
        db: DatabaseConnection,
        keyring: Keyring,
        allow_private: bool,
        smtp_configured: bool,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            db,
            keyring,
            allow_private,
            smtp_configured,
            wake,
            limits: NotifyLimits::default(),
        }
    }

    /// The same with other per-company limits.
    #[must_use]
    pub fn with_limits(mut self, limits: NotifyLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The per-company limits.
    pub fn limits(&self) -> NotifyLimits {
        self.limits
    }

    /// Whether a mail server is configured (`PAYGATE_SMTP_URL`): without one no shopper e-mail
    /// is sent, whatever a company's settings say.
    pub fn smtp_configured(&self) -> bool {
        self.smtp_configured
    }

    /// Locks the company's row until `txn` ends (PostgreSQL; SQLite has one writer anyway), so
    /// the checks of the limits and the writes they allow happen one request at a time.
    async fn lock_company(&self, txn: &DatabaseTransaction, company_pk: i64) -> Result<(), DbErr> {
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            company::Entity::find_by_id(company_pk)
                .lock_exclusive()
                .one(txn)
                .await?;
        }
        Ok(())
    }

    /// The delivery workers' wake-up.
    pub fn wake(&self) -> &Arc<Notify> {
        &self.wake
    }

    fn out(&self, e: notification_endpoint::Model, secret: String) -> EndpointOut {
        EndpointOut {
            event_types: serde_json::from_str(&e.event_types).unwrap_or_default(),
            id: e.id,
            url: e.url,
            description: e.description,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since.map(rfc3339_ms),
            secret,
            created_at: rfc3339_ms(e.created_at),
            updated_at: rfc3339_ms(e.updated_at),
        }
    }

    async fn find(
        &self,
        tenant: Tenant,
        id: &str,
    ) -> Result<notification_endpoint::Model, ApiError> {
        tenant
            .find::<notification_endpoint::Entity>()
            .filter(notification_endpoint::Column::Id.eq(id))
            .one(&self.db)
            .await?
            .ok_or_else(not_found)
    }

    /// The secrets that sign right now, newest first (plaintext). Each must open for this
    /// company's endpoint: a secret moved here from another row is an error.
    pub async fn live_secrets(
        &self,
        company_pk: i64,
        endpoint_id: &str,
    ) -> Result<Vec<String>, ApiError> {
        let now = now_ms();
        let rows = notification_endpoint_secret::Entity::find()
            .filter(notification_endpoint_secret::Column::EndpointId.eq(endpoint_id))
            .filter(
                Condition::any()
                    .add(notification_endpoint_secret::Column::ExpiresAt.is_null())
                    .add(notification_endpoint_secret::Column::ExpiresAt.gt(now)),
            )
            .order_by_desc(notification_endpoint_secret::Column::Id)
            .all(&self.db)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let s = self
                .keyring
                .open(
                    field::NOTIFICATION_ENDPOINT_SECRET.owner(company_pk, endpoint_id),
                    &r.secret_sealed,
                )
                .map_err(ApiError::internal)?;
            out.push(secrecy::ExposeSecret::expose_secret(&s).to_owned());
        }
        Ok(out)
    }

    async fn masked_secret(&self, company_pk: i64, endpoint_id: &str) -> Result<String, ApiError> {
        Ok(self
            .live_secrets(company_pk, endpoint_id)
            .await?
            .first()
            .map(|s| mask(s))
            .unwrap_or_default())
    }

    /// Creates an endpoint; the answer holds its secret in full, the only time it is shown.
    pub async fn create(&self, company_pk: i64, e: EndpointIn) -> Result<EndpointOut, ApiError> {
        check_description(&e.description)?;
        let types = e.event_types.unwrap_or_default();
        check_types(&types)?;
        let url = check_url(e.url.trim(), self.allow_private)
            .await
            .map_err(url_error)?;
        let now = now_ms();
        let id = new_id("ne");
        let secret = generate_secret();
        let tenant = Tenant::new(company_pk);
        let txn = self.db.begin().await?;
        self.lock_company(&txn, company_pk).await?;
        let max = self.limits.max_endpoints;
        if tenant
            .find::<notification_endpoint::Entity>()
            .count(&txn)
            .await?
            >= max
        {
            return Err(ApiError::unprocessable(
                "too_many_endpoints",
                format!(
                    "a company can have at most {max} notification endpoints; delete one first"
                ),
            ));
        }
        notification_endpoint::Entity::insert(notification_endpoint::ActiveModel {
            id: Set(id.clone()),
            company_pk: Set(tenant.company_pk()),
            url: Set(url.to_string()),
            description: Set(e.description.filter(|d| !d.trim().is_empty())),
            event_types: Set(serde_json::to_string(&types).unwrap_or_else(|_| "[]".into())),
            enabled: Set(e.enabled.unwrap_or(true)),
            disabled_reason: Set(None),
            failing_since: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        notification_endpoint_secret::Entity::insert(notification_endpoint_secret::ActiveModel {
            endpoint_id: Set(id.clone()),
            secret_sealed: Set(self.keyring.seal(
                field::NOTIFICATION_ENDPOINT_SECRET.owner(tenant.company_pk(), &id),
                &secret,
            )),
            created_at: Set(now),
            expires_at: Set(None),
            ..Default::default()
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        let m = self.find(tenant, &id).await?;
        Ok(self.out(m, secret))
    }

    /// The endpoints of a company, secrets masked.
    pub async fn list(&self, company_pk: i64) -> Result<Vec<EndpointOut>, ApiError> {
        let rows = Tenant::new(company_pk)
            .find::<notification_endpoint::Entity>()
            .order_by_asc(notification_endpoint::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let s = self.masked_secret(company_pk, &r.id).await?;
            out.push(self.out(r, s));
        }
        Ok(out)
    }

    /// One endpoint, secret masked.
    pub async fn get(&self, company_pk: i64, id: &str) -> Result<EndpointOut, ApiError> {
        let m = self.find(Tenant::new(company_pk), id).await?;
        let s = self.masked_secret(company_pk, id).await?;
        Ok(self.out(m, s))
    }

    /// Changes an endpoint; enabling it again clears what Paygate noted when it disabled it.
    pub async fn update(
        &self,
        company_pk: i64,
        id: &str,
        p: EndpointPatch,
    ) -> Result<EndpointOut, ApiError> {
        let tenant = Tenant::new(company_pk);
        let cur = self.find(tenant, id).await?;
        let mut q = tenant.update::<notification_endpoint::Entity>().col_expr(
            notification_endpoint::Column::UpdatedAt,
            Expr::value(now_ms()),
        );
        if let Some(u) = &p.url {
            let url = check_url(u.trim(), self.allow_private)
                .await
                .map_err(url_error)?;
            q = q.col_expr(
                notification_endpoint::Column::Url,
                Expr::value(url.to_string()),
            );
        }
        if p.description.is_some() {
            check_description(&p.description)?;
            q = q.col_expr(
                notification_endpoint::Column::Description,
                Expr::value(p.description.filter(|d| !d.trim().is_empty())),
            );
        }
        if let Some(t) = &p.event_types {
            check_types(t)?;
            q = q.col_expr(
                notification_endpoint::Column::EventTypes,
                Expr::value(serde_json::to_string(t).unwrap_or_else(|_| "[]".into())),
            );
        }
        if let Some(en) = p.enabled {
            q = q.col_expr(notification_endpoint::Column::Enabled, Expr::value(en));
            if en && !cur.enabled {
                q = q
                    .col_expr(
                        notification_endpoint::Column::DisabledReason,
                        Expr::value(Option::<String>::None),
                    )
                    .col_expr(
                        notification_endpoint::Column::FailingSince,
                        Expr::value(Option::<i64>::None),
                    );
            }
        }
        q.filter(notification_endpoint::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        self.get(company_pk, id).await
    }

    /// Deletes an endpoint with its deliveries.
    pub async fn delete(&self, company_pk: i64, id: &str) -> Result<(), ApiError> {
        let tenant = Tenant::new(company_pk);
        self.find(tenant, id).await?;
        let txn = self.db.begin().await?;
        // Children first: SQLite enforces the cascade only with foreign keys switched on.
        let deliveries = notification_delivery::Entity::find()
            .select_only()
            .column(notification_delivery::Column::Id)
            .filter(notification_delivery::Column::EndpointId.eq(id))
            .into_tuple::<i64>()
            .all(&txn)
            .await?;
        for chunk in deliveries.chunks(500) {
            notification_attempt::Entity::delete_many()
                .filter(notification_attempt::Column::DeliveryId.is_in(chunk.iter().copied()))
                .exec(&txn)
                .await?;
        }
        notification_delivery::Entity::delete_many()
            .filter(notification_delivery::Column::EndpointId.eq(id))
            .exec(&txn)
            .await?;
        notification_endpoint_secret::Entity::delete_many()
            .filter(notification_endpoint_secret::Column::EndpointId.eq(id))
            .exec(&txn)
            .await?;
        tenant
            .delete::<notification_endpoint::Entity>()
            .filter(notification_endpoint::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// A new secret for an endpoint (returned in full); the old ones keep signing for `grace`.
    pub async fn rotate(
        &self,
        company_pk: i64,
        id: &str,
        grace: Duration,
    ) -> Result<EndpointOut, ApiError> {
        let m = self.find(Tenant::new(company_pk), id).await?;
        let now = now_ms();
        let secret = generate_secret();
        let until = now.saturating_add(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
        let txn = self.db.begin().await?;
        notification_endpoint_secret::Entity::update_many()
            .col_expr(
                notification_endpoint_secret::Column::ExpiresAt,
                Expr::value(until),
            )
            .filter(notification_endpoint_secret::Column::EndpointId.eq(id))
            .filter(
                Condition::any()
                    .add(notification_endpoint_secret::Column::ExpiresAt.is_null())
                    .add(notification_endpoint_secret::Column::ExpiresAt.gt(until)),
            )
            .exec(&txn)
            .await?;
        notification_endpoint_secret::Entity::insert(notification_endpoint_secret::ActiveModel {
            endpoint_id: Set(id.to_owned()),
            secret_sealed: Set(self.keyring.seal(
                field::NOTIFICATION_ENDPOINT_SECRET.owner(company_pk, id),
                &secret,
            )),
            created_at: Set(now),
            expires_at: Set(None),
            ..Default::default()
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(self.out(m, secret))
    }

    /// Sends a `ping` message to one endpoint; returns the message id. At most
    /// `test_pings_per_hour` per company in any hour.
    pub async fn send_test(&self, company_pk: i64, id: &str) -> Result<String, ApiError> {
        let tenant = Tenant::new(company_pk);
        let ep = self.find(tenant, id).await?;
        let company = company::Entity::find_by_id(company_pk)
            .one(&self.db)
            .await?
            .ok_or_else(not_found)?;
        let msg = new_ordered_id("msg");
        let now = now_ms();
        let txn = self.db.begin().await?;
        self.lock_company(&txn, company_pk).await?;
        let hour_ago = now - 3_600_000;
        let recent = tenant
            .in_mode(Mode::Test)
            .notification_messages()
            .filter(notification_message::Column::EventType.eq("ping"))
            .filter(notification_message::Column::CreatedAt.gt(hour_ago))
            .select_only()
            .column(notification_message::Column::CreatedAt)
            .order_by_desc(notification_message::Column::CreatedAt)
            .limit(self.limits.test_pings_per_hour)
            .into_tuple::<i64>()
            .all(&txn)
            .await?;
        let limit = self.limits.test_pings_per_hour;
        if recent.len() as u64 >= limit {
            // The oldest of the last `limit` leaves the hour first.
            let free_at = recent.last().copied().unwrap_or(now) + 3_600_000;
            let minutes = ((free_at - now).max(0) + 59_999) / 60_000;
            return Err(ApiError::too_many_requests(
                "too_many_test_pings",
                format!(
                    "at most {limit} test messages per hour; the next one can be sent in {minutes} minute(s)"
                ),
            ));
        }
        let payload = serde_json::json!({
            "id": msg,
            "type": "ping",
            "version": outbox::MESSAGE_VERSION,
            "created_at": rfc3339_ms(now),
            "livemode": false,
            "company_id": company.company_id,
            "data": {"object": {"object": "ping", "endpoint_id": ep.id, "message": "a test message from Paygate"}},
        });
        notification_message::Entity::insert(notification_message::ActiveModel {
            id: Set(msg.clone()),
            company_pk: Set(tenant.company_pk()),
            event_type: Set("ping".into()),
            livemode: Set(false),
            dedupe_key: Set(format!("ping:{msg}")),
            payload: Set(payload.to_string()),
            created_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        notification_delivery::Entity::insert(outbox::delivery(
            &msg,
            tenant.company_pk(),
            "webhook",
            Some(ep.id.clone()),
            None,
            None,
            now,
        ))
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        self.wake.notify_waiters();
        Ok(msg)
    }

    /// Sends a message again to every destination it had (each delivery gets a fresh retry
    /// schedule; the webhook id stays the same, so receivers can tell it is a repeat).
    pub async fn replay_message(&self, scope: Scope, msg_id: &str) -> Result<u64, ApiError> {
        let tenant = scope.tenant();
        scope
            .notification_messages()
            .filter(notification_message::Column::Id.eq(msg_id))
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("message_not_found", "no such message"))?;
        let n = self
            .reset(
                tenant,
                Condition::all().add(notification_delivery::Column::MessageId.eq(msg_id)),
            )
            .await?;
        Ok(n)
    }

    /// Sends again every failed message of an endpoint created at or after `since_ms`.
    pub async fn replay_failed(
        &self,
        company_pk: i64,
        endpoint_id: &str,
        since_ms: i64,
    ) -> Result<u64, ApiError> {
        let tenant = Tenant::new(company_pk);
        self.find(tenant, endpoint_id).await?;
        self.reset(
            tenant,
            Condition::all()
                .add(notification_delivery::Column::EndpointId.eq(endpoint_id))
                .add(notification_delivery::Column::Status.eq(NotificationStatus::Failed.as_str()))
                .add(notification_delivery::Column::CreatedAt.gte(since_ms)),
        )
        .await
    }

    async fn reset(&self, tenant: Tenant, cond: Condition) -> Result<u64, ApiError> {
        let now = now_ms();
        let n = tenant
            .update::<notification_delivery::Entity>()
            .col_expr(
                notification_delivery::Column::Status,
                Expr::value(NotificationStatus::Pending.as_str()),
            )
            .col_expr(notification_delivery::Column::Attempts, Expr::value(0))
            .col_expr(
                notification_delivery::Column::NextAttemptAt,
                Expr::value(now),
            )
            .col_expr(
                notification_delivery::Column::LockedUntil,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(notification_delivery::Column::UpdatedAt, Expr::value(now))
            .filter(cond)
            .filter(notification_delivery::Column::Status.ne(NotificationStatus::Pending.as_str()))
            .exec(&self.db)
            .await?
            .rows_affected;
        self.wake.notify_waiters();
        Ok(n)
    }

    /// The messages of a company in one mode, newest first, with their deliveries.
    pub async fn messages(
        &self,
        scope: Scope,
        event_type: Option<&str>,
        limit: u64,
        cursor: Option<&str>,
    ) -> Result<MessagePage, ApiError> {
        let mut q = scope.notification_messages();
        if let Some(t) = event_type {
            q = q.filter(notification_message::Column::EventType.eq(t));
        }
        if let Some(c) = cursor {
            let (t, id) = decode_cursor(c)?;
            q = q.filter(
                Condition::any()
                    .add(notification_message::Column::CreatedAt.lt(t))
                    .add(
                        Condition::all()
                            .add(notification_message::Column::CreatedAt.eq(t))
                            .add(notification_message::Column::Id.lt(id)),
                    ),
            );
        }
        let mut rows = q
            .order_by_desc(notification_message::Column::CreatedAt)
            .order_by_desc(notification_message::Column::Id)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let has_more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = has_more
            .then(|| rows.last().map(|m| encode_cursor(m.created_at, &m.id)))
            .flatten();
        let ids: Vec<String> = rows.iter().map(|m| m.id.clone()).collect();
        let deliveries = if ids.is_empty() {
            Vec::new()
        } else {
            notification_delivery::Entity::find()
                .filter(notification_delivery::Column::MessageId.is_in(ids))
                .order_by_asc(notification_delivery::Column::Id)
                .all(&self.db)
                .await?
        };
        let data = rows
            .into_iter()
            .map(|m| {
                let ds = deliveries
                    .iter()
                    .filter(|d| d.message_id == m.id)
                    .cloned()
                    .map(|d| delivery_out(d, None))
                    .collect();
                message_out(m, ds)
            })
            .collect();
        Ok(MessagePage {
            data,
            has_more,
            next_cursor,
        })
    }

    /// One message with its deliveries and every attempt.
    pub async fn message(&self, scope: Scope, msg_id: &str) -> Result<MessageOut, ApiError> {
        let m = scope
            .notification_messages()
            .filter(notification_message::Column::Id.eq(msg_id))
            .one(&self.db)
            .await?
            .ok_or_else(|| ApiError::not_found("message_not_found", "no such message"))?;
        let ds = notification_delivery::Entity::find()
            .filter(notification_delivery::Column::MessageId.eq(msg_id))
            .order_by_asc(notification_delivery::Column::Id)
            .all(&self.db)
            .await?;
        let mut out = Vec::with_capacity(ds.len());
        for d in ds {
            let log = notification_attempt::Entity::find()
                .filter(notification_attempt::Column::DeliveryId.eq(d.id))
                .order_by_asc(notification_attempt::Column::Id)
                .all(&self.db)
                .await?
                .into_iter()
                .map(|a| AttemptOut {
                    attempted_at: rfc3339_ms(a.attempted_at),
                    status_code: a.status_code,
                    duration_ms: a.duration_ms,
                    error: a.error,
                    response_body: a.response_body,
                })
                .collect();
            out.push(delivery_out(d, Some(log)));
        }
        Ok(message_out(m, out))
    }

    /// Counts of deliveries by status for a company (for the back office).
    pub async fn pending_count(&self, company_pk: i64) -> Result<u64, ApiError> {
        Ok(Tenant::new(company_pk)
            .find::<notification_delivery::Entity>()
            .filter(notification_delivery::Column::Status.eq(NotificationStatus::Pending.as_str()))
            .count(&self.db)
            .await?)
    }

    /// The shopper e-mail settings.
    pub async fn settings(&self, company_pk: i64) -> Result<SettingsIo, ApiError> {
        let s = Tenant::new(company_pk)
            .find::<notification_settings::Entity>()
            .one(&self.db)
            .await?;
        Ok(SettingsIo {
            shopper_emails: s.as_ref().is_some_and(|s| s.shopper_emails),
            sender_name: s.and_then(|s| s.sender_name),
        })
    }

    /// Saves the shopper e-mail settings; e-mails can be turned on only when SMTP is set up.
    pub async fn save_settings(
        &self,
        company_pk: i64,
        s: SettingsIo,
    ) -> Result<SettingsIo, ApiError> {
        if s.shopper_emails && !self.smtp_configured {
            return Err(invalid(
                "shopper_emails",
                "shopper e-mails need an SMTP server: the operator sets PAYGATE_SMTP_URL",
            ));
        }
        let name = s
            .sender_name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        if name
            .as_ref()
            .is_some_and(|n| n.chars().count() > 100 || n.chars().any(char::is_control))
        {
            return Err(invalid(
                "sender_name",
                "sender_name: at most 100 characters, on one line",
            ));
        }
        notification_settings::Entity::insert(notification_settings::ActiveModel {
            company_pk: Set(company_pk),
            shopper_emails: Set(s.shopper_emails),
            sender_name: Set(name),
            updated_at: Set(now_ms()),
        })
        .on_conflict(
            OnConflict::column(notification_settings::Column::CompanyPk)
                .update_columns([
                    notification_settings::Column::ShopperEmails,
                    notification_settings::Column::SenderName,
                    notification_settings::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        self.settings(company_pk).await
    }
}

fn message_out(m: notification_message::Model, deliveries: Vec<DeliveryOut>) -> MessageOut {
    MessageOut {
        payload: serde_json::from_str(&m.payload).unwrap_or(Value::Null),
        id: m.id,
        event_type: m.event_type,
        livemode: m.livemode,
        created_at: rfc3339_ms(m.created_at),
        deliveries,
    }
}
