//! The one way durations are written in configuration: humantime text (`"15m"`, `"500ms"`,
//! `"30d"`) or whole seconds. The core's settings and every backend's table use it; a plugin uses it
//! with `#[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Deserialises a [`Duration`] from humantime text or whole seconds; a bad text is an error that
/// quotes it.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Secs(s) => Ok(Duration::from_secs(s)),
        Raw::Text(t) => parse(&t).map_err(serde::de::Error::custom),
    }
}

/// Parses humantime text (surrounding spaces ignored).
pub fn parse(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        #[serde(deserialize_with = "deserialize")]
        d: Duration,
    }

    #[test]
    fn text_or_seconds() {
        let t: T = serde_json::from_value(serde_json::json!({"d": " 15m "})).unwrap();
        assert_eq!(t.d, Duration::from_secs(900));
        let t: T = serde_json::from_value(serde_json::json!({"d": 7})).unwrap();
        assert_eq!(t.d, Duration::from_secs(7));
        let err = serde_json::from_value::<T>(serde_json::json!({"d": "soon"}))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("soon"), "{err}");
    }
}
