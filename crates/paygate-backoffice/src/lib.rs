//! # paygate-backoffice
//!
//! The web UI: the merchants' back office, the operators' console and the shopper's pages after
//! Stripe Checkout. Server-rendered HTML (askama templates in `frontend-templates/backoffice/` and
//! `frontend-templates/shopper/`, compiled in, auto-escaped), in English, Italian and German from
//! one translation catalogue ([`i18n`]), working without JavaScript.
//!
//! | path | who | what |
//! | --- | --- | --- |
//! | `GET /` | anyone | to `/app`, `/console` or `/signin` |
//! | `GET, POST /signin` | anyone | one sign-in form for operators and company users |
//! | `POST /signout` | signed in | ends the session |
//! | `POST /language` | anyone | the language switch (remembered in a cookie and the session) |
//! | `GET, POST /invitations/{token}` | invited user | choose a password (one-time link, 7 days) |
//! | `GET, POST /setup/{token}` | whoever started the server | create the first operator (the one-time link `serve` logs while none exists, [`setup`]) |
//! | `/app`, `/app/…` | company users | the merchant pages ([`merchant`]); the data pages in one mode, `?mode=test\|live` ([`merchant::mode`]) |
//! | `/console/…` | operators | the operator console ([`console`]) |
//! | `/static/backoffice.css`, `/static/backoffice.js` | anyone | the stylesheet, the copy buttons and scrollable cards |
//!
//! Every route above runs inside the guard middleware ([`guard`]): it resolves the session, the
//! language and the CSRF token before the handler, refuses any non-GET request whose `csrf`
//! field is missing or wrong (403, the handler never runs), renders [`PageError`]s as pages, and
//! sets `Content-Security-Policy` (no inline script or style, nothing from other hosts),
//! `X-Content-Type-Options`, `Referrer-Policy`, `X-Frame-Options` and `Cache-Control: no-store`.
//! The session cookie is `HttpOnly`, `SameSite=Strict`, `Path=/`, and `Secure` when the public
//! base URL is https or the request came over TLS (or `X-Forwarded-Proto: https`).
//!
//! The shopper's pages ([`shopper`]) run outside the guard (shoppers have no session, post
//! nothing, and get their language from `Accept-Language` alone), under their own stricter CSP:
//!
//! | path | who | what |
//! | --- | --- | --- |
//! | `GET /checkout/{company_id}/return?session_id=cs_…` | shoppers | the landing page after Stripe Checkout: runs `fulfill_checkout`, shows the order's state; a localized HTML page for every outcome (never JSON); a session Stripe does not know is a 404 page and records nothing; the Stripe lookups it causes are bounded ([`shopper_lookups`]) |
//! | `GET /checkout/{company_id}/return?source=src_…&livemode=…` | shoppers | the same page for an order paid with a legacy Source (the Source's `redirect[return_url]`): answered from the database, no Stripe call |
//! | `GET /checkout/{company_id}/sessions/{session_id}/status`, `GET /checkout/{company_id}/sources/{source_id}/status?livemode=…` | shoppers | the JSON the page polls (at most 10 times) |
//! | `/static/checkout-status.js`, `/static/paygate.css` | anyone | the page's script and stylesheet |
//!
//! # Adding a page
//!
//! A merchant page (say *API keys* at `/app/api-keys`) is a module under `src/merchant/`, a
//! template under `frontend-templates/backoffice/app/`, and keys in the three catalogues.
//!
//! **1. Routes.** Create `src/merchant/api_keys.rs` with a `configure` that registers paths
//! *relative to `/app`*, then add `pub mod api_keys;` and `.configure(api_keys::configure)` in
//! `src/merchant/mod.rs`. For a menu entry add a [`nav::NavItem`] to [`nav::MERCHANT`] (its
//! `key` is a catalogue key under `[nav]`).
//!
//! ```ignore
//! pub fn configure(cfg: &mut web::ServiceConfig) {
//!     cfg.route("/api-keys", web::get().to(list))
//!         .route("/api-keys", web::post().to(create))
//!         .route("/api-keys/{key_id}/revoke", web::post().to(revoke));
//! }
//! ```
//! Forms only `GET` and `POST` (browsers without JavaScript can send nothing else): a change of
//! one object is `POST /app/<things>/{id}/<verb>`. After a successful POST, redirect (303) with
//! [`page::redirect_with_flash`]`("/app/api-keys", "flash.key_revoked")` so a reload does not
//! post again; or render the page directly when it must show something once (a new key).
//!
//! **2. The extractor.** Take a [`MerchantSession`] (signed-in company user; anyone else is sent
//! to the sign-in page, an operator to the console). It carries `company_pk`, `company_id`,
//! `company_name`, `role`, `user_id`, `email`, `lang`, `csrf`, and gives `db()`, `tenants()`
//! (the [`paygate_tenant::TenantService`]: use it for companies, profiles and signing secrets so
//! validation, encryption, audit and cache invalidation happen), `actor()` (for the audit log),
//! `page(title_key)` and `require_admin()`.
//! **Start every query from the company** — never from an entity and an id from the URL alone:
//! configuration from `s.tenant()` (`s.tenant().find::<api_key::Entity>()`), the data that
//! mirrors Stripe from a [`paygate_db::Scope`] in the page's mode. A data page takes
//! `web::Query<`[`merchant::mode::ModeParam`]`>` and makes a [`merchant::mode::View`]
//! (`View::of(&s, &mode).await?`): `v.scope.orders().filter(order::Column::Id.eq(id))`, its
//! layout from `v.page(&s, title_key, list_path)` (the mode, the "Test data" banner, the switch)
//! and its links from `v.href(path)` (they keep the mode; forms carry a hidden `mode` field).
//! Answer [`PageError::NotFound`] when the object is not found there (another company's, or
//! the other mode's). `.ci/lint-structure` refuses a hand-written `CompanyPk` filter.
//! **Call `s.require_admin()?` first in every handler that changes something**: a viewer sees
//! everything and changes nothing (403 page). Hide the forms from viewers with `s.is_admin()`.
//! Operator pages take an [`OperatorSession`] instead; pages for anyone a [`Visitor`].
//!
//! **3. The template.** `frontend-templates/backoffice/app/api_keys.html`:
//! ```text
//! {% extends "backoffice/base.html" %}
//! {% block content %}
//! <h1>{{ ctx.title }}</h1>
//! <table class="list">{% for k in keys %}
//!   <tr><td>{{ k.name }}</td><td>{{ ctx.datetime(k.created_at) }}</td>
//!       <td>{{ ctx.money(k.amount, k.currency) }}</td></tr>{% endfor %}</table>
//! {% if is_admin %}
//! <form method="post" action="/app/api-keys" class="stack">
//!   <input type="hidden" name="csrf" value="{{ ctx.csrf }}">
//!   <label for="name">{{ ctx.t("api_keys.name") }}</label>
//!   <input id="name" name="name" value="{{ form_name }}"{% if errors.has("name") %} aria-invalid="true" aria-describedby="name-error"{% endif %}>
//!   {% if let Some(e) = errors.get("name") %}<p class="field-error" id="name-error">{{ e }}</p>{% endif %}
//!   <button type="submit" class="primary">{{ ctx.t("api_keys.create") }}</button>
//! </form>
//! {% endif %}
//! {% endblock %}
//! ```
//! The struct has a `ctx: Page` field (the layout reads it: title, nav, language switch,
//! sign-out, flash) and whatever the page shows; render it with [`page::render`] (200) or
//! [`page::render_status`] (422 when the form has errors):
//! ```ignore
//! #[derive(Template)]
//! #[template(path = "backoffice/app/api_keys.html")]
//! struct ApiKeysTemplate { ctx: Page, keys: Vec<KeyRow>, is_admin: bool, form_name: String, errors: FieldErrors }
//!
//! async fn list(s: MerchantSession) -> Result<HttpResponse, PageError> {
//!     let keys = s.tenant().find::<api_key::Entity>().all(s.db()).await?;
//!     render(&ApiKeysTemplate { ctx: s.page("api_keys.title"), keys, is_admin: s.is_admin(),
//!                               form_name: String::new(), errors: FieldErrors::new() })
//! }
//! ```
//! In templates: `ctx.t("key")` for a text, `ctx.t1("key", x)` / `ctx.t2("key", x, y)` for texts
//! with `{0}` / `{1}`, `ctx.datetime(ms)` (our `*_at` columns), `ctx.datetime_s(secs)` (Stripe's
//! `created`), `ctx.date(ms)`, `ctx.money(minor_units, currency)`. Askama escapes every `{{ }}`;
//! never use `|safe` on data. No inline `<script>`, `style=` or `on…=` attributes: the CSP
//! refuses them. Scripts go in `frontend-templates/static/` (served by [`assets`]) and the page
//! must work without them; the copy button is ready: `<button type="button" class="copy"
//! data-copy="callback-url" hidden>` copies the text of the element with that id (the layout
//! loads `/static/backoffice.js` on every page; it also makes a card that scrolls sideways
//! focusable, so a keyboard can scroll it).
//!
//! **4. Texts.** Add every text to `frontend-templates/i18n/en.toml`, `it.toml` and `de.toml`,
//! under a table named after the page (`[api_keys]` → key `api_keys.title`). Field error
//! messages live under `[field_errors]`, keyed by the error code. `cargo test -p
//! paygate-backoffice` fails when a catalogue lacks a key another has, or when a template or the
//! code names a `"section.key"` that does not exist.
//!
//! **5. A form handler.** The guard has already checked the CSRF token (every POST; the hidden
//! `csrf` field must be in every form). Deserialize the form with `web::Form<T>` (no
//! `deny_unknown_fields`: the `csrf` field is in the body too; `#[serde(default)]` on text
//! fields so an empty form is a validation error, not a 400). Validation errors go next to their
//! field through [`FieldErrors`]: `FieldErrors::from_tenant(s.lang, err)?` turns a
//! `TenantError::Invalid` (and a field conflict) into a message on its field, translated by
//! `field_errors.<code>`; `errors.add(s.lang, "field", "code", "fallback")` adds one by hand.
//! Re-render the page with what was typed and status 422; nothing was changed.
//! ```ignore
//! async fn create(s: MerchantSession, form: web::Form<KeyForm>) -> Result<HttpResponse, PageError> {
//!     s.require_admin()?;
//!     match do_the_change(s.company_pk, &form).await {
//!         Ok(_) => Ok(redirect_with_flash("/app/api-keys", "flash.key_created")),
//!         Err(e) => {
//!             let errors = FieldErrors::from_tenant(s.lang, e)?;
//!             render_status(StatusCode::UNPROCESSABLE_ENTITY, &ApiKeysTemplate { /* … */ errors })
//!         }
//!     }
//! }
//! ```
//!
//! **6. Tests.** In `crates/paygate-server/tests/it/` (add the module to `main.rs`), with
//! `paygate_testkit::backoffice`: `Browser::new(&app)` is a cookie-keeping client (no
//! redirects followed, so statuses and `Location` can be checked); `app.company_user(company_id,
//! "admin")` creates a user with a password and returns its e-mail and password;
//! `browser.sign_in(email, password)`; `browser.get(path)` returns a `Page` (status, headers,
//! body) and `page.csrf()` the token of its forms; `browser.post_form(path, &[("field", "v")])`
//! posts with the page's last CSRF token added. Test at least: the page renders, each form's
//! validation error shows next to its field (422), a POST without `csrf` is 403 and changes
//! nothing, a viewer gets 403 on every change, and a user of another company gets 404 on every
//! URL naming the first company's objects.

pub mod assets;
pub mod auth;
pub mod console;
pub mod extract;
pub mod guard;
pub mod i18n;
pub mod merchant;
pub mod multipart;
pub mod nav;
pub mod oneshot;
pub mod page;
pub mod session;
pub mod setup;
pub mod shopper;
pub mod shopper_lookups;

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::web;
use sea_orm::DatabaseConnection;

use paygate_stripe::StripeClient;
use paygate_tenant::TenantService;

pub use extract::{MerchantSession, OperatorSession, Visitor};
pub use i18n::Lang;
pub use page::{FieldErrors, Page, PageError};
pub use session::SessionConfig;

/// The default of [`BackofficeState::with_shopper_lookups_per_minute`].
pub const DEFAULT_SHOPPER_LOOKUPS_PER_MINUTE: u32 = 60;

/// What the back office needs.
#[derive(Clone, Debug)]
pub struct BackofficeState {
    pub db: DatabaseConnection,
    pub tenants: TenantService,
    pub sessions: SessionConfig,
    /// Cookies always `Secure` (the public base URL is https).
    pub secure_cookies: bool,
    /// Where this process's own intake listens (`http://127.0.0.1:8080`): the Connect page's
    /// *Send test event* posts there, so the test goes through the real intake even when the
    /// public URL is not reachable from inside. The public base URL until
    /// [`with_local_addr`](Self::with_local_addr) says otherwise.
    pub intake_base_url: String,
    /// Notification endpoints and messages (the same service the admin API uses).
    pub notify: paygate_notify::NotifyService,
    /// The Stripe API client (the shopper's landing page fulfills through it).
    pub stripe: StripeClient,
    /// What bounds the Stripe lookups shoppers can cause: unknown ids remembered, a budget per
    /// company and mode.
    pub shopper_lookups: Arc<shopper_lookups::ShopperLookups>,
    /// Wrong first-run setup tokens per client address ([`setup`]).
    pub setup_throttle: Arc<paygate_web::throttle::Throttle>,
    /// What a successful POST shows once, on the GET after its redirect ([`oneshot`]).
    pub oneshots: Arc<oneshot::OneShots>,
}

impl BackofficeState {
    /// The state over the app's database and tenant service.
    pub fn new(
        db: DatabaseConnection,
        tenants: TenantService,
        sessions: SessionConfig,
        notify: paygate_notify::NotifyService,
        stripe: StripeClient,
    ) -> Self {
        let secure_cookies = tenants.public_base_url().starts_with("https://");
        let intake_base_url = tenants.public_base_url().trim_end_matches('/').to_owned();
        Self {
            db,
            tenants,
            sessions,
            secure_cookies,
            intake_base_url,
            notify,
            stripe,
            shopper_lookups: Arc::new(shopper_lookups::ShopperLookups::new(
                DEFAULT_SHOPPER_LOOKUPS_PER_MINUTE,
            )),
            setup_throttle: Arc::new(setup::new_throttle()),
            oneshots: Arc::new(oneshot::OneShots::default()),
        }
    }

    /// The budget of Stripe lookups that the shopper's landing page may cause per company and
    /// mode per minute (`PAYGATE_SHOPPER_LOOKUPS_PER_MINUTE`; 0: none).
    pub fn with_shopper_lookups_per_minute(mut self, per_minute: u32) -> Self {
        self.shopper_lookups = Arc::new(shopper_lookups::ShopperLookups::new(per_minute));
        self
    }

    /// The address the HTTP server is bound to, when known: the test event is posted there (an
    /// unspecified address such as `0.0.0.0` becomes the loopback address).
    pub fn with_local_addr(mut self, addr: Option<std::net::SocketAddr>) -> Self {
        if let Some(mut a) = addr {
            if a.ip().is_unspecified() {
                a.set_ip(match a.ip() {
                    std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            self.intake_base_url = format!("http://{a}");
        }
        self
    }
}

async fn not_found() -> Result<actix_web::HttpResponse, PageError> {
    Err(PageError::NotFound)
}

/// Registers every route of the web UI (the app must hold a `web::Data<BackofficeState>`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Shoppers have no session: their pages stay outside the guard.
    cfg.configure(assets::configure)
        .configure(shopper::configure);
    for r in auth::routes().into_iter().chain(setup::routes()) {
        cfg.service(r.wrap(from_fn(guard::guard)));
    }
    cfg.service(
        web::scope("/app")
            .wrap(from_fn(guard::guard))
            .configure(merchant::configure)
            .default_service(web::to(not_found)),
    )
    .service(
        web::scope("/console")
            .wrap(from_fn(guard::guard))
            .configure(console::configure)
            .default_service(web::to(not_found)),
    );
}
