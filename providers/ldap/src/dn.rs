//! Putting a typed username into LDAP safely, and comparing DNs.
//!
//! - DN attribute values are escaped per RFC 4514 §2.4 (`"`, `+`, `,`, `;`, `<`, `=`, `>`, `\`, NUL,
//!   a leading space or `#`, a trailing space) with `ldap3::dn_escape`, which writes each as `\XX`.
//! - Filter assertion values are escaped per RFC 4515 §3 (`*`, `(`, `)`, `\`, NUL) with
//!   `ldap3::ldap_escape`, also as `\XX`.
//! - Templates are filled in one pass, so text a user typed is never read as a placeholder.
//! - Usernames are also checked before any escaping: non-empty, at most [`MAX_USERNAME_BYTES`], no
//!   control characters (NUL included), no leading or trailing white space (matching rules drop it,
//!   RFC 4518 §2.6.1, so " alice" would be alice), and nothing the directory would normalise away
//!   (fullwidth letters, ignorable code points, doubled or odd spaces: see [`acceptable_username`]). Escaping alone would be enough to keep a search narrow; the
//!   check keeps junk away from the directory and its logs.
//! - Group DNs are compared after [`normalize_dn`] (attribute types and the usual caseIgnoreMatch
//!   values compare without regard to case, RFC 4517 §4.2.11; escapes and spaces around separators
//!   have several spellings, RFC 4514 §2.4 / §3).

use std::borrow::Cow;

/// The longest username passed to the directory.
pub const MAX_USERNAME_BYTES: usize = 256;

/// True when `username` may be sent to the directory (after escaping).
///
/// Besides the checks above, the name must already be in the form the directory's matching rules
/// would bring it to, apart from letter case: NFKC, no default-ignorable code points (soft hyphen,
/// zero-width characters, variation selectors), and no white space but single U+0020 spaces. A
/// directory prepares both sides of a comparison that way (RFC 4518 §2.2 map, §2.3 NFKC, §2.6.1
/// insignificant space), so `ａlice` (fullwidth) or `al\u{AD}ice` would otherwise bind as `alice`
/// under a name the server counts and logs as someone else. Refusing such names keeps "who signed
/// in" and "whose sign-in was limited" the same user; the server's throttle also counts them under
/// `alice`.
pub fn acceptable_username(username: &str) -> bool {
    use icu_normalizer::ComposingNormalizer;
    use icu_properties::CodePointSetData;
    use icu_properties::props::{DefaultIgnorableCodePoint, WhiteSpace};

    let ignorable = CodePointSetData::new::<DefaultIgnorableCodePoint>();
    let space = CodePointSetData::new::<WhiteSpace>();
    !username.is_empty()
        && username.len() <= MAX_USERNAME_BYTES
        && !username.chars().any(char::is_control)
        && username.trim() == username
        && !username.contains("  ")
        && !username
            .chars()
            .any(|c| ignorable.contains(c) || (space.contains(c) && c != ' '))
        && ComposingNormalizer::new_nfkc().is_normalized(username)
}

/// `value` escaped for use as an attribute value inside a DN (RFC 4514 §2.4).
pub fn escape_dn_value(value: &str) -> Cow<'_, str> {
    ldap3::dn_escape(value)
}

/// `value` escaped for use as an assertion value inside a search filter (RFC 4515 §3).
pub fn escape_filter_value(value: &str) -> Cow<'_, str> {
    ldap3::ldap_escape(value)
}

/// Replaces each `{name}` of `template` whose name is in `values` with its (already escaped) value,
/// in one left-to-right pass: a value that itself contains `{dn}` is not expanded again. Unknown
/// `{…}` text is kept as it is.
pub fn fill_template(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    'scan: while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        for (name, value) in values {
            let placeholder_len = name.len() + 2;
            if after.len() >= placeholder_len
                && after[1..].starts_with(name)
                && after[1 + name.len()..].starts_with('}')
            {
                out.push_str(value);
                rest = &after[placeholder_len..];
                continue 'scan;
            }
        }
        out.push('{');
        rest = &after[1..];
    }
    out.push_str(rest);
    out
}

/// True when `template` contains `{name}`.
pub fn has_placeholder(template: &str, name: &str) -> bool {
    template.contains(&format!("{{{name}}}"))
}

/// A canonical spelling of a DN for comparison: escapes decoded and re-escaped the one way
/// [`escape_dn_value`] does, spaces around `,` `+` `=` removed, ASCII letters lowercased.
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut attr_type = String::new();
    // The value's bytes with escapes decoded (a `\XX` hexpair may be one byte of a UTF-8 sequence).
    let mut value: Vec<u8> = Vec::new();
    let mut in_value = false;
    let flush = |out: &mut String, attr_type: &mut String, value: &mut Vec<u8>| {
        out.push_str(&attr_type.trim().to_ascii_lowercase());
        out.push('=');
        let text = String::from_utf8_lossy(value);
        out.push_str(&escape_dn_value(text.trim_matches(' ')).to_ascii_lowercase());
        attr_type.clear();
        value.clear();
    };
    let bytes = dn.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !in_value {
            if b == b'=' {
                in_value = true;
            } else {
                attr_type.push(char::from(b));
            }
            i += 1;
            continue;
        }
        match b {
            b'\\' => {
                let pair = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok());
                match pair.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(decoded) => {
                        value.push(decoded);
                        i += 3;
                    }
                    None => {
                        // `\` followed by the special character itself (RFC 4514 §2.4).
                        if let Some(&next) = bytes.get(i + 1) {
                            value.push(next);
                        }
                        i += 2;
                    }
                }
            }
            b',' | b'+' => {
                flush(&mut out, &mut attr_type, &mut value);
                out.push(char::from(b));
                in_value = false;
                i += 1;
            }
            _ => {
                value.push(b);
                i += 1;
            }
        }
    }
    if in_value {
        flush(&mut out, &mut attr_type, &mut value);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dn_values_are_escaped_per_rfc_4514() {
        assert_eq!(escape_dn_value("alice"), "alice");
        assert_eq!(escape_dn_value("smith,j"), "smith\\2cj");
        assert_eq!(escape_dn_value("a=b+c"), "a\\3db\\2bc");
        assert_eq!(escape_dn_value("x\\y"), "x\\5cy");
        assert_eq!(escape_dn_value("\"<;>\""), "\\22\\3c\\3b\\3e\\22");
        assert_eq!(escape_dn_value("#lead"), "\\23lead");
        assert_eq!(escape_dn_value(" both "), "\\20both\\20");
        assert_eq!(escape_dn_value("nul\0"), "nul\\00");
        assert_eq!(
            escape_dn_value("a#b c"),
            "a#b c",
            "# and space only at the ends"
        );
        assert_eq!(
            escape_dn_value("jürgen"),
            "jürgen",
            "UTF-8 is allowed as is"
        );
    }

    #[test]
    fn filter_values_are_escaped_per_rfc_4515() {
        assert_eq!(escape_filter_value("alice"), "alice");
        assert_eq!(escape_filter_value("*"), "\\2a");
        assert_eq!(escape_filter_value(")(uid=*"), "\\29\\28uid=\\2a");
        assert_eq!(escape_filter_value("a\\b"), "a\\5cb");
        assert_eq!(escape_filter_value("nul\0"), "nul\\00");
        assert_eq!(escape_filter_value("smith,j"), "smith,j");
    }

    #[test]
    fn usernames_are_checked_before_escaping() {
        assert!(acceptable_username("alice"));
        assert!(acceptable_username(")(uid=*"), "escaped, not refused");
        assert!(acceptable_username(&"a".repeat(MAX_USERNAME_BYTES)));
        assert!(!acceptable_username(&"a".repeat(MAX_USERNAME_BYTES + 1)));
        assert!(!acceptable_username(""));
        assert!(!acceptable_username("al\0ice"));
        assert!(!acceptable_username("alice\n"));
        assert!(
            acceptable_username("Alice"),
            "case is the directory's to ignore"
        );
        assert!(acceptable_username("smith, j"));
        assert!(acceptable_username("jos\u{e9}"), "NFC é is NFKC too");
        for look_alike in [
            "\u{ff41}lice",
            "al\u{00AD}ice",
            "al\u{200B}ice",
            "alice\u{FE0F}",
            "\u{1D41A}lice",
            "\u{FB01}ona",
            "jose\u{301}",
            "smith,  j",
            "smith,\u{00A0}j",
            "smith,\u{3000}j",
        ] {
            assert!(!acceptable_username(look_alike), "{look_alike:?}");
        }
        assert!(!acceptable_username("al\u{7f}ice"));
        assert!(!acceptable_username(" alice"));
        assert!(!acceptable_username("alice\u{a0}"));
        assert!(acceptable_username("alice smith"));
    }

    #[test]
    fn templates_are_filled_in_one_pass() {
        let t = "(&(member={dn})(uid={username}))";
        assert_eq!(
            fill_template(t, &[("username", "{dn}"), ("dn", "uid=a,dc=x")]),
            "(&(member=uid=a,dc=x)(uid={dn}))"
        );
        assert_eq!(
            fill_template("uid={username},ou={other}", &[("username", "a")]),
            "uid=a,ou={other}"
        );
        assert_eq!(fill_template("{", &[("username", "a")]), "{");
        assert_eq!(
            fill_template("{username", &[("username", "a")]),
            "{username"
        );
        assert!(has_placeholder("uid={username},dc=x", "username"));
        assert!(!has_placeholder("uid=x,dc=x", "username"));
    }

    #[test]
    fn dns_compare_in_canonical_form() {
        let canonical = normalize_dn("cn=mcp-admins,ou=groups,dc=example,dc=org");
        assert_eq!(canonical, "cn=mcp-admins,ou=groups,dc=example,dc=org");
        for spelling in [
            "CN=MCP-Admins,OU=Groups,DC=Example,DC=Org",
            "cn = mcp-admins , ou=groups,dc=example, dc=org",
            "cn=mcp\\2dadmins,ou=groups,dc=example,dc=org",
        ] {
            assert_eq!(normalize_dn(spelling), canonical, "{spelling}");
        }
        assert_eq!(
            normalize_dn("uid=smith\\,j,ou=people"),
            normalize_dn("uid=smith\\2Cj,ou=people")
        );
        assert_eq!(
            normalize_dn("uid=smith\\,j,ou=people"),
            "uid=smith\\2cj,ou=people"
        );
        assert_eq!(
            normalize_dn("cn=J\\C3\\BCrgen,dc=x"),
            normalize_dn("cn=jürgen,dc=x")
        );
        assert_ne!(
            normalize_dn("cn=mcp-admins,ou=groups,dc=example,dc=org"),
            normalize_dn("cn=mcp-admins2,ou=groups,dc=example,dc=org")
        );
        assert_eq!(normalize_dn("cn=a\\+1,dc=x"), "cn=a\\2b1,dc=x");
        assert_ne!(
            normalize_dn("cn=a\\,ou=b,dc=x"),
            normalize_dn("cn=a,ou=b,dc=x"),
            "an escaped comma is part of the value"
        );
    }
}
