//! Issue 17, parts 1–3: connecting a Stripe account automatically and staying connected.
//!
//! - `stripe_profiles`: the webhook endpoint Paygate created for the profile
//!   (`webhook_endpoint_id`, `None` for a profile whose endpoint the merchant registered by hand)
//!   and what `GET /v1/account` last said about the key's account (`account_country`,
//!   `account_default_currency`, `charges_enabled`, `payouts_enabled`, `details_submitted`,
//!   `account_checked_at`, milliseconds).
//! - `companies`: the state of the connection as the last check found it (`stripe_connection`:
//!   `ok`, `repaired`, `disabled_by_stripe`, `key_revoked`, `unreachable`; `None` before the
//!   first check), when that check ran (`stripe_checked_at`) and when a check last found every
//!   endpoint right or put it right (`stripe_last_ok_at`: reconciliation after a repair starts
//!   there).
//!
//! One column per statement: SQLite alters a table one column at a time.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let profile_cols = [
            string_null(StripeProfiles::WebhookEndpointId),
            string_null(StripeProfiles::AccountCountry),
            string_null(StripeProfiles::AccountDefaultCurrency),
            boolean_null(StripeProfiles::ChargesEnabled),
            boolean_null(StripeProfiles::PayoutsEnabled),
            boolean_null(StripeProfiles::DetailsSubmitted),
            big_integer_null(StripeProfiles::AccountCheckedAt),
        ];
        for mut col in profile_cols {
            m.alter_table(
                Table::alter()
                    .table(StripeProfiles::Table)
                    .add_column(&mut col)
                    .to_owned(),
            )
            .await?;
        }
        let company_cols = [
            string_null(Companies::StripeConnection),
            big_integer_null(Companies::StripeCheckedAt),
            big_integer_null(Companies::StripeLastOkAt),
        ];
        for mut col in company_cols {
            m.alter_table(
                Table::alter()
                    .table(Companies::Table)
                    .add_column(&mut col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            Companies::StripeConnection,
            Companies::StripeCheckedAt,
            Companies::StripeLastOkAt,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Companies::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        for col in [
            StripeProfiles::WebhookEndpointId,
            StripeProfiles::AccountCountry,
            StripeProfiles::AccountDefaultCurrency,
            StripeProfiles::ChargesEnabled,
            StripeProfiles::PayoutsEnabled,
            StripeProfiles::DetailsSubmitted,
            StripeProfiles::AccountCheckedAt,
        ] {
            m.alter_table(
                Table::alter()
                    .table(StripeProfiles::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum StripeProfiles {
    Table,
    WebhookEndpointId,
    AccountCountry,
    AccountDefaultCurrency,
    ChargesEnabled,
    PayoutsEnabled,
    DetailsSubmitted,
    AccountCheckedAt,
}

#[derive(DeriveIden)]
enum Companies {
    Table,
    StripeConnection,
    StripeCheckedAt,
    StripeLastOkAt,
}
