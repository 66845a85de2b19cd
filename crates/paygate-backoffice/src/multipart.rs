//! `multipart/form-data` bodies: the one form that sends a file (the dispute workbench's
//! evidence upload). The guard reads the CSRF token from here ([`field`]) as it does from an
//! urlencoded body; the handler takes the parts ([`parse`]).
//!
//! Policy: the body is read whole, up to [`MAX_BODY`] (a 5 MB file and the form's fields), by
//! the guard for multipart requests only; anything malformed is "no parts" (the CSRF check then
//! fails, or the handler reports the missing file), never a panic.

/// The largest multipart body read (a 5 MB evidence file with room for the other fields).
pub const MAX_BODY: usize = 5 * 1024 * 1024 + 64 * 1024;

/// One part of a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The `name` of its `Content-Disposition`.
    pub name: String,
    /// The `filename`, for a file.
    pub filename: Option<String>,
    /// Its `Content-Type`, if it says one.
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// Whether a `Content-Type` is `multipart/form-data`.
pub fn is_multipart(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// The `boundary` parameter of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Option<String> {
    if !is_multipart(content_type) {
        return None;
    }
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// A parameter (`name="x"`) of a `Content-Disposition` value.
fn disposition_param(value: &str, param: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(param)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The parts of `body`, or `None` when it is not a well-formed `multipart/form-data` body of
/// `content_type`.
pub fn parse(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let b = boundary(content_type)?;
    let delim = format!("--{b}").into_bytes();
    let next_delim = format!("\r\n--{b}").into_bytes();
    let mut pos = find(body, &delim, 0)? + delim.len();
    let mut parts = Vec::new();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            return Some(parts);
        }
        if body.get(pos..pos + 2) != Some(b"\r\n") {
            return None;
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos)?;
        let head = std::str::from_utf8(&body[pos..head_end]).ok()?;
        let (mut name, mut filename, mut ctype) = (None, None, None);
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':')?;
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = disposition_param(v, "name");
                filename = disposition_param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                ctype = Some(v.trim().to_owned());
            }
        }
        let data_start = head_end + 4;
        let data_end = find(body, &next_delim, data_start)?;
        parts.push(Part {
            name: name?,
            filename,
            content_type: ctype,
            data: body[data_start..data_end].to_vec(),
        });
        pos = data_end + next_delim.len();
    }
}

/// The value of the text field `name` of a multipart body.
pub fn field(content_type: &str, body: &[u8], name: &str) -> Option<String> {
    parse(content_type, body)?
        .into_iter()
        .find(|p| p.name == name && p.filename.is_none())
        .and_then(|p| String::from_utf8(p.data).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    #[test]
    fn parses_fields_and_files() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"r.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n\r\n--XyZ--\r\n";
        let parts = parse(CT, body).expect("parses");
        assert_eq!(parts.len(), 2);
        assert_eq!(field(CT, body, "csrf").as_deref(), Some("tok"));
        assert_eq!(parts[1].filename.as_deref(), Some("r.pdf"));
        assert_eq!(parts[1].content_type.as_deref(), Some("application/pdf"));
        assert_eq!(parts[1].data, b"%PDF\r\n");
    }

    #[test]
    fn malformed_bodies_have_no_parts() {
        assert_eq!(parse(CT, b"garbage"), None);
        assert_eq!(parse(CT, b"--XyZ\r\nno header end"), None);
        assert_eq!(parse("multipart/form-data", b"--a--"), None);
        assert_eq!(
            field("application/x-www-form-urlencoded", b"csrf=x", "csrf"),
            None
        );
    }
}
