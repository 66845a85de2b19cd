//! `Strict-Transport-Security` on every answer when Paygate is reached over https (its public
//! base URL is `https://…`): browsers then refuse plain http to it for a year, subdomains
//! included, so a sign-in page or a session cookie cannot be downgraded on a hostile network.
//! Over plain http the header would mean nothing (and would break a deliberate http set-up), so
//! it is not sent.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, STRICT_TRANSPORT_SECURITY};
use actix_web::middleware::Next;
use actix_web::web::Data;

/// The header's value.
pub const VALUE: &str = "max-age=31536000; includeSubDomains";

/// Whether to send the header (app data, `web::Data<Hsts>`); absent means no.
#[derive(Debug, Clone, Copy)]
pub struct Hsts {
    pub enabled: bool,
}

impl Hsts {
    /// On exactly when the public base URL is https.
    pub fn for_public_base_url(url: &str) -> Self {
        Self {
            enabled: url
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://")),
        }
    }
}

/// The middleware (`App::wrap(from_fn(hsts::middleware))`).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let on = req.app_data::<Data<Hsts>>().is_some_and(|h| h.enabled);
    let mut res = next.call(req).await?;
    if on {
        res.headers_mut()
            .insert(STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(VALUE));
    }
    Ok(res)
}
