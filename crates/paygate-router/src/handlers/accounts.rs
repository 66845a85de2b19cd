//! `account.updated`, `payment_method.automatically_updated`, `issuing_*.updated`: the latest
//! state of each object, the newest event's `created` winning (through
//! [`lifecycle::apply_forward`], within the event's scope).

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, Set, TransactionTrait};

use paygate_db::entities::{issuing_object, payment_method, stripe_account};
use paygate_db::now_ms;

use crate::lifecycle;
use paygate_notify::outbox;

use super::context::{HandlerCtx, HandlerResult, Outcome, id_of};

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
    let created = ctx.event.created;
    let scope = ctx.scope;
    let find = scope
        .stripe_accounts()
        .filter(stripe_account::Column::AccountId.eq(&id));
    let applied = lifecycle::apply_forward(
        ctx.db,
        find.clone(),
        [
            stripe_account::Column::CompanyPk,
            stripe_account::Column::Livemode,
            stripe_account::Column::AccountId,
        ],
        || stripe_account::ActiveModel {
            company_pk: Set(scope.company_pk()),
            account_id: Set(id.clone()),
            livemode: Set(scope.livemode()),
            charges_enabled: Set(charges),
            payouts_enabled: Set(payouts),
            details_submitted: Set(details),
            currently_due: Set(due.clone()),
            disabled_reason: Set(disabled.clone()),
            state_created: Set(created),
            updated_at: Set(now_ms()),
            ..Default::default()
        },
        |cur| {
            (cur.state_created <= created).then(|| {
                scope
                    .update::<stripe_account::Entity>()
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
                    .col_expr(stripe_account::Column::StateCreated, Expr::value(created))
                    .col_expr(stripe_account::Column::UpdatedAt, Expr::value(now_ms()))
            })
        },
    )
    .await?;
    if applied.wrote()
        && let Some(a) = find.one(ctx.db).await?
    {
        // `account.updated` to the company's systems, once per Stripe event that changed it.
        outbox::emit(
            ctx.db,
            outbox::Emit {
                scope,
                event_type: outbox::ACCOUNT_UPDATED,
                dedupe_key: format!("account.updated:{}", ctx.event.id),
                object: outbox::account_object(&a),
                shopper: None,
                batch: ctx.outbox,
                test_event: ctx.event.is_test_event(),
            },
        )
        .await?;
    }
    Ok(Outcome::Processed)
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
    let created = ctx.event.created;
    let scope = ctx.scope;
    lifecycle::apply_forward(
        ctx.db,
        scope
            .payment_methods()
            .filter(payment_method::Column::StripeId.eq(&id)),
        [
            payment_method::Column::CompanyPk,
            payment_method::Column::Livemode,
            payment_method::Column::StripeId,
        ],
        || payment_method::ActiveModel {
            company_pk: Set(scope.company_pk()),
            livemode: Set(scope.livemode()),
            stripe_id: Set(id.clone()),
            customer: Set(customer.clone()),
            brand: Set(brand.clone()),
            last4: Set(last4.clone()),
            exp_month: Set(m),
            exp_year: Set(y),
            state_created: Set(created),
            updated_at: Set(now_ms()),
            ..Default::default()
        },
        |cur| {
            (cur.state_created <= created).then(|| {
                scope
                    .update::<payment_method::Entity>()
                    .col_expr(
                        payment_method::Column::Customer,
                        Expr::value(customer.clone()),
                    )
                    .col_expr(payment_method::Column::Brand, Expr::value(brand.clone()))
                    .col_expr(payment_method::Column::Last4, Expr::value(last4.clone()))
                    .col_expr(payment_method::Column::ExpMonth, Expr::value(m))
                    .col_expr(payment_method::Column::ExpYear, Expr::value(y))
                    .col_expr(payment_method::Column::StateCreated, Expr::value(created))
                    .col_expr(payment_method::Column::UpdatedAt, Expr::value(now_ms()))
            })
        },
    )
    .await?;
    Ok(Outcome::Processed)
}

/// `issuing_card.updated`, `issuing_cardholder.updated`: the latest status.
pub async fn issuing<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
    kind: &'static str,
) -> HandlerResult {
    let id = ctx.str("id")?.to_owned();
    let status = ctx.object["status"].as_str().map(str::to_owned);
    let created = ctx.event.created;
    let scope = ctx.scope;
    lifecycle::apply_forward(
        ctx.db,
        scope
            .issuing_objects()
            .filter(issuing_object::Column::StripeId.eq(&id)),
        [
            issuing_object::Column::CompanyPk,
            issuing_object::Column::Livemode,
            issuing_object::Column::StripeId,
        ],
        || issuing_object::ActiveModel {
            company_pk: Set(scope.company_pk()),
            livemode: Set(scope.livemode()),
            stripe_id: Set(id.clone()),
            kind: Set(kind.into()),
            status: Set(status.clone()),
            state_created: Set(created),
            updated_at: Set(now_ms()),
            ..Default::default()
        },
        |cur| {
            (cur.state_created <= created).then(|| {
                scope
                    .update::<issuing_object::Entity>()
                    .col_expr(issuing_object::Column::Status, Expr::value(status.clone()))
                    .col_expr(issuing_object::Column::StateCreated, Expr::value(created))
                    .col_expr(issuing_object::Column::UpdatedAt, Expr::value(now_ms()))
            })
        },
    )
    .await?;
    Ok(Outcome::Processed)
}
