//! Request parameters of form bodies and query strings.
//!
//! RFC 6749 §3.1: parameters sent without a value are treated as omitted, and request and response
//! parameters MUST NOT be included more than once. Malformed input becomes `invalid_request` in the
//! endpoint's own JSON format, never a framework's plain-text rejection.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;

use crate::error::OAuthError;

/// Largest form body an OAuth endpoint accepts.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// Decoded parameters, in order, duplicates kept so they can be refused.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(raw)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The single value of `name`; empty values count as absent; a repeated parameter is an error.
    pub fn get(&self, name: &str) -> Result<Option<&str>, DuplicateParam> {
        let mut found = None;
        for (k, v) in &self.0 {
            if k == name && !v.is_empty() {
                if found.is_some() {
                    return Err(DuplicateParam(name.to_string()));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    }

    /// Every parameter, in order, duplicates and empty values included.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The first parameter (with a value) that appears more than once.
    pub fn first_duplicate(&self) -> Option<&str> {
        let mut seen = std::collections::HashSet::new();
        self.0
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| k.as_str())
            .find(|k| !seen.insert(*k))
    }

    /// Like [`Params::get`], answering `invalid_request` for duplicates.
    pub fn single(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        self.get(name).map_err(OAuthError::from)
    }

    /// Why these parameters are too large for `/authorize`, if they are: a `state` longer than
    /// `max_state`, any one name or value longer than `max_param`, or more than `max_total` bytes in
    /// all (names and values, decoded).
    pub fn oversize(&self, max_state: usize, max_param: usize, max_total: usize) -> Option<String> {
        let mut total = 0usize;
        for (k, v) in &self.0 {
            if k == "state" && v.len() > max_state {
                return Some(format!(
                    "The state parameter is longer than {max_state} bytes."
                ));
            }
            if k.len() > max_param {
                return Some(format!(
                    "A parameter name is longer than {max_param} bytes."
                ));
            }
            if v.len() > max_param {
                return Some(format!(
                    "The {k} parameter is longer than {max_param} bytes."
                ));
            }
            total += k.len() + v.len();
        }
        (total > max_total)
            .then(|| format!("The request parameters are longer than {max_total} bytes in all."))
    }

    /// A required parameter.
    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.single(name)?
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter: {name}")))
    }
}

/// A parameter that appeared more than once.
#[derive(Debug, Clone)]
pub struct DuplicateParam(pub String);

impl From<DuplicateParam> for OAuthError {
    fn from(d: DuplicateParam) -> Self {
        OAuthError::invalid_request(format!("parameter repeated: {}", d.0))
    }
}

/// Extractor for `application/x-www-form-urlencoded` bodies of JSON-speaking endpoints.
#[derive(Debug, Clone)]
pub struct FormParams(pub Params);

impl<S: Send + Sync> FromRequest<S> for FormParams {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_form(req.headers()) {
            return Err(OAuthError::invalid_request(
                "the request body must be application/x-www-form-urlencoded",
            ));
        }
        let body = read_body(req, state).await?;
        let params = Params::parse(&body);
        // RFC 6749 §3.1: no parameter may repeat; refuse before anything else is looked at.
        if let Some(dup) = params.first_duplicate() {
            return Err(DuplicateParam(dup.to_string()).into());
        }
        Ok(Self(params))
    }
}

/// True when the request declares a form body.
pub fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Reads a body of at most [`MAX_FORM_BYTES`].
pub async fn read_body<S: Send + Sync>(req: Request, _state: &S) -> Result<Bytes, OAuthError> {
    axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES)
        .await
        .map_err(|_| OAuthError::invalid_request("the request body is unreadable or too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_absent_and_duplicates_refused() {
        let p = Params::parse(b"a=1&b=&c=x%20y&d=1&d=2");
        assert_eq!(p.get("a").ok().flatten(), Some("1"));
        assert_eq!(p.get("b").ok().flatten(), None);
        assert_eq!(p.get("c").ok().flatten(), Some("x y"));
        assert!(p.get("d").is_err());
        assert!(p.required("zz").is_err());
    }

    #[test]
    fn oversize_names_the_rule_that_was_broken() {
        let p = Params::parse(b"state=abcd&scope=xyz12");
        assert_eq!(p.oversize(4, 5, 100), None);
        assert!(p.oversize(3, 5, 100).unwrap().contains("state parameter"));
        assert!(p.oversize(4, 4, 100).unwrap().contains("name"));
        let q = Params::parse(b"s=abcd&t=xyz12");
        assert!(q.oversize(5, 4, 100).unwrap().contains("The t parameter"));
        // Totals count names and values: 5+4+5+5 = 19.
        assert_eq!(p.oversize(4, 5, 19), None);
        assert!(p.oversize(4, 5, 18).unwrap().contains("in all"));
    }
}
