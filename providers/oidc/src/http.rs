//! Small pieces of talking to an upstream over HTTP, shared by the OpenID Connect and the OAuth 2
//! upstreams.

use mcp_oauth_provider::ProviderResult;

use crate::discovery::unreachable;
use crate::settings::bad_metadata;

/// RFC 6749 §2.3.1: id and secret are form-encoded before they are joined for Basic.
pub fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// An error code from the upstream, shown only when it is plain: RFC 6749 §5.2 characters
/// (%x20-21 / %x23-5B / %x5D-7E), at most 64 of them; anything else reads "unknown error".
pub fn plain_code(code: Option<&str>) -> &str {
    match code {
        Some(c)
            if !c.is_empty()
                && c.len() <= 64
                && c.bytes()
                    .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\') =>
        {
            c
        }
        _ => "unknown error",
    }
}

/// A response body, at most `max` bytes (`max_response_bytes`); a larger one is an error naming
/// `what` and the setting.
pub async fn read_limited(
    mut resp: reqwest::Response,
    what: &str,
    max: usize,
) -> ProviderResult<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| unreachable(what, e))? {
        if body.len() + chunk.len() > max {
            return Err(bad_metadata(format!(
                "{what} from the upstream is larger than max_response_bytes ({max})"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_error_codes_are_shown() {
        assert_eq!(plain_code(Some("access_denied")), "access_denied");
        assert_eq!(
            plain_code(Some("temporarily unavailable")),
            "temporarily unavailable"
        );
        for odd in [
            None,
            Some(""),
            Some("a\"b"),
            Some("a\\b"),
            Some("é"),
            Some("a\nb"),
        ] {
            assert_eq!(plain_code(odd), "unknown error", "{odd:?}");
        }
        assert_eq!(plain_code(Some(&"x".repeat(65))), "unknown error");
        assert_eq!(form_encode("a b:&"), "a+b%3A%26");
    }
}
