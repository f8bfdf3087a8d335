//! Typed reads of client metadata fields, shared by dynamic registration (RFC 7591 §2) and client ID
//! metadata documents, which describe a client with the same fields. A field that is absent or
//! `null` is `None`; any other type is an error naming the field.

use serde_json::{Map, Value};

/// A string field.
pub fn string<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

/// An array-of-strings field.
pub fn string_list(obj: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, String> {
    let wrong = || format!("{key} must be an array of strings");
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(wrong))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_and_null_are_none_other_types_are_named() {
        let obj = serde_json::json!({
            "a": "x", "n": null, "list": ["p", "q"], "num": 1, "mixed": ["p", 2]
        });
        let obj = obj.as_object().unwrap();
        assert_eq!(string(obj, "a").unwrap(), Some("x"));
        assert_eq!(string(obj, "missing").unwrap(), None);
        assert_eq!(string(obj, "n").unwrap(), None);
        assert_eq!(string(obj, "num").unwrap_err(), "num must be a string");
        assert_eq!(
            string_list(obj, "list").unwrap(),
            Some(vec!["p".to_string(), "q".to_string()])
        );
        assert_eq!(string_list(obj, "n").unwrap(), None);
        for bad in ["mixed", "a", "num"] {
            assert_eq!(
                string_list(obj, bad).unwrap_err(),
                format!("{bad} must be an array of strings")
            );
        }
    }
}
