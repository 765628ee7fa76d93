//! The request id: taken from a well-formed `X-Request-Id` (a proxy in
//! front may have set it) or made up, logged with the request line and
//! echoed in the response, so a client's report and the log line meet.

use http::{HeaderName, HeaderValue, Request, Response};

/// The header that carries the id both ways.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming id we adopt; a longer one is replaced, not truncated.
const MAX_LEN: usize = 64;

/// Whether a client's id is safe to log and echo: 1 to 64 of `A-Za-z0-9._:-`,
/// so it cannot forge log lines or fields.
pub fn is_well_formed(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The incoming id if it is well formed, else a fresh one.
pub fn of<B>(req: &Request<B>) -> String {
    req.headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_well_formed(id))
        .map_or_else(generate, str::to_string)
}

/// 128 random bits as 32 hex digits.
fn generate() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Sets the response's `X-Request-Id`.
pub fn echo<B>(resp: &mut Response<B>, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        resp.headers_mut().insert(HEADER.clone(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_forge_log_text_are_not_adopted() {
        assert!(is_well_formed("3f2c-a1.b_c:d"));
        for bad in ["", "a b", "a\"b", "a\nb", &"x".repeat(MAX_LEN + 1)] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
        assert_eq!(generate().len(), 32);
        assert!(is_well_formed(&generate()));
    }
}
