//! Reading an Apache htpasswd file and an Apache group file.
//!
//! Every error names the line, never the hash on it (a log line or an error page must never carry a
//! password hash).

use std::collections::{BTreeMap, BTreeSet};

/// A password hash in one of the schemes this plugin accepts.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// `$2y$`, `$2b$` or `$2a$` (what `htpasswd -B` writes).
    Bcrypt(String),
    /// A PHC string `$argon2id$v=19$m=…,t=…,p=…$salt$hash`.
    Argon2id(String),
}

impl std::fmt::Debug for PasswordHash {
    // Never prints the hash itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.scheme())
    }
}

impl PasswordHash {
    /// The scheme's name, for messages.
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Bcrypt(_) => "bcrypt",
            Self::Argon2id(_) => "argon2id",
        }
    }

    /// Checks `password` (blocking: run it on the server's hashing pool). A password longer than
    /// 72 bytes is compared on its first 72 bytes for bcrypt, as Apache does.
    pub fn verify(&self, password: &str) -> bool {
        use argon2::password_hash::PasswordVerifier;
        match self {
            Self::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
            Self::Argon2id(h) => match argon2::password_hash::phc::PasswordHash::new(h) {
                Ok(parsed) => argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
                Err(_) => false,
            },
        }
    }

    /// Parses the hash part of an htpasswd line; the error says which scheme was found and what to
    /// do instead, without repeating the hash.
    pub fn parse(text: &str) -> Result<Self, String> {
        const REHASH: &str = "re-create the entry with `htpasswd -B` (bcrypt) or an argon2id hash \
                              (`mcp-oauth users hash-password`)";
        if ["$2y$", "$2b$", "$2a$"].iter().any(|p| text.starts_with(p)) {
            return match text.parse::<bcrypt::HashParts>() {
                Ok(_) => Ok(Self::Bcrypt(text.to_string())),
                Err(_) => Err("a malformed bcrypt hash".into()),
            };
        }
        if text.starts_with("$argon2id$") {
            return match argon2::password_hash::phc::PasswordHash::new(text) {
                Ok(_) => Ok(Self::Argon2id(text.to_string())),
                Err(_) => Err("a malformed argon2id hash".into()),
            };
        }
        let scheme = if text.starts_with("$apr1$") {
            "an MD5 hash ($apr1$)"
        } else if text.starts_with("{SHA}") {
            "a SHA-1 hash ({SHA})"
        } else if text.starts_with("$1$") {
            "an MD5-crypt hash ($1$)"
        } else if text.starts_with("$5$") || text.starts_with("$6$") {
            "a SHA-crypt hash ($5$/$6$)"
        } else if text.starts_with("$argon2") {
            "an argon2 hash other than argon2id"
        } else if text.starts_with("$2x$") {
            "a bcrypt hash of the broken $2x$ variant"
        } else if text.len() == 13 && !text.starts_with('$') {
            "a crypt(3) DES hash"
        } else {
            "no hash this plugin knows (plain text?)"
        };
        Err(format!("{scheme} is not accepted; {REHASH}"))
    }
}

/// The users of one htpasswd file.
#[derive(Debug, Default, Clone)]
pub struct Users {
    pub entries: BTreeMap<String, PasswordHash>,
}

/// Parses an htpasswd file: `user:hash` per line, `#` comments and blank lines ignored.
pub fn parse_htpasswd(text: &str) -> Result<Users, String> {
    let mut entries = BTreeMap::new();
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err(format!("line {n}: expected `user:hash`"));
        };
        if user.is_empty() || user.trim() != user {
            return Err(format!(
                "line {n}: the username is empty or has spaces around it"
            ));
        }
        let hash = PasswordHash::parse(hash.trim()).map_err(|why| format!("line {n}: {why}"))?;
        if let Some(first) = first_line.get(user) {
            return Err(format!("line {n}: user {user:?} is also on line {first}"));
        }
        first_line.insert(user.to_string(), n);
        entries.insert(user.to_string(), hash);
    }
    Ok(Users { entries })
}

/// Parses an Apache group file: `group: user1 user2` per line (a group may span several lines).
/// Returns each user's groups, sorted.
pub fn parse_groups(text: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut by_user: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((group, members)) = line.split_once(':') else {
            return Err(format!("line {n}: expected `group: user1 user2`"));
        };
        let group = group.trim();
        if group.is_empty() || group.contains(char::is_whitespace) {
            return Err(format!(
                "line {n}: the group name is empty or has spaces in it"
            ));
        }
        for user in members.split_whitespace() {
            by_user
                .entry(user.to_string())
                .or_default()
                .insert(group.to_string());
        }
    }
    Ok(by_user
        .into_iter()
        .map(|(u, g)| (u, g.into_iter().collect()))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A bcrypt entry made now, at cost 4 (test speed).
    fn alice() -> String {
        bcrypt::hash("alice-pw", 4).unwrap()
    }

    #[test]
    fn accepts_bcrypt_and_argon2id_and_names_the_line_of_anything_else() {
        let argon = {
            use argon2::password_hash::PasswordHasher;
            argon2::Argon2::default()
                .hash_password(b"bob-pw")
                .unwrap()
                .to_string()
        };
        let alice_line = alice();
        let text = format!("# users\n\nalice:{alice_line}\r\nbob:{argon}\n");
        let users = parse_htpasswd(&text).unwrap();
        assert_eq!(users.entries.len(), 2);
        assert!(users.entries["alice"].verify("alice-pw"));
        assert!(!users.entries["alice"].verify("alice-pW"));
        assert!(users.entries["bob"].verify("bob-pw"));
        assert!(!users.entries["bob"].verify("alice-pw"));

        for (line, what) in [
            ("carol:$apr1$abcdefgh$0123456789abcdefghijkl", "MD5"),
            ("carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "SHA-1"),
            ("carol:abJnggxhB/yWI", "crypt(3)"),
            ("carol:$6$salt$hash", "SHA-crypt"),
            (
                "carol:$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
                "argon2id",
            ),
            ("carol:$2y$04$tooshort", "malformed bcrypt"),
            ("carol:secret", "plain text"),
            ("carol", "user:hash"),
            (":$2y$04$x", "username"),
        ] {
            let err = parse_htpasswd(&format!("alice:{}\n{line}\n", alice())).unwrap_err();
            assert!(err.starts_with("line 2: "), "{err}");
            assert!(err.contains(what), "{line}: {err}");
            let hash = line.split_once(':').map(|(_, h)| h).unwrap_or("");
            if hash.len() > 3 {
                assert!(!err.contains(hash), "the hash is never repeated: {err}");
            }
        }
        let err = parse_htpasswd(&format!("alice:{a}\nalice:{a}\n", a = alice())).unwrap_err();
        assert!(err.contains("line 2") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn a_hash_never_prints() {
        let h = PasswordHash::parse(&alice()).unwrap();
        assert_eq!(format!("{h:?}"), "bcrypt");
    }

    #[test]
    fn group_file_lines_and_repeats() {
        let g = parse_groups("# groups\nadmins: alice\nstaff: alice bob\nadmins: carol\n").unwrap();
        assert_eq!(g["alice"], ["admins", "staff"]);
        assert_eq!(g["bob"], ["staff"]);
        assert_eq!(g["carol"], ["admins"]);
        let err = parse_groups("admins: alice\nno colon here\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
    }
}
