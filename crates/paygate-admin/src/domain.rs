//! Operators' views of a company's payment domain, and event replay.

use actix_web::{HttpResponse, web};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Deserialize;
use serde_json::{Value, json};

use paygate_db::entities::{
    charge, checkout_session, dispute, fulfillment, issuing_object, line_item, order,
    payment_intent, payment_method, stripe_account,
};
use paygate_web::{ApiError, Page, decode_cursor, encode_cursor, rfc3339_ms, rfc3339_s};

use crate::{AdminState, OperatorPrincipal, page_limit};

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/companies/{company_id}/events/{event_id}/replay",
        web::post().to(replay),
    )
    .route(
        "/companies/{company_id}/payment-intents",
        web::get().to(list_payment_intents),
    )
    .route(
        "/companies/{company_id}/payment-intents/{id}",
        web::get().to(get_payment_intent),
    )
    .route(
        "/companies/{company_id}/charges/{id}",
        web::get().to(get_charge),
    )
    .route(
        "/companies/{company_id}/disputes",
        web::get().to(list_disputes),
    )
    .route(
        "/companies/{company_id}/disputes/{id}",
        web::get().to(get_dispute),
    )
    .route(
        "/companies/{company_id}/orders/{id}",
        web::get().to(get_order),
    )
    .route(
        "/companies/{company_id}/checkout-sessions/{id}",
        web::get().to(get_checkout_session),
    )
    .route(
        "/companies/{company_id}/accounts",
        web::get().to(list_accounts),
    )
    .route(
        "/companies/{company_id}/payment-methods/{id}",
        web::get().to(get_payment_method),
    )
    .route(
        "/companies/{company_id}/issuing/{id}",
        web::get().to(get_issuing),
    );
}

/// List filters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<u64>,
    cursor: Option<String>,
}

fn nf(what: &'static str) -> ApiError {
    ApiError::not_found(
        format!("{what}_not_found"),
        format!("no such {what} for this company"),
    )
}

/// A payment intent on the wire.
pub fn payment_intent_out(m: &payment_intent::Model) -> Value {
    json!({
        "id": m.stripe_id, "object": "payment_intent", "livemode": m.livemode, "status": m.status,
        "amount": m.amount, "amount_capturable": m.amount_capturable, "amount_received": m.amount_received,
        "currency": m.currency, "customer": m.customer,
        "last_payment_error": m.last_payment_error.as_deref().and_then(|e| serde_json::from_str::<Value>(e).ok()),
        "cancellation_reason": m.cancellation_reason, "disputed": m.disputed,
        "state_created": rfc3339_s(m.state_created), "updated_at": rfc3339_ms(m.updated_at),
    })
}

/// A charge on the wire.
pub fn charge_out(m: &charge::Model) -> Value {
    json!({
        "id": m.stripe_id, "object": "charge", "livemode": m.livemode, "status": m.status, "amount": m.amount,
        "amount_refunded": m.amount_refunded, "refunded": m.refunded, "currency": m.currency,
        "payment_intent": m.payment_intent_id, "source": m.source_id, "failure_code": m.failure_code,
        "failure_message": m.failure_message, "disputed": m.disputed, "updated_at": rfc3339_ms(m.updated_at),
    })
}

/// A dispute on the wire.
pub fn dispute_out(m: &dispute::Model) -> Value {
    json!({
        "id": m.stripe_id, "object": "dispute", "livemode": m.livemode, "status": m.status, "reason": m.reason,
        "amount": m.amount, "currency": m.currency, "charge": m.charge_id, "payment_intent": m.payment_intent_id,
        "evidence_due_by": m.evidence_due_by.map(rfc3339_s), "funds_withdrawn": m.funds_withdrawn,
        "funds_reinstated": m.funds_reinstated,
        "needs_response": matches!(m.status.as_str(), "needs_response" | "warning_needs_response"),
        "updated_at": rfc3339_ms(m.updated_at),
    })
}

async fn replay(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (company_id, event_id) = path.into_inner();
    let company = state.tenants.company(&company_id).await?;
    if !paygate_router::worker::replay(&state.db, company.id, &event_id).await? {
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
    Ok(HttpResponse::Accepted().json(json!({"id": event_id, "status": "pending"})))
}

async fn list_payment_intents(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let limit = page_limit(q.limit);
    let mut sel = payment_intent::Entity::find()
        .filter(payment_intent::Column::CompanyPk.eq(company.id))
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

async fn get_payment_intent(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let m = payment_intent::Entity::find()
        .filter(payment_intent::Column::CompanyPk.eq(company.id))
        .filter(payment_intent::Column::StripeId.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("payment_intent"))?;
    Ok(HttpResponse::Ok().json(payment_intent_out(&m)))
}

async fn get_charge(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let m = charge::Entity::find()
        .filter(charge::Column::CompanyPk.eq(company.id))
        .filter(charge::Column::StripeId.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("charge"))?;
    Ok(HttpResponse::Ok().json(charge_out(&m)))
}

async fn list_disputes(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let mut sel = dispute::Entity::find().filter(dispute::Column::CompanyPk.eq(company.id));
    if let Some(s) = &q.status {
        sel = sel.filter(dispute::Column::Status.eq(s.as_str()));
    }
    let mut rows = sel.limit(page_limit(q.limit)).all(&state.db).await?;
    // The ones needing a response first, soonest due first; then the rest, newest first.
    rows.sort_by_key(|d| {
        let needs = matches!(
            d.status.as_str(),
            "needs_response" | "warning_needs_response"
        );
        (
            !needs,
            if needs {
                d.evidence_due_by.unwrap_or(i64::MAX)
            } else {
                -d.updated_at
            },
        )
    });
    Ok(HttpResponse::Ok()
        .json(json!({"data": rows.iter().map(dispute_out).collect::<Vec<_>>(), "has_more": false})))
}

async fn get_dispute(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let m = dispute::Entity::find()
        .filter(dispute::Column::CompanyPk.eq(company.id))
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
) -> Result<Value, ApiError> {
    let pi = match &m.payment_intent_id {
        Some(p) => {
            payment_intent::Entity::find()
                .filter(payment_intent::Column::CompanyPk.eq(m.company_pk))
                .filter(payment_intent::Column::StripeId.eq(p.as_str()))
                .one(db)
                .await?
        }
        None => None,
    };
    let mut charges = charge::Entity::find().filter(charge::Column::CompanyPk.eq(m.company_pk));
    charges = match (&m.payment_intent_id, &m.charge_id) {
        (Some(p), _) => charges.filter(charge::Column::PaymentIntentId.eq(p.as_str())),
        (None, Some(c)) => charges.filter(charge::Column::StripeId.eq(c.as_str())),
        (None, None) => charges.filter(charge::Column::Id.eq(-1)),
    };
    let charges = charges.all(db).await?;
    let mut disputes = Vec::new();
    for ch in &charges {
        disputes.extend(
            dispute::Entity::find()
                .filter(dispute::Column::CompanyPk.eq(m.company_pk))
                .filter(dispute::Column::ChargeId.eq(ch.stripe_id.as_str()))
                .all(db)
                .await?,
        );
    }
    if let Some(p) = &m.payment_intent_id {
        for d in dispute::Entity::find()
            .filter(dispute::Column::CompanyPk.eq(m.company_pk))
            .filter(dispute::Column::PaymentIntentId.eq(p.as_str()))
            .all(db)
            .await?
        {
            if !disputes.iter().any(|x| x.id == d.id) {
                disputes.push(d);
            }
        }
    }
    let (fulfillment, items) = match &m.checkout_session_id {
        Some(cs) => (
            fulfillment::Entity::find()
                .filter(fulfillment::Column::CompanyPk.eq(m.company_pk))
                .filter(fulfillment::Column::SessionId.eq(cs.as_str()))
                .one(db)
                .await?,
            line_item::Entity::find()
                .filter(line_item::Column::CompanyPk.eq(m.company_pk))
                .filter(line_item::Column::SessionId.eq(cs.as_str()))
                .order_by_asc(line_item::Column::Id)
                .all(db)
                .await?,
        ),
        None => (None, Vec::new()),
    };
    Ok(json!({
        "id": m.id, "object": "order", "livemode": m.livemode, "kind": m.kind, "status": m.status,
        "checkout_session": m.checkout_session_id, "source": m.source_id, "payment_intent": m.payment_intent_id,
        "charge": m.charge_id, "amount": m.amount, "currency": m.currency, "customer_email": m.customer_email,
        "client_reference_id": m.client_reference_id, "description": m.description,
        "metadata": serde_json::from_str::<Value>(&m.metadata).unwrap_or(json!({})),
        "return_url": m.return_url, "disputed": m.disputed, "fulfilled_at": m.fulfilled_at.map(rfc3339_ms),
        "created_at": rfc3339_ms(m.created_at), "updated_at": rfc3339_ms(m.updated_at),
        "payment": pi.as_ref().map(payment_intent_out),
        "charges": charges.iter().map(charge_out).collect::<Vec<_>>(),
        "disputes": disputes.iter().map(dispute_out).collect::<Vec<_>>(),
        "fulfillment": fulfillment.map(|f| json!({
            "fulfilled_at": rfc3339_ms(f.fulfilled_at), "fulfilled_by": f.fulfilled_by, "payment_status": f.payment_status,
            "amount_total": f.amount_total, "currency": f.currency, "customer_email": f.customer_email,
        })),
        "line_items": items.iter().map(|li| json!({
            "id": li.stripe_line_item_id, "description": li.description, "quantity": li.quantity,
            "amount_subtotal": li.amount_subtotal, "amount_total": li.amount_total, "currency": li.currency,
            "price": li.price_id, "product": li.product_id,
        })).collect::<Vec<_>>(),
    }))
}

async fn get_order(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let m = order::Entity::find_by_id(id)
        .filter(order::Column::CompanyPk.eq(company.id))
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("order"))?;
    Ok(HttpResponse::Ok().json(order_out(&state.db, &m).await?))
}

async fn get_checkout_session(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let s = checkout_session::Entity::find()
        .filter(checkout_session::Column::CompanyPk.eq(company.id))
        .filter(checkout_session::Column::SessionId.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("checkout_session"))?;
    let o = order::Entity::find_by_id(s.order_id.clone())
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("order"))?;
    Ok(HttpResponse::Ok().json(json!({
        "id": s.session_id, "object": "checkout.session", "livemode": s.livemode, "status": s.status,
        "payment_status": s.payment_status, "amount_total": s.amount_total, "currency": s.currency,
        "customer_email": s.customer_email, "payment_intent": s.payment_intent_id,
        "fulfillment_status": s.fulfillment_status, "fulfilled_at": s.fulfilled_at.map(rfc3339_ms),
        "order": order_out(&state.db, &o).await?,
    })))
}

async fn list_accounts(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let rows = stripe_account::Entity::find()
        .filter(stripe_account::Column::CompanyPk.eq(company.id))
        .all(&state.db)
        .await?;
    let data: Vec<Value> = rows
        .iter()
        .map(|a| json!({
            "id": a.account_id, "livemode": a.livemode, "charges_enabled": a.charges_enabled, "payouts_enabled": a.payouts_enabled,
            "details_submitted": a.details_submitted,
            "requirements": {"currently_due": serde_json::from_str::<Value>(&a.currently_due).unwrap_or(json!([])), "disabled_reason": a.disabled_reason},
            "updated_at": rfc3339_ms(a.updated_at),
        }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({"data": data})))
}

async fn get_payment_method(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let m = payment_method::Entity::find()
        .filter(payment_method::Column::CompanyPk.eq(company.id))
        .filter(payment_method::Column::StripeId.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("payment_method"))?;
    Ok(HttpResponse::Ok().json(json!({"id": m.stripe_id, "customer": m.customer, "card": {"brand": m.brand, "last4": m.last4, "exp_month": m.exp_month, "exp_year": m.exp_year}})))
}

async fn get_issuing(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let m = issuing_object::Entity::find()
        .filter(issuing_object::Column::CompanyPk.eq(company.id))
        .filter(issuing_object::Column::StripeId.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| nf("issuing_object"))?;
    Ok(HttpResponse::Ok().json(json!({"id": m.stripe_id, "kind": m.kind, "status": m.status})))
}
