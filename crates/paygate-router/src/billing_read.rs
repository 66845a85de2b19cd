//! Issue 19: the reads of the billing read models (customers, subscriptions, invoices), shared
//! by the admin API, the merchant API and the back office. Every read starts from a [`Scope`]
//! (one company, one mode): another company's or the other mode's rows are never reached.
//! Lists are newest first (by row id), paged by "rows before this id".

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use paygate_db::Scope;
use paygate_db::entities::{customer, invoice, subscription};

/// Filters of the billing lists (all optional, combined with AND).
#[derive(Clone, Debug, Default)]
pub struct BillingFilter {
    /// Stripe's status of the object (subscriptions, invoices).
    pub status: Option<String>,
    /// The customer's e-mail address (exact, case-insensitive on the stored value's case).
    pub email: Option<String>,
    /// Stripe's customer id (`cus_…`).
    pub customer: Option<String>,
    /// Stripe's subscription id (`sub_…`; invoices).
    pub subscription: Option<String>,
}

impl BillingFilter {
    fn email(&self) -> Option<String> {
        self.email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
    }
}

/// The ids of the customers of `scope` with e-mail `email`.
async fn customers_with_email<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    email: &str,
) -> Result<Vec<String>, DbErr> {
    Ok(scope
        .customers()
        .filter(
            Condition::any()
                .add(customer::Column::Email.eq(email))
                .add(customer::Column::Email.eq(email.to_lowercase())),
        )
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.stripe_customer_id)
        .collect())
}

fn page<E: EntityTrait>(sel: Select<E>, id: E::Column, before: Option<i64>, limit: u64) -> Select<E>
where
    E::Column: ColumnTrait,
{
    let sel = match before {
        Some(b) => sel.filter(id.lt(b)),
        None => sel,
    };
    sel.order_by_desc(id).limit(limit)
}

/// Subscriptions of `scope`, newest first.
pub async fn subscriptions<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    f: &BillingFilter,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<subscription::Model>, DbErr> {
    let mut sel = scope.subscriptions();
    if let Some(s) = &f.status {
        sel = sel.filter(subscription::Column::Status.eq(s.as_str()));
    }
    if let Some(c) = &f.customer {
        sel = sel.filter(subscription::Column::StripeCustomerId.eq(c.as_str()));
    }
    if let Some(e) = f.email() {
        let ids = customers_with_email(db, scope, &e).await?;
        sel = sel.filter(subscription::Column::StripeCustomerId.is_in(ids));
    }
    page(sel, subscription::Column::Id, before, limit)
        .all(db)
        .await
}

/// Invoices of `scope`, newest first.
pub async fn invoices<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    f: &BillingFilter,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<invoice::Model>, DbErr> {
    let mut sel = scope.invoices();
    if let Some(s) = &f.status {
        sel = sel.filter(invoice::Column::Status.eq(s.as_str()));
    }
    if let Some(c) = &f.customer {
        sel = sel.filter(invoice::Column::StripeCustomerId.eq(c.as_str()));
    }
    if let Some(s) = &f.subscription {
        sel = sel.filter(invoice::Column::StripeSubscriptionId.eq(s.as_str()));
    }
    if let Some(e) = f.email() {
        let ids = customers_with_email(db, scope, &e).await?;
        sel = sel.filter(
            Condition::any()
                .add(invoice::Column::CustomerEmail.eq(e.as_str()))
                .add(invoice::Column::StripeCustomerId.is_in(ids)),
        );
    }
    page(sel, invoice::Column::Id, before, limit).all(db).await
}

/// Customers of `scope`, newest first.
pub async fn customers<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    f: &BillingFilter,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<customer::Model>, DbErr> {
    let mut sel = scope.customers();
    if let Some(e) = f.email() {
        sel = sel.filter(
            Condition::any()
                .add(customer::Column::Email.eq(e.as_str()))
                .add(customer::Column::Email.eq(e.to_lowercase())),
        );
    }
    if let Some(c) = &f.customer {
        sel = sel.filter(customer::Column::StripeCustomerId.eq(c.as_str()));
    }
    page(sel, customer::Column::Id, before, limit).all(db).await
}

/// A subscription of `scope` by Stripe id.
pub async fn subscription<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    id: &str,
) -> Result<Option<subscription::Model>, DbErr> {
    scope
        .subscriptions()
        .filter(subscription::Column::StripeSubscriptionId.eq(id))
        .one(db)
        .await
}

/// An invoice of `scope` by Stripe id.
pub async fn invoice<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    id: &str,
) -> Result<Option<invoice::Model>, DbErr> {
    scope
        .invoices()
        .filter(invoice::Column::StripeInvoiceId.eq(id))
        .one(db)
        .await
}

/// A customer of `scope` by Stripe id.
pub async fn customer<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    id: &str,
) -> Result<Option<customer::Model>, DbErr> {
    scope
        .customers()
        .filter(customer::Column::StripeCustomerId.eq(id))
        .one(db)
        .await
}
