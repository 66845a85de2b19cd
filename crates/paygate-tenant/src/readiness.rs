//! Whether a company may go live (issue 17, part 3): switching the environment to live needs an
//! active live profile whose Stripe account can take charges and receive payouts
//! (`charges_enabled`, `payouts_enabled`).
//!
//! Policy: the account's state is the newer of what `GET /v1/account` said when the profile was
//! connected or last checked (the profile's `account_checked_at`) and what the last live
//! `account.updated` said (the `stripe_accounts` row the account handler keeps, for the
//! profile's account, or the newest live one when the profile names no account). Nothing known
//! counts as not enabled: going live is refused until Stripe says yes.

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryFilter, QueryOrder};

use paygate_db::entities::{stripe_account, stripe_profile};
use paygate_db::{Mode, Tenant};

/// What `GET /v1/account` says about an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFacts {
    pub id: String,
    pub country: Option<String>,
    pub default_currency: Option<String>,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
}

impl AccountFacts {
    /// The facts of a retrieved account.
    pub fn of(a: &paygate_stripe::Account) -> Self {
        let text = |k: &str| a.raw[k].as_str().map(str::to_owned);
        Self {
            id: a.id.clone(),
            country: text("country"),
            default_currency: text("default_currency"),
            charges_enabled: a.charges_enabled,
            payouts_enabled: a.payouts_enabled,
            details_submitted: a.details_submitted,
        }
    }
}

/// What the company lacks to go live, by name: `live_profile` (no active live profile),
/// `charges_enabled`, `payouts_enabled`. Empty: ready.
pub async fn live_missing<C: ConnectionTrait>(
    db: &C,
    company_pk: i64,
) -> Result<Vec<&'static str>, DbErr> {
    let tenant = Tenant::new(company_pk);
    let Some(profile) = tenant
        .find::<stripe_profile::Entity>()
        .filter(stripe_profile::Column::ActiveMode.eq(Mode::Live.as_str()))
        .one(db)
        .await?
    else {
        return Ok(vec!["live_profile"]);
    };
    let mut accounts = tenant
        .in_mode(Mode::Live)
        .stripe_accounts()
        .order_by_desc(stripe_account::Column::StateCreated);
    if let Some(a) = &profile.account_id {
        accounts = accounts.filter(stripe_account::Column::AccountId.eq(a));
    }
    let from_event = accounts.one(db).await?;
    let from_profile = profile
        .account_checked_at
        .map(|at| (at, profile.charges_enabled, profile.payouts_enabled));
    let (charges, payouts) = match (from_profile, from_event) {
        // An event's `created` has whole seconds: one of the second of the check, or later, wins.
        (Some((at, c, p)), Some(e))
            if at >= e.state_created.saturating_add(1).saturating_mul(1000) =>
        {
            (c.unwrap_or(false), p.unwrap_or(false))
        }
        (_, Some(e)) => (e.charges_enabled, e.payouts_enabled),
        (Some((_, c, p)), None) => (c.unwrap_or(false), p.unwrap_or(false)),
        (None, None) => (false, false),
    };
    let mut missing = Vec::new();
    if !charges {
        missing.push("charges_enabled");
    }
    if !payouts {
        missing.push("payouts_enabled");
    }
    Ok(missing)
}
