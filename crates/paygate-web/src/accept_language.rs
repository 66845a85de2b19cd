//! The one reader of `Accept-Language`, for every page Paygate renders (the back office, the
//! shopper's landing page): the supported language the browser prefers most.
//!
//! Policy (RFC 9110 §12.5.4): each range carries a quality (`q`, 1 when absent); `q=0` means
//! "not this one"; the highest quality wins and, among equals, the first listed. A range names a
//! language by its primary subtag (`it-IT` is `it`; `*` names none of ours in particular).

/// The entry of `supported` (lowercase primary subtags, e.g. `["en", "it", "de"]`) the header
/// prefers most, or `None` when it accepts none of them.
pub fn preferred<'a>(header: &str, supported: &[&'a str]) -> Option<&'a str> {
    let mut best: Option<(f32, usize, &'a str)> = None;
    for (pos, part) in header.split(',').enumerate() {
        let mut pieces = part.split(';');
        let tag = pieces.next().unwrap_or("").trim();
        let primary = tag.split(['-', '_']).next().unwrap_or("");
        let Some(lang) = supported
            .iter()
            .copied()
            .find(|s| s.eq_ignore_ascii_case(primary))
        else {
            continue;
        };
        let q = pieces
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 || q.is_nan() {
            continue;
        }
        if best.is_none_or(|(bq, bpos, _)| q > bq || (q == bq && pos < bpos)) {
            best = Some((q, pos, lang));
        }
    }
    best.map(|(_, _, l)| l)
}

#[cfg(test)]
mod tests {
    use super::preferred;

    const OURS: &[&str] = &["en", "it", "de"];

    #[test]
    fn quality_then_order_decides() {
        assert_eq!(preferred("it-IT,it;q=0.9", OURS), Some("it"));
        assert_eq!(preferred("fr-FR, de;q=0.8, en;q=0.5", OURS), Some("de"));
        assert_eq!(preferred("en;q=0.4, de-CH;q=0.9", OURS), Some("de"));
        assert_eq!(preferred("it;q=0, en", OURS), Some("en"));
        assert_eq!(preferred("DE", OURS), Some("de"));
        assert_eq!(preferred("fr, es", OURS), None);
        assert_eq!(preferred("", OURS), None);
        assert_eq!(preferred("*", OURS), None);
    }
}
