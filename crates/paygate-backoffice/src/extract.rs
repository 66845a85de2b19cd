//! Extractors of the back office: who is asking, in which language, with which CSRF token.
//! They read what the guard middleware resolved, so they cost no database query.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use sea_orm::{DatabaseConnection, EntityTrait};

use paygate_db::Tenant;
use paygate_db::entities::company;
use paygate_tenant::users::Role;

use crate::BackofficeState;
use crate::guard::encode;
use crate::i18n::Lang;
use crate::page::{Page, PageError, RequestCtx};
use crate::session::{Principal, SessionInfo};

fn request_ctx(req: &HttpRequest) -> Result<RequestCtx, PageError> {
    req.extensions()
        .get::<RequestCtx>()
        .cloned()
        .ok_or_else(|| {
            PageError::internal(std::io::Error::other(
                "the back-office guard middleware does not wrap this route",
            ))
        })
}

fn state(req: &HttpRequest) -> Result<web::Data<BackofficeState>, PageError> {
    req.app_data::<web::Data<BackofficeState>>()
        .cloned()
        .ok_or_else(|| PageError::internal(std::io::Error::other("back-office state missing")))
}

fn to_signin(rc: &RequestCtx) -> PageError {
    PageError::Redirect(format!("/signin?next={}", encode(&rc.path)))
}

/// Anyone, signed in or not: the sign-in, invitation and language pages.
#[derive(Clone, Debug)]
pub struct Visitor {
    pub rc: RequestCtx,
    pub state: web::Data<BackofficeState>,
}

impl Visitor {
    /// The layout data, titled by `title_key`.
    pub fn page(&self, title_key: &str) -> Page {
        Page::new(&self.rc, title_key)
    }
    pub fn lang(&self) -> Lang {
        self.rc.lang
    }
    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }
    /// The signed-in session, if any.
    pub fn session(&self) -> Option<&Arc<SessionInfo>> {
        self.rc.session.as_ref()
    }
}

impl FromRequest for Visitor {
    type Error = PageError;
    type Future = Ready<Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready((|| {
            Ok(Visitor {
                rc: request_ctx(req)?,
                state: state(req)?,
            })
        })())
    }
}

/// A signed-in company user. Every query a merchant page makes starts from its company —
/// [`tenant`](Self::tenant) for configuration, a [`Scope`](paygate_db::Scope) of the company in
/// one mode for the data that mirrors Stripe — taken from here and never from the URL.
#[derive(Clone, Debug)]
pub struct MerchantSession {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    /// The company's internal id: the scope of every query.
    pub company_pk: i64,
    /// The company's public id (in the callback URL).
    pub company_id: String,
    pub company_name: String,
    pub company_status: String,
    pub lang: Lang,
    /// The session's CSRF token (already in `page().csrf`).
    pub csrf: String,
    pub rc: RequestCtx,
    pub state: web::Data<BackofficeState>,
}

impl MerchantSession {
    /// The layout data, titled by `title_key`.
    pub fn page(&self, title_key: &str) -> Page {
        Page::new(&self.rc, title_key)
    }
    /// 403 unless the user is a company admin: call it first in every handler that changes
    /// something (a viewer sees everything and changes nothing).
    pub fn require_admin(&self) -> Result<(), PageError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Viewer => Err(PageError::ViewerForbidden),
        }
    }
    /// Whether the user may change things (to hide forms from viewers).
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
    /// How the audit log names this user.
    pub fn actor(&self) -> String {
        format!("user:{}", self.email)
    }
    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }
    /// The company, as the start of every query of its configuration.
    pub fn tenant(&self) -> Tenant {
        Tenant::new(self.company_pk)
    }
    /// The company, fresh from the database (the session carries only what every page needs).
    pub async fn company(&self) -> Result<company::Model, PageError> {
        company::Entity::find_by_id(self.company_pk)
            .one(self.db())
            .await?
            .ok_or(PageError::NotFound)
    }
    /// The tenant configuration service (companies, profiles, secrets: validated, audited,
    /// caches invalidated).
    pub fn tenants(&self) -> &paygate_tenant::TenantService {
        &self.state.tenants
    }
    /// Keeps `value` to show once on the GET after this POST's redirect ([`crate::oneshot`]).
    pub fn put_once<T: serde::Serialize>(&self, slot: &'static str, value: &T) {
        if let Some(sess) = &self.rc.session {
            self.state.oneshots.put(&sess.id, slot, value);
        }
    }
    /// The value a POST kept for this GET, once.
    pub fn take_once<T: serde::de::DeserializeOwned>(&self, slot: &'static str) -> Option<T> {
        let sess = self.rc.session.as_ref()?;
        self.state.oneshots.take(&sess.id, slot)
    }
}

impl FromRequest for MerchantSession {
    type Error = PageError;
    type Future = Ready<Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready((|| {
            let rc = request_ctx(req)?;
            let state = state(req)?;
            let Some(session) = rc.session.clone() else {
                return Err(to_signin(&rc));
            };
            match &session.principal {
                Principal::User {
                    user_id,
                    email,
                    role,
                    company_pk,
                    company_id,
                    company_name,
                    company_status,
                    ..
                } => Ok(MerchantSession {
                    user_id: user_id.clone(),
                    email: email.clone(),
                    role: *role,
                    company_pk: *company_pk,
                    company_id: company_id.clone(),
                    company_name: company_name.clone(),
                    company_status: company_status.clone(),
                    lang: rc.lang,
                    csrf: session.csrf.clone(),
                    rc,
                    state,
                }),
                // Operators have no company of their own: their pages are the console.
                Principal::Operator { .. } => Err(PageError::Redirect("/console".into())),
            }
        })())
    }
}

/// A signed-in operator: the console.
#[derive(Clone, Debug)]
pub struct OperatorSession {
    pub operator_id: String,
    pub email: String,
    pub lang: Lang,
    pub csrf: String,
    pub rc: RequestCtx,
    pub state: web::Data<BackofficeState>,
}

impl OperatorSession {
    /// The layout data, titled by `title_key`.
    pub fn page(&self, title_key: &str) -> Page {
        Page::new(&self.rc, title_key)
    }
    /// How the audit log names this operator.
    pub fn actor(&self) -> String {
        format!("operator:{}", self.email)
    }
    pub fn db(&self) -> &DatabaseConnection {
        &self.state.db
    }
    pub fn tenants(&self) -> &paygate_tenant::TenantService {
        &self.state.tenants
    }
    /// Keeps `value` to show once on the GET after this POST's redirect ([`crate::oneshot`]).
    pub fn put_once<T: serde::Serialize>(&self, slot: &'static str, value: &T) {
        if let Some(sess) = &self.rc.session {
            self.state.oneshots.put(&sess.id, slot, value);
        }
    }
    /// The value a POST kept for this GET, once.
    pub fn take_once<T: serde::de::DeserializeOwned>(&self, slot: &'static str) -> Option<T> {
        let sess = self.rc.session.as_ref()?;
        self.state.oneshots.take(&sess.id, slot)
    }
}

impl FromRequest for OperatorSession {
    type Error = PageError;
    type Future = Ready<Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready((|| {
            let rc = request_ctx(req)?;
            let state = state(req)?;
            let Some(session) = rc.session.clone() else {
                return Err(to_signin(&rc));
            };
            match &session.principal {
                Principal::Operator { id, email } => Ok(OperatorSession {
                    operator_id: id.clone(),
                    email: email.clone(),
                    lang: rc.lang,
                    csrf: session.csrf.clone(),
                    rc,
                    state,
                }),
                Principal::User { .. } => Err(PageError::Forbidden),
            }
        })())
    }
}
