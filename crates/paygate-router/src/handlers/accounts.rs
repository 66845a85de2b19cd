//! `account.updated`, `payment_method.automatically_updated`, `issuing_*.updated`: the latest
//! state of each object, the newest event's `created` winning.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TransactionTrait};

use paygate_db::entities::{issuing_object, payment_method, stripe_account};
use paygate_db::now_ms;

use crate::outbox;

use super::{HandlerCtx, HandlerError, HandlerResult, Outcome, id_of, insert_absent};

/// `account.updated`: charges/payouts enabled, requirements due, disabled reason.
pub async fn account<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
) -> HandlerResult {
    let o = ctx.object;
    let id = ctx.str("id")?.to_owned();
    let due: Vec<String> = o["requirements"]["currently_due"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let due = serde_json::to_string(&due).unwrap_or_else(|_| "[]".into());
    let (charges, payouts, details) = (
        o["charges_enabled"].as_bool().unwrap_or(false),
        o["payouts_enabled"].as_bool().unwrap_or(false),
        o["details_submitted"].as_bool().unwrap_or(false),
    );
    let disabled = o["requirements"]["disabled_reason"]
        .as_str()
        .map(str::to_owned);
    for _ in 0..3 {
        let n = stripe_account::Entity::update_many()
            .col_expr(stripe_account::Column::ChargesEnabled, Expr::value(charges))
            .col_expr(stripe_account::Column::PayoutsEnabled, Expr::value(payouts))
            .col_expr(
                stripe_account::Column::DetailsSubmitted,
                Expr::value(details),
            )
            .col_expr(
                stripe_account::Column::CurrentlyDue,
                Expr::value(due.clone()),
            )
            .col_expr(
                stripe_account::Column::DisabledReason,
                Expr::value(disabled.clone()),
            )
            .col_expr(
                stripe_account::Column::StateCreated,
                Expr::value(ctx.event.created),
            )
            .col_expr(stripe_account::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(stripe_account::Column::CompanyPk.eq(ctx.company_pk))
            .filter(stripe_account::Column::AccountId.eq(&id))
            .filter(stripe_account::Column::StateCreated.lte(ctx.event.created))
            .exec(ctx.db)
            .await?
            .rows_affected;
        if n > 0 {
            emit_account(ctx, &id).await?;
            return Ok(Outcome::Processed);
        }
        let exists = stripe_account::Entity::find()
            .filter(stripe_account::Column::CompanyPk.eq(ctx.company_pk))
            .filter(stripe_account::Column::AccountId.eq(&id))
            .one(ctx.db)
            .await?
            .is_some();
        if exists {
            return Ok(Outcome::Processed); // what we hold is newer
        }
        let row = stripe_account::ActiveModel {
            company_pk: Set(ctx.company_pk),
            account_id: Set(id.clone()),
            livemode: Set(ctx.event.livemode),
            charges_enabled: Set(charges),
            payouts_enabled: Set(payouts),
            details_submitted: Set(details),
            currently_due: Set(due.clone()),
            disabled_reason: Set(disabled.clone()),
            state_created: Set(ctx.event.created),
            updated_at: Set(now_ms()),
            ..Default::default()
        };
        let key = [
            stripe_account::Column::CompanyPk,
            stripe_account::Column::AccountId,
        ];
        if insert_absent(ctx.db, row, key).await? {
            emit_account(ctx, &id).await?;
            return Ok(Outcome::Processed);
        }
        // Lost the race to insert: go again against the winner's row.
    }
    Err(HandlerError::Other(
        "account kept changing under us; will retry".into(),
    ))
}

/// `account.updated` to the company's systems, once per Stripe event that changed the account.
async fn emit_account<C: ConnectionTrait>(
    ctx: &HandlerCtx<'_, C>,
    id: &str,
) -> Result<(), HandlerError> {
    let Some(a) = stripe_account::Entity::find()
        .filter(stripe_account::Column::CompanyPk.eq(ctx.company_pk))
        .filter(stripe_account::Column::AccountId.eq(id))
        .one(ctx.db)
        .await?
    else {
        return Ok(());
    };
    outbox::emit(
        ctx.db,
        outbox::Emit {
            company_pk: ctx.company_pk,
            livemode: ctx.event.livemode,
            event_type: "account.updated",
            dedupe_key: format!("account.updated:{}", ctx.event.id),
            object: outbox::account_object(&a),
            shopper: None,
            batch: ctx.outbox,
        },
    )
    .await?;
    Ok(())
}

/// `payment_method.automatically_updated`: the card's new brand, last4 and expiry.
pub async fn payment_method<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
) -> HandlerResult {
    let o = ctx.object;
    let id = ctx.str("id")?.to_owned();
    let card = &o["card"];
    let (brand, last4) = (
        card["brand"].as_str().map(str::to_owned),
        card["last4"].as_str().map(str::to_owned),
    );
    let (m, y) = (
        card["exp_month"].as_i64().map(|v| v as i32),
        card["exp_year"].as_i64().map(|v| v as i32),
    );
    let customer = id_of(&o["customer"]);
    for _ in 0..3 {
        let n = payment_method::Entity::update_many()
            .col_expr(
                payment_method::Column::Customer,
                Expr::value(customer.clone()),
            )
            .col_expr(payment_method::Column::Brand, Expr::value(brand.clone()))
            .col_expr(payment_method::Column::Last4, Expr::value(last4.clone()))
            .col_expr(payment_method::Column::ExpMonth, Expr::value(m))
            .col_expr(payment_method::Column::ExpYear, Expr::value(y))
            .col_expr(
                payment_method::Column::StateCreated,
                Expr::value(ctx.event.created),
            )
            .col_expr(payment_method::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(payment_method::Column::CompanyPk.eq(ctx.company_pk))
            .filter(payment_method::Column::StripeId.eq(&id))
            .filter(payment_method::Column::StateCreated.lte(ctx.event.created))
            .exec(ctx.db)
            .await?
            .rows_affected;
        if n > 0 {
            return Ok(Outcome::Processed);
        }
        if payment_method::Entity::find()
            .filter(payment_method::Column::CompanyPk.eq(ctx.company_pk))
            .filter(payment_method::Column::StripeId.eq(&id))
            .one(ctx.db)
            .await?
            .is_some()
        {
            return Ok(Outcome::Processed);
        }
        let row = payment_method::ActiveModel {
            company_pk: Set(ctx.company_pk),
            stripe_id: Set(id.clone()),
            customer: Set(customer.clone()),
            brand: Set(brand.clone()),
            last4: Set(last4.clone()),
            exp_month: Set(m),
            exp_year: Set(y),
            state_created: Set(ctx.event.created),
            updated_at: Set(now_ms()),
            ..Default::default()
        };
        let key = [
            payment_method::Column::CompanyPk,
            payment_method::Column::StripeId,
        ];
        if insert_absent(ctx.db, row, key).await? {
            return Ok(Outcome::Processed);
        }
        // Lost the race to insert: go again against the winner's row.
    }
    Err(HandlerError::Other(
        "payment method kept changing under us; will retry".into(),
    ))
}

/// `issuing_card.updated`, `issuing_cardholder.updated`: the latest status.
pub async fn issuing<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
) -> HandlerResult {
    let id = ctx.str("id")?.to_owned();
    let kind = if ctx.event.event_type.starts_with("issuing_cardholder") {
        "cardholder"
    } else {
        "card"
    };
    let status = ctx.object["status"].as_str().map(str::to_owned);
    for _ in 0..3 {
        let n = issuing_object::Entity::update_many()
            .col_expr(issuing_object::Column::Status, Expr::value(status.clone()))
            .col_expr(
                issuing_object::Column::StateCreated,
                Expr::value(ctx.event.created),
            )
            .col_expr(issuing_object::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(issuing_object::Column::CompanyPk.eq(ctx.company_pk))
            .filter(issuing_object::Column::StripeId.eq(&id))
            .filter(issuing_object::Column::StateCreated.lte(ctx.event.created))
            .exec(ctx.db)
            .await?
            .rows_affected;
        if n > 0 {
            return Ok(Outcome::Processed);
        }
        if issuing_object::Entity::find()
            .filter(issuing_object::Column::CompanyPk.eq(ctx.company_pk))
            .filter(issuing_object::Column::StripeId.eq(&id))
            .one(ctx.db)
            .await?
            .is_some()
        {
            return Ok(Outcome::Processed);
        }
        let row = issuing_object::ActiveModel {
            company_pk: Set(ctx.company_pk),
            stripe_id: Set(id.clone()),
            kind: Set(kind.into()),
            status: Set(status.clone()),
            state_created: Set(ctx.event.created),
            updated_at: Set(now_ms()),
            ..Default::default()
        };
        let key = [
            issuing_object::Column::CompanyPk,
            issuing_object::Column::StripeId,
        ];
        if insert_absent(ctx.db, row, key).await? {
            return Ok(Outcome::Processed);
        }
        // Lost the race to insert: go again against the winner's row.
    }
    Err(HandlerError::Other(
        "issuing object kept changing under us; will retry".into(),
    ))
}
