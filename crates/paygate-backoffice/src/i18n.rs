//! Languages, the translation catalogue, and formatting of dates and amounts per language.
//!
//! Policy: every text a page shows comes from the catalogue, `frontend-templates/i18n/<lang>.toml`
//! (compiled in, parsed once). Keys are `section.name` (a TOML table and a key in it). A key
//! missing in Italian or German falls back to English, and one missing everywhere shows the key
//! itself; a unit test keeps the three files complete and every key used by a template or by the
//! code present. Placeholders are `{0}`, `{1}`: arguments are inserted before the page escapes
//! the whole text, so they can never inject markup.
//!
//! Dates are shown in UTC, saying so; amounts come in minor units as Stripe sends them and are
//! divided by the currency's exponent (zero-decimal currencies like JPY, three-decimal ones like
//! KWD).

use std::collections::HashMap;
use std::sync::LazyLock;

/// A language of the back office.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lang {
    #[default]
    En,
    It,
    De,
}

impl Lang {
    /// Every language, in the order the switch shows them.
    pub const ALL: [Lang; 3] = [Lang::En, Lang::It, Lang::De];

    /// `en`, `it` or `de`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::It => "it",
            Lang::De => "de",
        }
    }

    /// The language's own name, for the switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::It => "Italiano",
            Lang::De => "Deutsch",
        }
    }

    /// Parses a code (`it`, `IT`, `it-CH` …).
    pub fn parse(s: &str) -> Option<Self> {
        let primary = s.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "it" => Some(Lang::It),
            "de" => Some(Lang::De),
            _ => None,
        }
    }

    /// The preferred supported language of an `Accept-Language` header (quality values
    /// honoured), if any.
    pub fn from_accept_language(header: &str) -> Option<Self> {
        paygate_web::accept_language::preferred(header, &["en", "it", "de"]).and_then(Lang::parse)
    }

    fn index(self) -> usize {
        match self {
            Lang::En => 0,
            Lang::It => 1,
            Lang::De => 2,
        }
    }

    /// The text of `key` (falling back to English, then to the key itself).
    pub fn t(self, key: &str) -> &str {
        let c: &'static Catalogue = &CATALOGUE;
        match c.tables[self.index()]
            .get(key)
            .or_else(|| c.tables[0].get(key))
        {
            Some(s) => s.as_str(),
            None => {
                tracing::warn!(key, "missing translation");
                key
            }
        }
    }

    /// The text of `key` with `{0}`, `{1}` … replaced by `args`.
    pub fn format(self, key: &str, args: &[&str]) -> String {
        let mut s = self.t(key).to_owned();
        for (i, a) in args.iter().enumerate() {
            s = s.replace(&format!("{{{i}}}"), a);
        }
        s
    }

    /// Whether the catalogue has `key` in this language (no fallback).
    pub fn has(self, key: &str) -> bool {
        CATALOGUE.tables[self.index()].contains_key(key)
    }

    /// A date and time (epoch milliseconds), in UTC, the way this language writes it:
    /// `2026-11-23 14:05 UTC`, `23/11/2026 14:05 UTC`, `23.11.2026 14:05 UTC`.
    pub fn datetime(self, ms: i64) -> String {
        let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
            return String::new();
        };
        let fmt = match self {
            Lang::En => "%Y-%m-%d %H:%M UTC",
            Lang::It => "%d/%m/%Y %H:%M UTC",
            Lang::De => "%d.%m.%Y %H:%M UTC",
        };
        t.format(fmt).to_string()
    }

    /// A date (epoch milliseconds, UTC): `2026-11-23`, `23/11/2026`, `23.11.2026`.
    pub fn date(self, ms: i64) -> String {
        let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
            return String::new();
        };
        let fmt = match self {
            Lang::En => "%Y-%m-%d",
            Lang::It => "%d/%m/%Y",
            Lang::De => "%d.%m.%Y",
        };
        t.format(fmt).to_string()
    }

    /// An amount in minor units of `currency` (ISO code, any case), the way this language
    /// writes it: 1999 EUR is `€19.99` in English and `19,99 €` in Italian and German.
    pub fn money(self, minor: i64, currency: &str) -> String {
        let code = currency.trim().to_ascii_uppercase();
        let exp = currency_exponent(&code);
        let (thousands, decimal) = match self {
            Lang::En => (',', '.'),
            Lang::It | Lang::De => ('.', ','),
        };
        let abs = minor.unsigned_abs();
        let unit = 10u64.pow(exp);
        let mut number = group(abs / unit, thousands);
        if exp > 0 {
            number.push(decimal);
            number.push_str(&format!("{:0width$}", abs % unit, width = exp as usize));
        }
        let sign = if minor < 0 { "-" } else { "" };
        match (self, currency_symbol(&code)) {
            (Lang::En, Some(sym)) => format!("{sign}{sym}{number}"),
            (Lang::En, None) => format!("{sign}{code} {number}"),
            (_, Some(sym)) => format!("{sign}{number} {sym}"),
            (_, None) => format!("{sign}{number} {code}"),
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Digits of an integer in groups of three.
fn group(mut n: u64, sep: char) -> String {
    let mut groups = Vec::new();
    loop {
        if n < 1000 {
            groups.push(n.to_string());
            break;
        }
        groups.push(format!("{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join(&sep.to_string())
}

/// Decimal places of a currency's minor unit, as Stripe counts them.
pub fn currency_exponent(code: &str) -> u32 {
    const ZERO: &[&str] = &[
        "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
        "XAF", "XOF", "XPF",
    ];
    const THREE: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];
    let code = code.to_ascii_uppercase();
    if ZERO.contains(&code.as_str()) {
        0
    } else if THREE.contains(&code.as_str()) {
        3
    } else {
        2
    }
}

fn currency_symbol(code: &str) -> Option<&'static str> {
    match code {
        "EUR" => Some("€"),
        "USD" => Some("$"),
        "GBP" => Some("£"),
        "JPY" => Some("¥"),
        _ => None,
    }
}

struct Catalogue {
    tables: [HashMap<String, String>; 3],
}

const SOURCES: [(&str, &str); 3] = [
    (
        "en",
        include_str!("../../../frontend-templates/i18n/en.toml"),
    ),
    (
        "it",
        include_str!("../../../frontend-templates/i18n/it.toml"),
    ),
    (
        "de",
        include_str!("../../../frontend-templates/i18n/de.toml"),
    ),
];

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| Catalogue {
    tables: SOURCES.map(|(lang, src)| match parse_catalogue(src) {
        Ok(t) => t,
        Err(e) => {
            // The files are compiled in and checked by a unit test: this cannot happen in a
            // build that passed its tests; show keys rather than fail every page.
            tracing::error!(lang, error = %e, "the translation catalogue does not parse");
            HashMap::new()
        }
    }),
});

/// Flattens a catalogue file into `section.key` → text.
fn parse_catalogue(src: &str) -> Result<HashMap<String, String>, toml::de::Error> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut HashMap<String, String>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                toml::Value::String(s) => {
                    out.insert(key, s.clone());
                }
                // Only texts belong in the catalogue.
                other => {
                    out.insert(key, format!("{other:?}"));
                }
            }
        }
    }
    let table: toml::Table = toml::from_str(src)?;
    let mut out = HashMap::new();
    walk("", &table, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    #[test]
    fn amounts_by_language_and_currency() {
        assert_eq!(Lang::It.money(1999, "eur"), "19,99 €");
        assert_eq!(Lang::De.money(1999, "EUR"), "19,99 €");
        assert_eq!(Lang::En.money(1999, "eur"), "€19.99");
        assert_eq!(Lang::En.money(123_456_789, "usd"), "$1,234,567.89");
        assert_eq!(Lang::De.money(123_456_789, "usd"), "1.234.567,89 $");
        assert_eq!(Lang::It.money(5, "eur"), "0,05 €");
        assert_eq!(Lang::En.money(-1999, "gbp"), "-£19.99");
        assert_eq!(Lang::It.money(-1999, "eur"), "-19,99 €");
        // Zero-decimal: 1000 JPY is a thousand yen.
        assert_eq!(Lang::En.money(1000, "jpy"), "¥1,000");
        assert_eq!(Lang::It.money(1000, "jpy"), "1.000 ¥");
        // Three decimals, and a currency without a symbol.
        assert_eq!(Lang::En.money(1500, "kwd"), "KWD 1.500");
        assert_eq!(Lang::De.money(1500, "kwd"), "1,500 KWD");
        assert_eq!(Lang::En.money(250_000, "chf"), "CHF 2,500.00");
        assert_eq!(Lang::It.money(0, "chf"), "0,00 CHF");
        assert_eq!(currency_exponent("bif"), 0);
        assert_eq!(currency_exponent("TND"), 3);
        assert_eq!(currency_exponent("sek"), 2);
    }

    #[test]
    fn dates_by_language_in_utc() {
        let ms = chrono::DateTime::parse_from_rfc3339("2026-11-23T14:05:59Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(Lang::En.datetime(ms), "2026-11-23 14:05 UTC");
        assert_eq!(Lang::It.datetime(ms), "23/11/2026 14:05 UTC");
        assert_eq!(Lang::De.datetime(ms), "23.11.2026 14:05 UTC");
        assert_eq!(Lang::De.date(ms), "23.11.2026");
        assert_eq!(Lang::It.date(ms), "23/11/2026");
        assert_eq!(Lang::En.date(ms), "2026-11-23");
    }

    #[test]
    fn accept_language_honours_quality_and_order() {
        assert_eq!(Lang::from_accept_language("it-IT,it;q=0.9"), Some(Lang::It));
        assert_eq!(
            Lang::from_accept_language("fr-FR, de;q=0.8, en;q=0.5"),
            Some(Lang::De)
        );
        assert_eq!(
            Lang::from_accept_language("en;q=0.4, de-CH;q=0.9"),
            Some(Lang::De)
        );
        assert_eq!(Lang::from_accept_language("it;q=0, en"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("fr, es"), None);
        assert_eq!(Lang::from_accept_language(""), None);
        assert_eq!(Lang::parse("DE"), Some(Lang::De));
        assert_eq!(Lang::parse("xx"), None);
    }

    #[test]
    fn texts_fall_back_and_fill_placeholders() {
        assert_eq!(Lang::En.t("no.such.key"), "no.such.key");
        assert_eq!(Lang::It.t("common.app_name"), "Paygate");
        assert_eq!(
            Lang::En.format("invitation.intro", &["a@b.example"]),
            "You were invited to Paygate as a@b.example. Choose a password to sign in."
        );
    }

    /// Every catalogue parses and has the same keys as the English one.
    #[test]
    fn catalogues_are_complete() {
        let en = parse_catalogue(SOURCES[0].1).unwrap();
        for (lang, src) in &SOURCES[1..] {
            let other = parse_catalogue(src).unwrap();
            let mut missing: Vec<_> = en.keys().filter(|k| !other.contains_key(*k)).collect();
            let mut extra: Vec<_> = other.keys().filter(|k| !en.contains_key(*k)).collect();
            missing.sort();
            extra.sort();
            assert!(missing.is_empty(), "{lang}.toml lacks {missing:?}");
            assert!(
                extra.is_empty(),
                "{lang}.toml has keys en.toml lacks: {extra:?}"
            );
        }
    }

    /// Every key the templates and the code name (`"section.key"` literals whose section is
    /// one of the catalogue's) exists.
    #[test]
    fn every_key_used_exists() {
        let en = parse_catalogue(SOURCES[0].1).unwrap();
        let sections: std::collections::HashSet<&str> =
            en.keys().filter_map(|k| k.split('.').next()).collect();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        collect(&root.join("src"), "rs", &mut files);
        collect(
            &root.join("../../frontend-templates/backoffice"),
            "html",
            &mut files,
        );
        assert!(files.len() > 3, "{files:?}");
        let mut missing = Vec::new();
        for f in &files {
            // Comments (the examples of the docs) are not code.
            let text: String = std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for lit in text.split('"').skip(1).step_by(2) {
                let Some((section, rest)) = lit.split_once('.') else {
                    continue;
                };
                let looks_like_key = sections.contains(section)
                    && !rest.is_empty()
                    && lit
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._".contains(c));
                if looks_like_key && !en.contains_key(lit) && lit != "no.such.key" {
                    missing.push(format!("{}: {lit}", f.display()));
                }
            }
        }
        assert!(missing.is_empty(), "keys missing in en.toml: {missing:#?}");
    }

    /// The forbidden variants of `frontend-templates/i18n/glossary.toml` for a language.
    fn forbidden_terms(glossary: &toml::Table, lang: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (concept, entry) in glossary {
            let Some(list) = entry
                .get("forbidden")
                .and_then(|f| f.get(lang))
                .and_then(|l| l.as_array())
            else {
                continue;
            };
            for v in list {
                out.push((concept.clone(), v.as_str().unwrap().to_owned()));
            }
        }
        out
    }

    /// One term per concept and language: no catalogue value, and no translated guide, uses a
    /// variant the glossary forbids.
    #[test]
    fn catalogues_follow_the_glossary() {
        let glossary: toml::Table = toml::from_str(include_str!(
            "../../../frontend-templates/i18n/glossary.toml"
        ))
        .unwrap();
        for concept in glossary.values() {
            for lang in ["en", "it", "de"] {
                assert!(concept.get(lang).is_some(), "{concept:?} lacks {lang}");
            }
        }
        assert!(
            !forbidden_terms(&glossary, "de").is_empty(),
            "the glossary names forbidden variants"
        );
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut found = Vec::new();
        for (lang, src) in &SOURCES {
            let forbidden = forbidden_terms(&glossary, lang);
            let catalogue = parse_catalogue(src).unwrap();
            let mut keys: Vec<_> = catalogue.keys().collect();
            keys.sort();
            for key in keys {
                for (concept, variant) in &forbidden {
                    if catalogue[key].contains(variant.as_str()) {
                        found.push(format!("{lang}.toml {key}: {variant:?} ({concept})"));
                    }
                }
            }
            for guide in ["merchant-guide", "operator-guide"] {
                let path = root.join(format!("../../docs/{guide}.{lang}.md"));
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                for (n, line) in text.lines().enumerate() {
                    for (concept, variant) in &forbidden {
                        if line.contains(variant.as_str()) {
                            found.push(format!(
                                "docs/{guide}.{lang}.md:{}: {variant:?} ({concept})",
                                n + 1
                            ));
                        }
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "variants the glossary forbids: {found:#?}"
        );
        // The check itself bites.
        let de = forbidden_terms(&glossary, "de");
        assert!(
            de.iter()
                .any(|(_, v)| "Das Unternehmen".contains(v.as_str()))
        );
    }

    /// Every `<select>` of the templates has an id and a `<label for>` naming it (or an
    /// `aria-label`): a screen reader announces what the choice is about.
    #[test]
    fn every_select_has_a_label() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        collect(&root.join("../../frontend-templates"), "html", &mut files);
        let mut unlabelled = Vec::new();
        let mut selects = 0;
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            for part in text.split("<select").skip(1) {
                selects += 1;
                let tag = part.split('>').next().unwrap_or_default();
                if tag.contains("aria-label") {
                    continue;
                }
                let labelled = tag
                    .split("id=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .is_some_and(|id| text.contains(&format!("for=\"{id}\"")));
                if !labelled {
                    unlabelled.push(format!("{}: <select{tag}>", f.display()));
                }
            }
        }
        assert!(selects > 5, "the templates were found");
        assert!(
            unlabelled.is_empty(),
            "selects without a label: {unlabelled:#?}"
        );
    }

    fn collect(dir: &std::path::Path, ext: &str, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                collect(&p, ext, out);
            } else if p.extension().is_some_and(|e| e == ext) {
                out.push(p);
            }
        }
    }
}
