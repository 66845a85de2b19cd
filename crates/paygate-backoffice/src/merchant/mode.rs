//! The mode of the data pages, as in Stripe's dashboard: each page that shows objects mirroring
//! Stripe (overview, events, orders, disputes, notification messages, the account status on the
//! Connect page) shows those of **one** mode, test or live, and says which.
//!
//! Policy:
//! - The mode is `?mode=test|live` on the GET (the hidden `mode` field on a form); without one,
//!   the company's environment ([`company::Model::environment_mode`]). A value that is neither
//!   is refused with a 400 page ([`PageError::BadMode`]): the pages never make one, and showing
//!   the default mode instead could put live data in front of a merchant who asked for test
//!   data (or the other way round) without them noticing.
//! - Every query of such a page starts from [`View::scope`] (the company in that mode), so an
//!   object of the other mode is "not found" on the page of one object.
//! - The layout shows the mode — the "Test data" banner in test mode, the "Live" badge in live
//!   mode (`#env-banner`, `data-mode`; pages without a mode show the company's environment
//!   there, so every `/app` page has it) — and a link to the other mode ([`Page::set_mode`]); the links a data page makes to other data pages (list → object,
//!   object → list, paging, the filter forms' hidden field, redirects after a form) name the
//!   mode explicitly, so a link keeps meaning the same data when the environment changes.

use serde::Deserialize;

use paygate_db::entities::company;
use paygate_db::{Mode, Scope};

use crate::MerchantSession;
use crate::page::{Page, PageError, mode_href};

/// The `mode` parameter of a data page's query or of a form (missing or empty: the default).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ModeParam {
    pub mode: String,
}

impl ModeParam {
    /// The mode asked for, `None` when none is; [`PageError::BadMode`] for anything else than
    /// `test` or `live`.
    pub fn parse(&self) -> Result<Option<Mode>, PageError> {
        match self.mode.trim() {
            "" => Ok(None),
            m => m.parse().map(Some).map_err(|_| PageError::BadMode),
        }
    }
}

/// What a data page shows: the signed-in user's company in one mode.
#[derive(Clone, Debug)]
pub struct View {
    /// The company, fresh from the database.
    pub company: company::Model,
    /// The company in the page's mode: the start of every query of the page.
    pub scope: Scope,
}

impl View {
    /// The view of the session's company in the mode `asked` names, or in its environment's.
    pub async fn of(s: &MerchantSession, asked: &ModeParam) -> Result<Self, PageError> {
        let asked = asked.parse()?;
        let company = s.company().await?;
        let scope = company.scope(asked);
        Ok(Self { company, scope })
    }

    /// The page's mode.
    pub fn mode(&self) -> Mode {
        self.scope.mode()
    }

    /// The layout data of a data page titled by `title_key`, showing its mode; the switch to
    /// the other mode goes to `switch_path` (see [`Page::set_mode`]).
    pub fn page(&self, s: &MerchantSession, title_key: &str, switch_path: &str) -> Page {
        let mut page = s.page(title_key);
        page.set_mode(self.mode(), self.company.environment_mode(), switch_path);
        page
    }

    /// `path` in the page's mode (`/app/events/evt_1?mode=test`).
    pub fn href(&self, path: &str) -> String {
        mode_href(path, self.mode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(m: &str) -> ModeParam {
        ModeParam { mode: m.into() }
    }

    #[test]
    fn a_mode_is_test_live_or_none() {
        assert!(matches!(param("").parse(), Ok(None)));
        assert!(matches!(param("test").parse(), Ok(Some(Mode::Test))));
        assert!(matches!(param(" live ").parse(), Ok(Some(Mode::Live))));
        assert!(matches!(param("LIVE").parse(), Err(PageError::BadMode)));
        assert!(matches!(param("sandbox").parse(), Err(PageError::BadMode)));
    }

    #[test]
    fn links_name_their_mode() {
        assert_eq!(
            mode_href("/app/events", Mode::Test),
            "/app/events?mode=test"
        );
        assert_eq!(
            mode_href("/app/events?type=x", Mode::Live),
            "/app/events?type=x&mode=live"
        );
    }
}
