//! Every path of the HTTP API, in one place: Stripe's callbacks (the intake), the operators'
//! API under `/admin/v1` and the merchant API under `/api/v1`. A handler lives in the module of
//! its resource; this file is the one list of what answers where (the generated OpenAPI
//! document in `openapi` describes the same operations, and `tests/it/openapi.rs` checks that
//! the two agree). The web UI's pages are listed by `paygate-backoffice`.

use actix_web::web;

use crate::{
    api_keys, audit, auth, companies, domain, events, intake, merchant, notifications, openapi,
    operators, orders, profiles, reconcile, users,
};

/// Registers every route of the HTTP API.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Stripe. The hot path: verify, insert, answer (see `intake`).
    cfg.service(
        web::resource("/callbacks/v1.0/stripe/{company_id}").route(web::post().to(intake::receive)),
    );
    // Operators (JWT).
    cfg.service(
        web::scope("/admin/v1")
            .route("/openapi.json", web::get().to(openapi::serve))
            .route("/auth/token", web::post().to(auth::token))
            .route("/auth/password", web::post().to(auth::change_password))
            .route("/audit-log", web::get().to(audit::list))
            .route(
                "/companies/{company_id}/api-keys",
                web::post().to(api_keys::create),
            )
            .route(
                "/companies/{company_id}/api-keys",
                web::get().to(api_keys::list),
            )
            .route(
                "/companies/{company_id}/api-keys/{id}",
                web::delete().to(api_keys::revoke),
            )
            .route("/operators", web::get().to(operators::list))
            .route("/operators", web::post().to(operators::add))
            .route(
                "/operators/{operator_id}/disable",
                web::post().to(operators::disable),
            )
            .route(
                "/operators/{operator_id}/enable",
                web::post().to(operators::enable),
            )
            .route(
                "/operators/{operator_id}",
                web::delete().to(operators::remove),
            )
            .route("/companies", web::get().to(companies::list))
            .route("/companies", web::post().to(companies::create))
            .route("/companies/{company_id}", web::get().to(companies::get))
            .route(
                "/companies/{company_id}",
                web::patch().to(companies::update),
            )
            .route(
                "/companies/{company_id}",
                web::delete().to(companies::delete),
            )
            .route("/companies/{company_id}/users", web::get().to(users::list))
            .route(
                "/companies/{company_id}/users",
                web::post().to(users::create),
            )
            .route(
                "/companies/{company_id}/users/{user_id}",
                web::delete().to(users::delete),
            )
            .route(
                "/companies/{company_id}/profiles",
                web::get().to(profiles::list),
            )
            .route(
                "/companies/{company_id}/profiles",
                web::post().to(profiles::create),
            )
            .route(
                "/companies/{company_id}/profiles/{profile_id}",
                web::get().to(profiles::get),
            )
            .route(
                "/companies/{company_id}/profiles/{profile_id}",
                web::patch().to(profiles::update),
            )
            .route(
                "/companies/{company_id}/profiles/{profile_id}",
                web::delete().to(profiles::delete),
            )
            .route(
                "/companies/{company_id}/profiles/{profile_id}/signing-secrets",
                web::post().to(profiles::rotate),
            )
            .route(
                "/companies/{company_id}/orders",
                web::get().to(orders::list_orders),
            )
            .route(
                "/companies/{company_id}/checkout-sessions",
                web::get().to(orders::list_checkout_sessions),
            )
            .route(
                "/companies/{company_id}/events/{event_id}/replay",
                web::post().to(domain::replay),
            )
            .route(
                "/companies/{company_id}/payment-intents",
                web::get().to(domain::list_payment_intents),
            )
            .route(
                "/companies/{company_id}/payment-intents/{id}",
                web::get().to(domain::get_payment_intent),
            )
            .route(
                "/companies/{company_id}/charges/{id}",
                web::get().to(domain::get_charge),
            )
            .route(
                "/companies/{company_id}/disputes",
                web::get().to(domain::list_disputes),
            )
            .route(
                "/companies/{company_id}/disputes/{id}",
                web::get().to(domain::get_dispute),
            )
            .route(
                "/companies/{company_id}/orders/{id}",
                web::get().to(domain::get_order),
            )
            .route(
                "/companies/{company_id}/checkout-sessions/{id}",
                web::get().to(domain::get_checkout_session),
            )
            .route(
                "/companies/{company_id}/accounts",
                web::get().to(domain::list_accounts),
            )
            .route(
                "/companies/{company_id}/payment-methods/{id}",
                web::get().to(domain::get_payment_method),
            )
            .route(
                "/companies/{company_id}/issuing/{id}",
                web::get().to(domain::get_issuing),
            )
            .route(
                "/companies/{company_id}/events",
                web::get().to(events::list),
            )
            .route(
                "/companies/{company_id}/events/stats",
                web::get().to(events::stats),
            )
            .route(
                "/companies/{company_id}/events/{event_id}",
                web::get().to(events::get),
            )
            .route(
                "/companies/{company_id}/delivery-failures",
                web::get().to(events::failures),
            )
            .route(
                "/companies/{company_id}/reconcile",
                web::post().to(reconcile::reconcile),
            )
            .route(
                "/companies/{company_id}/notification-endpoints",
                web::post().to(notifications::create),
            )
            .route(
                "/companies/{company_id}/notification-endpoints",
                web::get().to(notifications::list),
            )
            .route(
                "/companies/{company_id}/notification-endpoints/{endpoint_id}",
                web::get().to(notifications::get),
            )
            .route(
                "/companies/{company_id}/notification-endpoints/{endpoint_id}",
                web::patch().to(notifications::update),
            )
            .route(
                "/companies/{company_id}/notification-endpoints/{endpoint_id}",
                web::delete().to(notifications::delete),
            )
            .route(
                "/companies/{company_id}/notification-endpoints/{endpoint_id}/rotate-secret",
                web::post().to(notifications::rotate),
            )
            .route(
                "/companies/{company_id}/notification-endpoints/{endpoint_id}/test",
                web::post().to(notifications::test),
            )
            .route(
                "/companies/{company_id}/notification-endpoints/{endpoint_id}/replay",
                web::post().to(notifications::replay_failed),
            )
            .route(
                "/companies/{company_id}/notification-messages",
                web::get().to(notifications::messages),
            )
            .route(
                "/companies/{company_id}/notification-messages/{message_id}",
                web::get().to(notifications::message),
            )
            .route(
                "/companies/{company_id}/notification-messages/{message_id}/replay",
                web::post().to(notifications::replay_message),
            )
            .route(
                "/companies/{company_id}/notification-settings",
                web::get().to(notifications::settings),
            )
            .route(
                "/companies/{company_id}/notification-settings",
                web::put().to(notifications::save_settings),
            ),
    );
    // Merchants' own systems (API keys, in the key's mode).
    cfg.service(
        web::scope("/api/v1")
            .route(
                "/checkout-sessions",
                web::post().to(merchant::create_checkout_session),
            )
            .route("/orders", web::post().to(merchant::create_source_order))
            .route("/orders", web::get().to(merchant::find_orders))
            .route("/orders/{order_id}", web::get().to(merchant::get_order))
            .route(
                "/notification-endpoints",
                web::post().to(notifications::create),
            )
            .route(
                "/notification-endpoints",
                web::get().to(notifications::list),
            )
            .route(
                "/notification-endpoints/{endpoint_id}",
                web::get().to(notifications::get),
            )
            .route(
                "/notification-endpoints/{endpoint_id}",
                web::patch().to(notifications::update),
            )
            .route(
                "/notification-endpoints/{endpoint_id}",
                web::delete().to(notifications::delete),
            )
            .route(
                "/notification-endpoints/{endpoint_id}/rotate-secret",
                web::post().to(notifications::rotate),
            )
            .route(
                "/notification-endpoints/{endpoint_id}/test",
                web::post().to(notifications::test),
            )
            .route(
                "/notification-endpoints/{endpoint_id}/replay",
                web::post().to(notifications::replay_failed),
            )
            .route(
                "/notification-messages",
                web::get().to(notifications::messages),
            )
            .route(
                "/notification-messages/{message_id}",
                web::get().to(notifications::message),
            )
            .route(
                "/notification-messages/{message_id}/replay",
                web::post().to(notifications::replay_message),
            )
            .route(
                "/notification-settings",
                web::get().to(notifications::settings),
            )
            .route(
                "/notification-settings",
                web::put().to(notifications::save_settings),
            ),
    );
}
