//! Operators' views of a company's payment domain, and event replay.
//!
//! Policy: every query filters by the company named in the path (another company's objects are
//! "not found"); objects are addressed by their Stripe ids; lists page with an opaque cursor;
//! wire types (`XxxOut`) are built from entities, never the entities themselves. Replay makes a
//! stored event due again; the handlers being idempotent, a replay of an applied event changes
//! nothing.

use actix_web::{HttpResponse, web};
use base64::Engine as _;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sea_orm::{Condition, Order};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use paygate_db::Mode;
use paygate_db::entities::{
    charge, checkout_session, dispute, issuing_object, order, payment_intent, payment_method,
    stripe_account,
};
use paygate_web::{ApiError, Page, decode_cursor, encode_cursor, rfc3339_ms, rfc3339_s};

use crate::error_body::ErrorBody;
use crate::{AdminState, List, ModeQuery, OperatorPrincipal, page_limit};

/// List filters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `test` or `live`; the company's environment when absent.
    mode: Option<Mode>,
    /// Stripe's status of the object.
    status: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn nf(what: &'static str) -> ApiError {
    ApiError::not_found(
        format!("{what}_not_found"),
        format!("no such {what} for this company"),
    )
}

/// A payment intent on the wire.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentIntentOut {
    pub id: String,
    pub object: &'static str,
    pub livemode: bool,
    pub status: String,
    pub amount: i64,
    pub amount_capturable: i64,
    pub amount_received: i64,
    pub currency: String,
    pub customer: Option<String>,
    /// `{"code","decline_code","message","type"}` of the last failed attempt.
    #[schema(value_type = Option<Object>)]
    pub last_payment_error: Option<Value>,
    pub cancellation_reason: Option<String>,
    pub disputed: bool,
    /// The `created` of the event whose state this is.
    pub state_created: String,
    pub updated_at: String,
}

/// A payment intent on the wire.
pub fn payment_intent_out(m: &payment_intent::Model) -> PaymentIntentOut {
    PaymentIntentOut {
        id: m.stripe_id.clone(),
        object: "payment_intent",
        livemode: m.livemode,
        status: m.status.clone(),
        amount: m.amount,
        amount_capturable: m.amount_capturable,
        amount_received: m.amount_received,
        currency: m.currency.clone(),
        customer: m.customer.clone(),
        last_payment_error: m
            .last_payment_error
            .as_deref()
            .and_then(|e| serde_json::from_str::<Value>(e).ok()),
        cancellation_reason: m.cancellation_reason.clone(),
        disputed: m.disputed,
        state_created: rfc3339_s(m.state_created),
        updated_at: rfc3339_ms(m.updated_at),
    }
}

/// A charge on the wire.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChargeOut {
    pub id: String,
    pub object: &'static str,
    pub livemode: bool,
    pub status: String,
    pub amount: i64,
    pub amount_refunded: i64,
    pub refunded: bool,
    pub currency: String,
    pub payment_intent: Option<String>,
    pub source: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub disputed: bool,
    pub state_created: String,
    pub updated_at: String,
}

/// A charge on the wire.
pub fn charge_out(m: &charge::Model) -> ChargeOut {
    ChargeOut {
        id: m.stripe_id.clone(),
        object: "charge",
        livemode: m.livemode,
        status: m.status.clone(),
        amount: m.amount,
        amount_refunded: m.amount_refunded,
        refunded: m.refunded,
        currency: m.currency.clone(),
        payment_intent: m.payment_intent_id.clone(),
        source: m.source_id.clone(),
        failure_code: m.failure_code.clone(),
        failure_message: m.failure_message.clone(),
        disputed: m.disputed,
        state_created: rfc3339_s(m.state_created),
        updated_at: rfc3339_ms(m.updated_at),
    }
}

/// Dispute statuses that wait for the merchant's evidence.
const NEEDS_RESPONSE: [&str; 2] = ["needs_response", "warning_needs_response"];

/// A dispute on the wire.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DisputeOut {
    pub id: String,
    pub object: &'static str,
    pub livemode: bool,
    pub status: String,
    pub reason: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
    pub evidence_due_by: Option<String>,
    /// Money taken from the balance for the dispute (positive).
    pub funds_withdrawn: i64,
    /// Money given back when the dispute was won.
    pub funds_reinstated: i64,
    /// Whether Stripe waits for the merchant's evidence.
    pub needs_response: bool,
    pub state_created: String,
    pub updated_at: String,
}

/// A dispute on the wire.
pub fn dispute_out(m: &dispute::Model) -> DisputeOut {
    DisputeOut {
        id: m.stripe_id.clone(),
        object: "dispute",
        livemode: m.livemode,
        status: m.status.clone(),
        reason: m.reason.clone(),
        amount: m.amount,
        currency: m.currency.clone(),
        charge: m.charge_id.clone(),
        payment_intent: m.payment_intent_id.clone(),
        evidence_due_by: m.evidence_due_by.map(rfc3339_s),
        funds_withdrawn: m.funds_withdrawn,
        funds_reinstated: m.funds_reinstated,
        needs_response: NEEDS_RESPONSE.contains(&m.status.as_str()),
        state_created: rfc3339_s(m.state_created),
        updated_at: rfc3339_ms(m.updated_at),
    }
}

/// A connected Stripe account as the last `account.updated` left it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StripeAccountOut {
    pub id: String,
    pub livemode: bool,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    pub requirements: RequirementsOut,
    pub state_created: String,
    pub updated_at: String,
}

/// What Stripe still needs from an account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequirementsOut {
    pub currently_due: Vec<String>,
    pub disabled_reason: Option<String>,
}

impl From<&stripe_account::Model> for StripeAccountOut {
    fn from(a: &stripe_account::Model) -> Self {
        Self {
            id: a.account_id.clone(),
            livemode: a.livemode,
            charges_enabled: a.charges_enabled,
            payouts_enabled: a.payouts_enabled,
            details_submitted: a.details_submitted,
            requirements: RequirementsOut {
                currently_due: serde_json::from_str(&a.currently_due).unwrap_or_default(),
                disabled_reason: a.disabled_reason.clone(),
            },
            state_created: rfc3339_s(a.state_created),
            updated_at: rfc3339_ms(a.updated_at),
        }
    }
}

/// A card payment method's latest details.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentMethodOut {
    pub id: String,
    pub object: &'static str,
    pub livemode: bool,
    pub customer: Option<String>,
    pub card: CardOut,
    pub updated_at: String,
}

/// Card details.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CardOut {
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<i32>,
    pub exp_year: Option<i32>,
}

/// An Issuing card or cardholder's latest status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuingObjectOut {
    pub id: String,
    pub livemode: bool,
    /// `card` or `cardholder`.
    pub kind: String,
    pub status: Option<String>,
    pub updated_at: String,
}

/// The answer to a replay.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayOut {
    /// The event's id (`evt_…`).
    pub id: String,
    /// `pending`: the event is due again.
    pub status: &'static str,
}

/// An order with its payments, fulfillment and disputes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderOut {
    /// `ord_…`.
    pub id: String,
    /// `order`.
    pub object: &'static str,
    pub livemode: bool,
    /// `checkout` or `source`.
    pub kind: String,
    /// `open`, `awaiting_payment`, `charging`, `payment_failed`, `expired`, `canceled`, `paid`,
    /// `fulfilled`, `partially_refunded` or `refunded`.
    pub status: String,
    /// The Checkout Session (`cs_…`) of a `checkout` order.
    pub checkout_session: Option<String>,
    /// The Source (`src_…`) of a `source` order.
    pub source: Option<String>,
    pub payment_intent: Option<String>,
    pub charge: Option<String>,
    /// In the currency's smallest unit.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub customer_email: Option<String>,
    /// The shopper's language (a Stripe Checkout locale such as `it`), for their e-mails and
    /// landing page.
    pub locale: Option<String>,
    pub client_reference_id: Option<String>,
    pub description: Option<String>,
    /// The merchant's metadata (string values).
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub return_url: Option<String>,
    pub disputed: bool,
    /// What is refunded: refunds pending or succeeded (a failed refund gives its amount back).
    pub amount_refunded: i64,
    /// The newest early fraud warning on the order's payment, if any.
    pub fraud_warning: Option<FraudWarningOut>,
    pub fulfilled_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The payment intent.
    pub payment: Option<PaymentIntentOut>,
    pub charges: Vec<ChargeOut>,
    pub disputes: Vec<DisputeOut>,
    pub fulfillment: Option<FulfillmentOut>,
    pub line_items: Vec<LineItemOut>,
    /// Its refunds, whoever made them, oldest first.
    pub refunds: Vec<RefundOut>,
}

/// A refund of an order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefundOut {
    /// Stripe's `re_…`.
    pub id: String,
    /// `refund`.
    pub object: &'static str,
    /// The order (`ord_…`), when known.
    pub order_id: Option<String>,
    /// In the currency's smallest unit.
    pub amount: i64,
    pub currency: String,
    /// `pending`, `requires_action`, `succeeded`, `failed` or `canceled`.
    pub status: String,
    /// `duplicate`, `fraudulent`, `requested_by_customer` (or another of Stripe's).
    pub reason: Option<String>,
    /// Why a `failed` refund failed (Stripe's `failure_reason`, e.g. `expired_or_canceled_card`).
    pub failure_reason: Option<String>,
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
    pub livemode: bool,
    pub created_at: String,
}

/// A refund as the API shows it.
pub fn refund_out(r: &paygate_db::entities::refund::Model, order_id: Option<&str>) -> RefundOut {
    RefundOut {
        id: r.stripe_refund_id.clone(),
        object: "refund",
        order_id: r.order_id.clone().or_else(|| order_id.map(str::to_owned)),
        amount: r.amount,
        currency: r.currency.clone(),
        status: r.status.clone(),
        reason: r.reason.clone(),
        failure_reason: r.failure_reason.clone(),
        charge: r.charge_id.clone(),
        payment_intent: r.payment_intent_id.clone(),
        livemode: r.livemode,
        created_at: rfc3339_ms(r.created_at),
    }
}

/// Stripe Radar's early fraud warning on an order's payment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FraudWarningOut {
    /// Stripe's `issfr_…`.
    pub id: String,
    /// `card_never_received`, `fraudulent_card_application`, `made_with_counterfeit_card`,
    /// `made_with_lost_card`, `made_with_stolen_card`, `misc` or `unauthorized_use_of_card`.
    pub fraud_type: String,
    /// Whether the payment can still be refunded or disputed.
    pub actionable: bool,
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
    pub livemode: bool,
}

/// An early fraud warning as the API shows it.
pub fn fraud_warning_out(w: &paygate_db::entities::early_fraud_warning::Model) -> FraudWarningOut {
    FraudWarningOut {
        id: w.stripe_id.clone(),
        fraud_type: w.fraud_type.clone(),
        actionable: w.actionable,
        charge: w.charge_id.clone(),
        payment_intent: w.payment_intent_id.clone(),
        livemode: w.livemode,
    }
}

/// How and when an order was fulfilled.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FulfillmentOut {
    pub fulfilled_at: String,
    /// What fulfilled it: the shopper's landing page or a webhook.
    pub fulfilled_by: String,
    pub payment_status: String,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    pub customer_email: Option<String>,
}

/// A line item of a Checkout Session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LineItemOut {
    /// Stripe's `li_…`.
    pub id: String,
    pub description: Option<String>,
    pub quantity: Option<i64>,
    pub amount_subtotal: i64,
    pub amount_total: i64,
    pub currency: Option<String>,
    pub price: Option<String>,
    pub product: Option<String>,
}

/// A Checkout Session with its order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckoutSessionOut {
    /// Stripe's `cs_…`.
    pub id: String,
    /// `checkout.session`.
    pub object: &'static str,
    pub livemode: bool,
    pub status: Option<String>,
    pub payment_status: Option<String>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    pub customer_email: Option<String>,
    pub payment_intent: Option<String>,
    /// `none`, `claimed` or `fulfilled`.
    pub fulfillment_status: String,
    pub fulfilled_at: Option<String>,
    pub order: OrderOut,
}

/// Processes an event again.
///
/// The handlers being idempotent, a replay of an applied event changes nothing.
#[utoipa::path(
    post,
    path = "/admin/v1/companies/{company_id}/events/{event_id}/replay",
    tag = "events",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("event_id" = String, Path, description = "Stripe's event id (`evt_…`)"),
        ModeQuery,
    ),
    responses(
        (status = 202, description = "The event is due again", body = ReplayOut),
        (status = 404, description = "No such event (`event_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn replay(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<(String, String)>,
    mode: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (company_id, event_id) = path.into_inner();
    let company = state.tenants.company(&company_id).await?;
    if !paygate_router::worker::replay(&state.db, company.scope(mode.mode), &event_id).await? {
        return Err(nf("event"));
    }
    paygate_tenant::audit::record(
        &state.db,
        &op.actor(),
        Some(company.id),
        "event.replayed",
        &event_id,
        json!({}),
    )
    .await?;
    Ok(HttpResponse::Accepted().json(ReplayOut {
        id: event_id,
        status: "pending",
    }))
}

/// Payment intents, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/payment-intents",
    tag = "payments",
    params(("company_id" = String, Path, description = "The company"), ListQuery),
    responses((status = 200, description = "A page of payment intents", body = Page<PaymentIntentOut>)),
)]
pub(crate) async fn list_payment_intents(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let limit = page_limit(q.limit);
    let mut sel = company
        .scope(q.mode)
        .payment_intents()
        .order_by_desc(payment_intent::Column::Id)
        .limit(limit + 1);
    if let Some(s) = &q.status {
        sel = sel.filter(payment_intent::Column::Status.eq(s.as_str()));
    }
    if let Some(c) = &q.cursor {
        sel = sel.filter(payment_intent::Column::Id.lt(decode_cursor(c)?));
    }
    let mut rows = sel.all(&state.db).await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(|r| encode_cursor(r.id))
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(Page {
        data: rows.iter().map(payment_intent_out).collect(),
        has_more,
        next_cursor,
    }))
}

/// A payment intent.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/payment-intents/{id}",
    tag = "payments",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("id" = String, Path, description = "Stripe's `pi_…`"),
        ModeQuery,
    ),
    responses(
        (status = 200, description = "The payment intent", body = PaymentIntentOut),
        (status = 404, description = "Not of this company and mode (`payment_intent_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get_payment_intent(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
    mode: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let m = company
        .scope(mode.mode)
        .payment_intents()
        .filter(payment_intent::Column::StripeId.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("payment_intent"))?;
    Ok(HttpResponse::Ok().json(payment_intent_out(&m)))
}

/// A charge.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/charges/{id}",
    tag = "payments",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("id" = String, Path, description = "Stripe's `ch_…`"),
        ModeQuery,
    ),
    responses(
        (status = 200, description = "The charge", body = ChargeOut),
        (status = 404, description = "Not of this company and mode (`charge_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get_charge(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
    mode: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let m = company
        .scope(mode.mode)
        .charges()
        .filter(charge::Column::StripeId.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("charge"))?;
    Ok(HttpResponse::Ok().json(charge_out(&m)))
}

/// Disputes are listed needing-response first (soonest due first), then the rest newest first:
/// the sort key is (bucket, due-by or minus the id, id), and the cursor is the last key of a
/// page. The statuses in the SQL below are constants, the cursor's parts parsed integers.
const DISPUTE_BUCKET: &str =
    "(CASE WHEN status IN ('needs_response', 'warning_needs_response') THEN 0 ELSE 1 END)";
const DISPUTE_ORDER: &str = "(CASE WHEN status IN ('needs_response', 'warning_needs_response') \
     THEN COALESCE(evidence_due_by, 9223372036854775807) ELSE -id END)";

fn dispute_key(d: &dispute::Model) -> (i64, i64, i64) {
    if NEEDS_RESPONSE.contains(&d.status.as_str()) {
        (0, d.evidence_due_by.unwrap_or(i64::MAX), d.id)
    } else {
        (1, -d.id, d.id)
    }
}

fn encode_dispute_cursor(d: &dispute::Model) -> String {
    let (b, k, id) = dispute_key(d);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("d:{b}:{k}:{id}"))
}

fn decode_dispute_cursor(cursor: &str) -> Result<(i64, i64, i64), ApiError> {
    let bad = || ApiError::bad_request("invalid_cursor", "the pagination cursor is not valid");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let s = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = s.strip_prefix("d:").ok_or_else(bad)?.split(':');
    let mut next =
        || -> Result<i64, ApiError> { parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad) };
    let key = (next()?, next()?, next()?);
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(key)
}

/// Disputes: the ones needing a response first (soonest due first), then the rest newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/disputes",
    tag = "payments",
    params(("company_id" = String, Path, description = "The company"), ListQuery),
    responses((status = 200, description = "A page of disputes", body = Page<DisputeOut>)),
)]
pub(crate) async fn list_disputes(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let limit = page_limit(q.limit);
    let mut sel = company
        .scope(q.mode)
        .disputes()
        .order_by(Expr::cust(DISPUTE_BUCKET), Order::Asc)
        .order_by(Expr::cust(DISPUTE_ORDER), Order::Asc)
        .order_by(dispute::Column::Id, Order::Asc)
        .limit(limit + 1);
    if let Some(s) = &q.status {
        sel = sel.filter(dispute::Column::Status.eq(s.as_str()));
    }
    if let Some(c) = &q.cursor {
        let (b, k, id) = decode_dispute_cursor(c)?;
        sel = sel.filter(
            Condition::any()
                .add(Expr::cust(format!("{DISPUTE_BUCKET} > {b}")))
                .add(Expr::cust(format!(
                    "{DISPUTE_BUCKET} = {b} AND {DISPUTE_ORDER} > {k}"
                )))
                .add(Expr::cust(format!(
                    "{DISPUTE_BUCKET} = {b} AND {DISPUTE_ORDER} = {k} AND id > {id}"
                ))),
        );
    }
    let mut rows = sel.all(&state.db).await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(encode_dispute_cursor)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(Page {
        data: rows.iter().map(dispute_out).collect(),
        has_more,
        next_cursor,
    }))
}

/// A dispute.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/disputes/{id}",
    tag = "payments",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("id" = String, Path, description = "Stripe's `dp_…`"),
        ModeQuery,
    ),
    responses(
        (status = 200, description = "The dispute", body = DisputeOut),
        (status = 404, description = "Not of this company and mode (`dispute_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get_dispute(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
    mode: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let m = company
        .scope(mode.mode)
        .disputes()
        .filter(dispute::Column::StripeId.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("dispute"))?;
    Ok(HttpResponse::Ok().json(dispute_out(&m)))
}

/// An order with its payments, fulfillment and disputes.
pub async fn order_out(
    db: &sea_orm::DatabaseConnection,
    m: &order::Model,
) -> Result<OrderOut, ApiError> {
    // The one view of an order (the back office reads the same).
    let view = paygate_router::read_models::order_view(db, m.clone()).await?;
    let (pi, charges, disputes, fulfillment, items, refunds, warning) = (
        view.payment,
        view.charges,
        view.disputes,
        view.fulfillment,
        view.line_items,
        view.refunds,
        view.fraud_warning,
    );
    Ok(OrderOut {
        id: m.id.clone(),
        object: "order",
        livemode: m.livemode,
        kind: m.kind.clone(),
        status: m.status.clone(),
        checkout_session: m.checkout_session_id.clone(),
        source: m.source_id.clone(),
        payment_intent: m.payment_intent_id.clone(),
        charge: m.charge_id.clone(),
        amount: m.amount,
        currency: m.currency.clone(),
        customer_email: m.customer_email.clone(),
        locale: m.locale.clone(),
        client_reference_id: m.client_reference_id.clone(),
        description: m.description.clone(),
        metadata: serde_json::from_str::<Value>(&m.metadata).unwrap_or(json!({})),
        return_url: m.return_url.clone(),
        disputed: m.disputed,
        amount_refunded: m.amount_refunded,
        fraud_warning: warning.as_ref().map(fraud_warning_out),
        fulfilled_at: m.fulfilled_at.map(rfc3339_ms),
        created_at: rfc3339_ms(m.created_at),
        updated_at: rfc3339_ms(m.updated_at),
        payment: pi.as_ref().map(payment_intent_out),
        charges: charges.iter().map(charge_out).collect(),
        disputes: disputes.iter().map(dispute_out).collect(),
        fulfillment: fulfillment.map(|f| FulfillmentOut {
            fulfilled_at: rfc3339_ms(f.fulfilled_at),
            fulfilled_by: f.fulfilled_by,
            payment_status: f.payment_status,
            amount_total: f.amount_total,
            currency: f.currency,
            customer_email: f.customer_email,
        }),
        line_items: items
            .into_iter()
            .map(|li| LineItemOut {
                id: li.stripe_line_item_id,
                description: li.description,
                quantity: li.quantity,
                amount_subtotal: li.amount_subtotal,
                amount_total: li.amount_total,
                currency: li.currency,
                price: li.price_id,
                product: li.product_id,
            })
            .collect(),
        refunds: refunds.iter().map(|r| refund_out(r, Some(&m.id))).collect(),
    })
}

/// An order with its payments, fulfillment and disputes.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/orders/{id}",
    tag = "orders",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("id" = String, Path, description = "The order (`ord_…`)"),
        ModeQuery,
    ),
    responses(
        (status = 200, description = "The order", body = OrderOut),
        (status = 404, description = "Not of this company and mode (`order_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get_order(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
    mode: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let m = company
        .scope(mode.mode)
        .orders()
        .filter(order::Column::Id.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("order"))?;
    Ok(HttpResponse::Ok().json(order_out(&state.db, &m).await?))
}

/// A Checkout Session and its order.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/checkout-sessions/{id}",
    tag = "orders",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("id" = String, Path, description = "Stripe's `cs_…`"),
        ModeQuery,
    ),
    responses(
        (status = 200, description = "The Checkout Session", body = CheckoutSessionOut),
        (status = 404, description = "Not of this company and mode (`checkout_session_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get_checkout_session(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
    mode: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let s = company
        .scope(mode.mode)
        .checkout_sessions()
        .filter(checkout_session::Column::SessionId.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("checkout_session"))?;
    let o = order::Entity::find_by_id(s.order_id.clone())
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("order"))?;
    Ok(HttpResponse::Ok().json(CheckoutSessionOut {
        id: s.session_id,
        object: "checkout.session",
        livemode: s.livemode,
        status: s.status,
        payment_status: s.payment_status,
        amount_total: s.amount_total,
        currency: s.currency,
        customer_email: s.customer_email,
        payment_intent: s.payment_intent_id,
        fulfillment_status: s.fulfillment_status,
        fulfilled_at: s.fulfilled_at.map(rfc3339_ms),
        order: order_out(&state.db, &o).await?,
    }))
}

/// The company's Stripe accounts as the last `account.updated` left them.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/accounts",
    tag = "payments",
    params(("company_id" = String, Path, description = "The company"), ModeQuery),
    responses((status = 200, description = "Every account", body = List<StripeAccountOut>)),
)]
pub(crate) async fn list_accounts(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
    mode: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let rows = company
        .scope(mode.mode)
        .stripe_accounts()
        .order_by_asc(stripe_account::Column::Id)
        .all(&state.db)
        .await?;
    let data: Vec<StripeAccountOut> = rows.iter().map(StripeAccountOut::from).collect();
    Ok(HttpResponse::Ok().json(List { data }))
}

/// A payment method's card.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/payment-methods/{id}",
    tag = "payments",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("id" = String, Path, description = "Stripe's `pm_…` or `card_…`"),
        ModeQuery,
    ),
    responses(
        (status = 200, description = "The payment method", body = PaymentMethodOut),
        (status = 404, description = "Not of this company and mode (`payment_method_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get_payment_method(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
    mode: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let m = company
        .scope(mode.mode)
        .payment_methods()
        .filter(payment_method::Column::StripeId.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("payment_method"))?;
    Ok(HttpResponse::Ok().json(PaymentMethodOut {
        id: m.stripe_id,
        object: "payment_method",
        livemode: m.livemode,
        customer: m.customer,
        card: CardOut {
            brand: m.brand,
            last4: m.last4,
            exp_month: m.exp_month,
            exp_year: m.exp_year,
        },
        updated_at: rfc3339_ms(m.updated_at),
    }))
}

/// An Issuing card or cardholder.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/issuing/{id}",
    tag = "payments",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("id" = String, Path, description = "Stripe's `ic_…` or `ich_…`"),
        ModeQuery,
    ),
    responses(
        (status = 200, description = "The Issuing object", body = IssuingObjectOut),
        (status = 404, description = "Not of this company and mode (`issuing_object_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get_issuing(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
    mode: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let m = company
        .scope(mode.mode)
        .issuing_objects()
        .filter(issuing_object::Column::StripeId.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("issuing_object"))?;
    Ok(HttpResponse::Ok().json(IssuingObjectOut {
        id: m.stripe_id,
        livemode: m.livemode,
        kind: m.kind,
        status: m.status,
        updated_at: rfc3339_ms(m.updated_at),
    }))
}
