//! Test and live are kept apart by the keys themselves.
//!
//! Every row that mirrors a Stripe object, event or message records its mode (`livemode`), and
//! every unique key of such a row includes it: a test-mode event that names the id of a live
//! object (or reuses a live event's id) meets no live row, it makes a test row of its own.
//! Merchant API keys belong to one mode too.
//!
//! Mode of the rows that had none: line items and fulfillments take their Checkout Session's
//! (or the `cs_live_` prefix of the session id); payment methods and issuing objects the mode
//! of a stored event that carried them (test when none did); API keys the company's environment
//! at the time of the upgrade (what they could reach).

use sea_orm_migration::{prelude::*, schema::*};

use crate::unique_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A unique key re-cut with `livemode`: table, old name and columns, new name.
struct Rekey {
    table: &'static str,
    old: &'static str,
    cols: &'static [&'static str],
    new: &'static str,
}

const REKEYS: &[Rekey] = &[
    Rekey {
        table: "inbox_events",
        old: "uq_inbox_events_company_event",
        cols: &["company_pk", "stripe_event_id"],
        new: "uq_inbox_events_company_mode_event",
    },
    Rekey {
        table: "orders",
        old: "uq_orders_company_checkout_session",
        cols: &["company_pk", "checkout_session_id"],
        new: "uq_orders_company_mode_checkout_session",
    },
    Rekey {
        table: "checkout_sessions",
        old: "uq_checkout_sessions_company_session",
        cols: &["company_pk", "session_id"],
        new: "uq_checkout_sessions_company_mode_session",
    },
    Rekey {
        table: "line_items",
        old: "uq_line_items_company_session_item",
        cols: &["company_pk", "session_id", "stripe_line_item_id"],
        new: "uq_line_items_company_mode_session_item",
    },
    Rekey {
        table: "fulfillments",
        old: "uq_fulfillments_company_session",
        cols: &["company_pk", "session_id"],
        new: "uq_fulfillments_company_mode_session",
    },
    Rekey {
        table: "payment_intents",
        old: "uq_payment_intents_company_stripe",
        cols: &["company_pk", "stripe_id"],
        new: "uq_payment_intents_company_mode_stripe",
    },
    Rekey {
        table: "charges",
        old: "uq_charges_company_stripe",
        cols: &["company_pk", "stripe_id"],
        new: "uq_charges_company_mode_stripe",
    },
    Rekey {
        table: "disputes",
        old: "uq_disputes_company_stripe",
        cols: &["company_pk", "stripe_id"],
        new: "uq_disputes_company_mode_stripe",
    },
    Rekey {
        table: "sources",
        old: "uq_sources_company_stripe",
        cols: &["company_pk", "stripe_id"],
        new: "uq_sources_company_mode_stripe",
    },
    Rekey {
        table: "stripe_accounts",
        old: "uq_stripe_accounts_company_account",
        cols: &["company_pk", "account_id"],
        new: "uq_stripe_accounts_company_mode_account",
    },
    Rekey {
        table: "payment_methods",
        old: "uq_payment_methods_company_stripe",
        cols: &["company_pk", "stripe_id"],
        new: "uq_payment_methods_company_mode_stripe",
    },
    Rekey {
        table: "issuing_objects",
        old: "uq_issuing_objects_company_stripe",
        cols: &["company_pk", "stripe_id"],
        new: "uq_issuing_objects_company_mode_stripe",
    },
    Rekey {
        table: "notification_messages",
        old: "uq_notification_messages_company_dedupe",
        cols: &["company_pk", "dedupe_key"],
        new: "uq_notification_messages_company_mode_dedupe",
    },
];

/// Tables that had no `livemode` column, and how an existing row learns its mode.
const NEW_COLUMNS: &[(&str, &str)] = &[
    (
        "line_items",
        "COALESCE((SELECT cs.livemode FROM checkout_sessions cs \
           WHERE cs.company_pk = line_items.company_pk AND cs.session_id = line_items.session_id), \
         line_items.session_id LIKE 'cs_live_%')",
    ),
    (
        "fulfillments",
        "COALESCE((SELECT cs.livemode FROM checkout_sessions cs \
           WHERE cs.company_pk = fulfillments.company_pk AND cs.session_id = fulfillments.session_id), \
         fulfillments.session_id LIKE 'cs_live_%')",
    ),
    (
        "payment_methods",
        "EXISTS (SELECT 1 FROM inbox_events e JOIN inbox_payloads p ON p.inbox_event_id = e.id \
           WHERE e.company_pk = payment_methods.company_pk AND e.livemode = TRUE \
           AND p.payload LIKE '%\"' || payment_methods.stripe_id || '\"%')",
    ),
    (
        "issuing_objects",
        "EXISTS (SELECT 1 FROM inbox_events e JOIN inbox_payloads p ON p.inbox_event_id = e.id \
           WHERE e.company_pk = issuing_objects.company_pk AND e.livemode = TRUE \
           AND p.payload LIKE '%\"' || issuing_objects.stripe_id || '\"%')",
    ),
    (
        "api_keys",
        "(SELECT c.environment = 'live' FROM companies c WHERE c.id = api_keys.company_pk)",
    ),
];

fn drop_index(name: &str, table: &str) -> IndexDropStatement {
    Index::drop().name(name).table(Alias::new(table)).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, mode_of_row) in NEW_COLUMNS {
            m.alter_table(
                Table::alter()
                    .table(Alias::new(*table))
                    .add_column(boolean(Alias::new("livemode")).default(false))
                    .to_owned(),
            )
            .await?;
            m.get_connection()
                .execute_unprepared(&format!(
                    "UPDATE {table} SET livemode = COALESCE({mode_of_row}, FALSE)"
                ))
                .await?;
        }
        for k in REKEYS {
            m.drop_index(drop_index(k.old, k.table)).await?;
            let mut cols: Vec<Alias> = Vec::with_capacity(k.cols.len() + 1);
            cols.push(Alias::new(k.cols[0]));
            cols.push(Alias::new("livemode"));
            cols.extend(k.cols[1..].iter().map(|c| Alias::new(*c)));
            m.create_index(unique_index(k.new, Alias::new(k.table), cols))
                .await?;
        }
        Ok(())
    }

    /// Back to keys without the mode. Fails (and changes nothing on PostgreSQL) when both modes
    /// hold a row with the same Stripe id, which the old keys cannot tell apart.
    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for k in REKEYS.iter().rev() {
            m.drop_index(drop_index(k.new, k.table)).await?;
            let cols = k.cols.iter().map(|c| Alias::new(*c));
            m.create_index(unique_index(k.old, Alias::new(k.table), cols))
                .await?;
        }
        for (table, _) in NEW_COLUMNS.iter().rev() {
            m.alter_table(
                Table::alter()
                    .table(Alias::new(*table))
                    .drop_column(Alias::new("livemode"))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
