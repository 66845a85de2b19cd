//! What the data pages (events, orders, disputes) share: the page size, words for the status and
//! reason codes of Stripe and Paygate, links that keep a list's filters (and its mode), path
//! segments, opaque cursors and the days of a date filter.
//!
//! Policy: a code the catalogue does not know (Stripe adds statuses and reasons from time to
//! time) is shown as the code itself rather than hidden; a cursor that does not parse shows the
//! first page (it is only ever made by the pages themselves, so a bad one is an edited URL).

use base64::Engine as _;
use chrono::NaiveDate;

use paygate_db::Scope;

use crate::i18n::Lang;
use crate::page::mode_href;

/// Rows per page of a list.
pub const PAGE_SIZE: u64 = 50;

/// The text of the catalogue key `section.code` in `lang`, or `code` itself when the catalogue
/// has no such key.
pub fn label(lang: Lang, section: &str, code: &str) -> String {
    let key = format!("{section}.{code}");
    if Lang::En.has(&key) {
        lang.t(&key).to_owned()
    } else {
        code.to_owned()
    }
}

/// `s` as one URL path segment: every byte outside `A-Z a-z 0-9 - . _ ~` percent-encoded (ids
/// come from Stripe's payloads and are not ours to trust).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The link to an order's page in the mode of `scope` (the order's own).
pub fn order_href(scope: Scope, id: &str) -> String {
    mode_href(&format!("/app/orders/{}", segment(id)), scope.mode())
}

/// `path?k=v&…` with the pairs whose value is not empty, urlencoded.
pub fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .copied()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    match serde_urlencoded::to_string(&kept) {
        Ok(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_owned(),
    }
}

/// An opaque cursor over the parts of a sort key.
pub fn encode_cursor(parts: &[String]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(parts.join("\n"))
}

/// The parts of a cursor made by [`encode_cursor`], when there are exactly `n`.
pub fn decode_cursor(cursor: &str, n: usize) -> Option<Vec<String>> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let parts: Vec<String> = text.split('\n').map(str::to_owned).collect();
    (parts.len() == n).then_some(parts)
}

/// A day of a date filter (`2026-11-23`, as `<input type="date">` sends it): `Ok(None)` when
/// empty, an error when it is not a date.
pub fn parse_day(s: &str) -> Result<Option<NaiveDate>, chrono::ParseError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Some)
}

/// The first second of `day`, UTC, in epoch seconds.
pub fn day_start_secs(day: NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp())
}

/// One choice of a filter's `<select>`.
#[derive(Clone, Debug)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The choices of `codes` (labels from `section`), `current` selected.
pub fn choices(lang: Lang, section: &str, codes: &[&str], current: &str) -> Vec<Choice> {
    codes
        .iter()
        .map(|c| Choice {
            value: (*c).to_owned(),
            label: label(lang, section, c),
            selected: *c == current,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use paygate_wire::EventType;

    #[test]
    fn segments_keep_stripe_ids_and_encode_the_rest() {
        assert_eq!(segment("evt_1AbC-9"), "evt_1AbC-9");
        assert_eq!(segment("a/b?c d<"), "a%2Fb%3Fc%20d%3C");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn links_keep_only_filters_that_are_set() {
        assert_eq!(
            with_query("/app/events", &[("type", ""), ("status", "")]),
            "/app/events"
        );
        let charge_succeeded = EventType::ChargeSucceeded.as_str();
        assert_eq!(
            with_query(
                "/app/events",
                &[
                    ("mode", "live"),
                    ("type", charge_succeeded),
                    ("status", ""),
                    ("to", "2026-01-02")
                ]
            ),
            format!("/app/events?mode=live&type={charge_succeeded}&to=2026-01-02")
        );
    }

    #[test]
    fn order_links_name_the_orders_mode() {
        assert_eq!(
            order_href(Scope::new(1, paygate_db::Mode::Live), "ord_1"),
            "/app/orders/ord_1?mode=live"
        );
    }

    #[test]
    fn cursors_round_trip_and_refuse_other_shapes() {
        let c = encode_cursor(&["1".into(), "ord_x".into()]);
        assert_eq!(decode_cursor(&c, 2), Some(vec!["1".into(), "ord_x".into()]));
        assert_eq!(decode_cursor(&c, 3), None);
        assert_eq!(decode_cursor("!!", 1), None);
    }

    #[test]
    fn days_parse_or_say_they_do_not() {
        assert_eq!(parse_day(""), Ok(None));
        assert!(parse_day("2026-13-01").is_err());
        assert!(parse_day("yesterday").is_err());
        let d = parse_day("1970-01-02").ok().flatten();
        assert_eq!(d.map(day_start_secs), Some(86_400));
    }

    #[test]
    fn unknown_codes_show_as_themselves() {
        assert_eq!(label(Lang::It, "no_such_section", "brand_new"), "brand_new");
    }
}
