//! One-shot values for Post/Redirect/Get: what a successful POST must show exactly once (a new
//! API key, a new signing secret, an invitation link, the result of a test event) is put here
//! under the session's id, the POST answers 303, and the GET after the redirect takes it out
//! and shows it. A reload of that GET shows the plain page; nothing is done twice.
//!
//! The values live in this process's memory only (never in a cookie, never in the database),
//! for at most [`TTL`]. With several Paygate instances behind a load balancer without session
//! affinity the GET may land elsewhere and the value is then not shown: the page says nothing
//! was created and the user revokes/rotates again — never a second silent creation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How long a value waits for its GET.
pub const TTL: Duration = Duration::from_secs(10 * 60);

/// A value's key: (session id, slot).
type Key = (String, &'static str);

/// The store (one per process, shared by the workers).
#[derive(Debug, Default)]
pub struct OneShots {
    items: Mutex<HashMap<Key, (Instant, serde_json::Value)>>,
}

impl OneShots {
    /// Keeps `value` for the next [`take`](Self::take) of `slot` by session `session_id`
    /// (replacing an earlier one).
    pub fn put<T: Serialize>(&self, session_id: &str, slot: &'static str, value: &T) {
        let Ok(v) = serde_json::to_value(value) else {
            return;
        };
        let now = Instant::now();
        if let Ok(mut m) = self.items.lock() {
            m.retain(|_, (at, _)| now.duration_since(*at) < TTL);
            m.insert((session_id.to_owned(), slot), (now, v));
        }
    }

    /// Takes the value of `slot` of session `session_id` out (once).
    pub fn take<T: DeserializeOwned>(&self, session_id: &str, slot: &'static str) -> Option<T> {
        let (at, v) = self
            .items
            .lock()
            .ok()?
            .remove(&(session_id.to_owned(), slot))?;
        if at.elapsed() >= TTL {
            return None;
        }
        serde_json::from_value(v).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_taken_once_and_only_by_its_session() {
        let s = OneShots::default();
        s.put("a", "k", &"secret".to_owned());
        assert_eq!(s.take::<String>("b", "k"), None);
        assert_eq!(s.take::<String>("a", "k").as_deref(), Some("secret"));
        assert_eq!(s.take::<String>("a", "k"), None);
    }
}
