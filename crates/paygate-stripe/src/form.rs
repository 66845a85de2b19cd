//! Encoding of request parameters in Stripe's bracket notation.

use std::fmt::Write as _;

/// An ordered list of form parameters in Stripe's bracket notation.
///
/// Keys are written out in full, for example `line_items[0][price_data][currency]`,
/// `metadata[order_id]` or `expand[]`. [`FormBuilder::encode`] renders them as an
/// `application/x-www-form-urlencoded` string. The square brackets in keys stay
/// literal, as in Stripe's own libraries. Everything else that is not an unreserved
/// character is percent-encoded.
///
/// ```
/// use paygate_stripe::FormBuilder;
///
/// let mut form = FormBuilder::new();
/// form.push("line_items[0][quantity]", 2)
///     .push_opt("customer_email", None::<&str>)
///     .push("metadata[order_id]", "A 1&2");
/// assert_eq!(form.encode(), "line_items[0][quantity]=2&metadata[order_id]=A%201%262");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormBuilder {
    pairs: Vec<(String, String)>,
}

impl FormBuilder {
    /// Creates an empty form.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `key=value`.
    pub fn push(&mut self, key: impl Into<String>, value: impl ToString) -> &mut Self {
        self.pairs.push((key.into(), value.to_string()));
        self
    }

    /// Appends `key=value` when `value` is `Some`. Does nothing for `None`.
    pub fn push_opt<V: ToString>(&mut self, key: impl Into<String>, value: Option<V>) -> &mut Self {
        if let Some(value) = value {
            self.push(key, value);
        }
        self
    }

    /// Appends `prefix[k]=v` for every entry of `map`, for example
    /// `metadata[order_id]=42`.
    pub fn push_map<I, K, V>(&mut self, prefix: &str, map: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: ToString,
    {
        for (k, v) in map {
            self.push(format!("{prefix}[{}]", k.as_ref()), v);
        }
        self
    }

    /// Appends `prefix[]=v` for every item, for example `expand[]=line_items`.
    pub fn push_list<I, V>(&mut self, prefix: &str, items: I) -> &mut Self
    where
        I: IntoIterator<Item = V>,
        V: ToString,
    {
        for v in items {
            self.push(format!("{prefix}[]"), v);
        }
        self
    }

    /// Returns `true` if the form has no parameters.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The parameters pushed so far, in order.
    #[must_use]
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Consumes the builder and returns the parameters.
    #[must_use]
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.pairs
    }

    /// Renders the parameters as an `application/x-www-form-urlencoded` string.
    /// Use it as a request body or as a URL query string without the leading `?`.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            percent_encode_into(&mut out, k, true);
            out.push('=');
            percent_encode_into(&mut out, v, false);
        }
        out
    }
}

impl From<FormBuilder> for Vec<(String, String)> {
    fn from(form: FormBuilder) -> Self {
        form.pairs
    }
}

/// Percent-encodes `s` so it can be one URL path segment, for example an object ID
/// in `/v1/checkout/sessions/{id}`.
pub(crate) fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    percent_encode_into(&mut out, s, false);
    out
}

fn percent_encode_into(out: &mut String, s: &str, keep_brackets: bool) {
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_brackets && matches!(b, b'[' | b']'));
        if keep {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_reserved_and_non_ascii_characters() {
        let mut form = FormBuilder::new();
        form.push("metadata[note]", "a+b=c/d é")
            .push_list("expand", ["line_items"]);
        assert_eq!(
            form.encode(),
            "metadata[note]=a%2Bb%3Dc%2Fd%20%C3%A9&expand[]=line_items"
        );
    }

    #[test]
    fn value_brackets_are_encoded() {
        let mut form = FormBuilder::new();
        form.push("k", "[x]");
        assert_eq!(form.encode(), "k=%5Bx%5D");
    }

    #[test]
    fn path_segments_cannot_escape() {
        assert_eq!(encode_path_segment("cs_1/../x?y"), "cs_1%2F..%2Fx%3Fy");
    }
}
