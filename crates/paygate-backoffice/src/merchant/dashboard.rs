//! `GET /app`: the Overview (issue 20) — a **setup checklist** and a **health view** of the
//! company, in one mode ([`super::mode`]: `?mode=test|live`, the company's environment by
//! default), each item a link to the page that does it or shows it.
//!
//! Checklist (each done or not): a Stripe profile exists; a signing secret is set (one the
//! intake accepts now); a first event received **from Stripe** in test mode and in live mode;
//! the Stripe payment method is on; the company is ready to go live
//! ([`paygate_tenant::readiness::live_missing`]). "Received from Stripe" means delivered to the
//! callback URL (`origin = webhook`) and not one of Paygate's own test events (ids starting
//! with [`TEST_EVENT_ID_PREFIX`]): the self-test signs with the stored secret and posts to
//! Paygate itself, so it proves storage and processing, not that Stripe reaches us with that
//! secret — only a real delivery does, and the Overview shows when the last one came, per mode.
//!
//! Health, counts in the page's mode where the data has a mode: failed events, disputes needing
//! a response due within [`DUE_SOON_DAYS`] days; of the company (no trusted mode): deliveries
//! the intake rejected in the last [`REJECTIONS_DAYS`] days and failing notification endpoints.

use actix_web::{HttpResponse, web};
use askama::Template;
use sea_orm::{ColumnTrait, Condition, PaginatorTrait, QueryFilter, QueryOrder};

use paygate_db::entities::{
    delivery_failure, dispute, inbox_event, notification_endpoint, signing_secret, stripe_profile,
};
use paygate_db::{Mode, Scope, now_ms};
use paygate_router::handlers::TEST_EVENT_ID_PREFIX;

use crate::MerchantSession;
use crate::merchant::disputes::NEEDS_RESPONSE;
use crate::merchant::mode::{ModeParam, View};
use crate::page::{Page, PageError, mode_href, render};

/// Registers `/app`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(dashboard));
}

/// Disputes whose evidence is due within this many days count as "due soon".
pub const DUE_SOON_DAYS: i64 = 7;
/// Rejected deliveries of this many last days count.
pub const REJECTIONS_DAYS: i64 = 7;

/// The company's data in the page's mode.
struct Counts {
    events: u64,
    events_href: String,
    orders: u64,
    orders_href: String,
    disputes_open: u64,
    disputes_href: String,
}

/// One item of the setup checklist.
pub struct CheckItem {
    /// Stable name (`profile`, `secret`, `first_event_test`, …): the element's id is
    /// `check-<name>`.
    pub name: &'static str,
    pub done: bool,
    /// What it is, translated.
    pub label: String,
    /// What to do next (not done) or what is known (done), translated.
    pub detail: String,
    /// The page that does it.
    pub href: String,
}

/// One count of the health view.
pub struct HealthItem {
    /// Stable name: the element's id is `health-<name>`.
    pub name: &'static str,
    pub label: String,
    pub count: u64,
    /// The page that shows them.
    pub href: String,
}

/// The last event received from Stripe in one mode.
pub struct LastEvent {
    pub mode: &'static str,
    pub mode_label: String,
    /// `received_at`, epoch milliseconds.
    pub at: Option<i64>,
    /// How long ago, in words.
    pub ago: Option<String>,
    pub href: String,
}

#[derive(Template)]
#[template(path = "backoffice/app/dashboard.html")]
struct DashboardTemplate {
    ctx: Page,
    company_name: String,
    company_id: String,
    status_key: &'static str,
    environment_key: &'static str,
    role_key: &'static str,
    stripe_enabled: bool,
    suspended: bool,
    callback_url: String,
    counts: Counts,
    checklist: Vec<CheckItem>,
    setup_done: bool,
    health: Vec<HealthItem>,
    last_events: Vec<LastEvent>,
    /// The connection's state when it asks for attention (issue 17): its sentence.
    connection_alert: Option<(String, String)>,
}

/// The newest event of `scope` delivered by Stripe (not Paygate's own test events).
async fn last_from_stripe(
    s: &MerchantSession,
    scope: Scope,
) -> Result<Option<inbox_event::Model>, PageError> {
    Ok(scope
        .inbox_events()
        .filter(inbox_event::Column::Origin.eq("webhook"))
        .filter(inbox_event::Column::StripeEventId.not_like(format!("{TEST_EVENT_ID_PREFIX}%")))
        .order_by_desc(inbox_event::Column::ReceivedAt)
        .order_by_desc(inbox_event::Column::Id)
        .one(s.db())
        .await?)
}

/// `ms` milliseconds ago in words ("3 minutes ago").
fn ago(s: &MerchantSession, ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (key, n) = if secs < 60 {
        ("dashboard.ago_now", 0)
    } else if secs < 3600 {
        ("dashboard.ago_minutes", secs / 60)
    } else if secs < 86_400 {
        ("dashboard.ago_hours", secs / 3600)
    } else {
        ("dashboard.ago_days", secs / 86_400)
    };
    s.lang.format(key, &[&n.to_string()])
}

async fn dashboard(
    s: MerchantSession,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let company = &v.company;
    let out = s.tenants().company_out(company);
    let db = s.db();
    let now = now_ms();
    let tenant = s.tenant();
    let counts = Counts {
        events: v.scope.inbox_events().count(db).await?,
        events_href: v.href("/app/events"),
        orders: v.scope.orders().count(db).await?,
        orders_href: v.href("/app/orders"),
        disputes_open: v
            .scope
            .disputes()
            .filter(dispute::Column::Status.is_in(NEEDS_RESPONSE))
            .count(db)
            .await?,
        disputes_href: v.href("/app/disputes"),
    };

    // The checklist.
    let t = |k: &str| s.lang.t(k).to_owned();
    let profiles = tenant.find::<stripe_profile::Entity>().count(db).await?;
    let secrets = tenant
        .find::<signing_secret::Entity>()
        .filter(
            Condition::any()
                .add(signing_secret::Column::ExpiresAt.is_null())
                .add(signing_secret::Column::ExpiresAt.gt(now)),
        )
        .count(db)
        .await?;
    let mut checklist = vec![
        CheckItem {
            name: "profile",
            done: profiles > 0,
            label: t("dashboard.check_profile"),
            detail: t(if profiles > 0 {
                "dashboard.check_profile_done"
            } else {
                "dashboard.check_profile_todo"
            }),
            href: "/app/stripe#add-profile".to_owned(),
        },
        CheckItem {
            name: "secret",
            done: secrets > 0,
            label: t("dashboard.check_secret"),
            detail: t(if secrets > 0 {
                "dashboard.check_secret_done"
            } else {
                "dashboard.check_secret_todo"
            }),
            href: "/app/stripe#profiles".to_owned(),
        },
    ];
    let mut last_events = Vec::new();
    for m in [Mode::Test, Mode::Live] {
        let last = last_from_stripe(&s, company.tenant().in_mode(m)).await?;
        let mode_label = t(if m == Mode::Test {
            "environment.test"
        } else {
            "environment.live"
        });
        let events_href = mode_href("/app/events", m);
        checklist.push(CheckItem {
            name: if m == Mode::Test {
                "first_event_test"
            } else {
                "first_event_live"
            },
            done: last.is_some(),
            label: s.lang.format("dashboard.check_first_event", &[&mode_label]),
            detail: match &last {
                Some(e) => s.lang.format(
                    "dashboard.check_first_event_done",
                    &[&s.lang.datetime(e.received_at)],
                ),
                None => t("dashboard.check_first_event_todo"),
            },
            href: match &last {
                Some(_) => events_href.clone(),
                None => mode_href("/app/connect", m),
            },
        });
        last_events.push(LastEvent {
            mode: m.as_str(),
            mode_label,
            at: last.as_ref().map(|e| e.received_at),
            ago: last.as_ref().map(|e| ago(&s, now - e.received_at)),
            href: events_href,
        });
    }
    checklist.push(CheckItem {
        name: "stripe_on",
        done: company.stripe_enabled,
        label: t("dashboard.check_stripe_on"),
        detail: t(if company.stripe_enabled {
            "dashboard.check_stripe_on_done"
        } else {
            "dashboard.check_stripe_on_todo"
        }),
        href: "/app/stripe#payment-method".to_owned(),
    });
    let missing = paygate_tenant::readiness::live_missing(db, company.id).await?;
    checklist.push(CheckItem {
        name: "live_ready",
        done: missing.is_empty(),
        label: t("dashboard.check_live_ready"),
        detail: if missing.is_empty() {
            t("dashboard.check_live_ready_done")
        } else {
            let what: Vec<String> = missing
                .iter()
                .map(|m| s.lang.t(&format!("dashboard.missing_{m}")).to_owned())
                .collect();
            s.lang
                .format("dashboard.check_live_ready_todo", &[&what.join(", ")])
        },
        href: "/app/stripe#environment-switch".to_owned(),
    });
    let setup_done = checklist.iter().all(|c| c.done);

    // The health view.
    let failed_events = v
        .scope
        .inbox_events()
        .filter(inbox_event::Column::Status.eq("failed"))
        .count(db)
        .await?;
    let now_s = now / 1000;
    let due_soon = v
        .scope
        .disputes()
        .filter(dispute::Column::Status.is_in(NEEDS_RESPONSE))
        .filter(dispute::Column::EvidenceDueBy.lte(now_s + DUE_SOON_DAYS * 86_400))
        .count(db)
        .await?;
    let rejections = tenant
        .find::<delivery_failure::Entity>()
        .filter(delivery_failure::Column::OccurredAt.gt(now - REJECTIONS_DAYS * 86_400_000))
        .count(db)
        .await?;
    let failing_endpoints = tenant
        .find::<notification_endpoint::Entity>()
        .filter(
            // Failing while on, or switched off by Paygate for failing (a reason is set only
            // then, and cleared when the merchant switches it on again).
            Condition::any()
                .add(
                    Condition::all()
                        .add(notification_endpoint::Column::Enabled.eq(true))
                        .add(notification_endpoint::Column::FailingSince.is_not_null()),
                )
                .add(notification_endpoint::Column::DisabledReason.is_not_null()),
        )
        .count(db)
        .await?;
    let health = vec![
        HealthItem {
            name: "failed_events",
            label: t("dashboard.health_failed_events"),
            count: failed_events,
            href: v.href("/app/events?status=failed"),
        },
        HealthItem {
            name: "rejected_deliveries",
            label: s
                .lang
                .format("dashboard.health_rejected", &[&REJECTIONS_DAYS.to_string()]),
            count: rejections,
            href: format!("{}#rejections", v.href("/app/connect")),
        },
        HealthItem {
            name: "disputes_due_soon",
            label: s
                .lang
                .format("dashboard.health_due_soon", &[&DUE_SOON_DAYS.to_string()]),
            count: due_soon,
            href: v.href("/app/disputes"),
        },
        HealthItem {
            name: "failing_endpoints",
            label: t("dashboard.health_failing_endpoints"),
            count: failing_endpoints,
            href: v.href("/app/notifications"),
        },
    ];

    render(&DashboardTemplate {
        ctx: v.page(&s, "dashboard.title", "/app"),
        company_name: company.name.clone(),
        company_id: company.company_id.clone(),
        status_key: if company.status == "suspended" {
            "company_status.suspended"
        } else {
            "company_status.active"
        },
        environment_key: if company.environment == "live" {
            "environment.live"
        } else {
            "environment.test"
        },
        role_key: crate::merchant::users::role_key(s.role),
        stripe_enabled: company.stripe_enabled,
        suspended: company.status == "suspended",
        callback_url: out.callback_url,
        counts,
        checklist,
        setup_done,
        health,
        last_events,
        connection_alert: company
            .stripe_connection
            .as_deref()
            .filter(|st| *st != "ok")
            .map(|st| {
                (
                    st.to_owned(),
                    s.lang.t(&format!("connection_state.{st}")).to_owned(),
                )
            }),
    })
}
