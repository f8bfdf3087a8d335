//! What a new account may be called and how short its password may be (`users add`,
//! `users passwd`).
//!
//! Passwords: at least `[users] min_password_length` characters (default 12), no composition rules
//! (NIST SP 800-63B §5.1.1.2: length, not character classes). Usernames: 1 to 64 characters, letters
//! and digits of any script and `.`, `_`, `-`, `@`, starting with a letter or digit: no white space,
//! control or invisible characters, so a name reads the same everywhere it is shown.

use anyhow::bail;

/// The longest username, in characters.
pub const MAX_USERNAME_CHARS: usize = 64;

/// Refuses a username outside the rule above, saying which rule.
pub fn check_username(name: &str) -> anyhow::Result<()> {
    let chars = name.chars().count();
    if chars == 0 {
        bail!("the username must not be empty");
    }
    if chars > MAX_USERNAME_CHARS {
        bail!("the username {name:?} is longer than {MAX_USERNAME_CHARS} characters");
    }
    if !name.chars().next().is_some_and(char::is_alphanumeric) {
        bail!("the username {name:?} must start with a letter or a digit");
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
    {
        bail!(
            "the username {name:?} holds {bad:?}: use letters, digits and . _ - @ only (no spaces)"
        );
    }
    Ok(())
}

/// Refuses a password shorter than `min` characters (naming the setting).
pub fn check_password(password: &str, min: usize) -> anyhow::Result<()> {
    if password.chars().count() < min {
        bail!(
            "the password is shorter than {min} characters (users.min_password_length); a \
             passphrase of a few words is easier to remember"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for good in [
            "alice",
            "a",
            "bob.smith",
            "b_2",
            "x-y",
            "ops@example.com",
            "Zoë",
            "用户",
        ] {
            assert!(check_username(good).is_ok(), "{good}");
        }
        let long = "a".repeat(65);
        for bad in [
            "",
            " alice",
            "al ice",
            "alice\n",
            ".alice",
            "-x",
            "a/b",
            "al\u{200b}ice",
            long.as_str(),
        ] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
        assert!(check_username(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn passwords() {
        assert!(check_password("correct horse", 12).is_ok());
        let err = check_password("short", 12).unwrap_err().to_string();
        assert!(
            err.contains("12") && err.contains("users.min_password_length"),
            "{err}"
        );
        // Characters, not bytes.
        assert!(check_password("ééééééééééé", 12).is_err());
        assert!(check_password("éééééééééééé", 12).is_ok());
    }
}
