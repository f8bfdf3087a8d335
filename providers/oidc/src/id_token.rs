//! ID-token validation (OpenID Connect Core 1.0 §3.1.3.7): signature with a key from the upstream's
//! JWKS, `iss`, `aud`, `exp` (and `iat`, `nbf`), `nonce`, `azp`.
//!
//! Only asymmetric algorithms are accepted (never `none` or HMAC: we do not share a key with the
//! upstream for this), and the key's own `alg`, when it names one, must be the token's.

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

/// Why an ID token is refused: the sentence shown on the error page and logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(pub String);

fn reject(msg: impl Into<String>) -> Rejection {
    Rejection(msg.into())
}

/// What a valid ID token must be.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub leeway_secs: u64,
}

const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The token's header algorithm and key id, or why it is unusable.
pub fn header(token: &str) -> Result<(Algorithm, Option<String>), Rejection> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| reject("the identity provider's ID token is malformed"))?;
    if !ACCEPTED.contains(&header.alg) {
        return Err(reject(format!(
            "the identity provider's ID token uses the algorithm {:?}, which is not accepted",
            header.alg
        )));
    }
    Ok((header.alg, header.kid))
}

/// The signing key for `kid` in `set`: by `kid`, or the only signature key when the token names
/// none.
pub fn find_key<'a>(set: &'a JwkSet, kid: Option<&str>) -> Option<&'a Jwk> {
    let signing = |k: &&Jwk| {
        !matches!(
            k.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        )
    };
    match kid {
        Some(kid) => set
            .keys
            .iter()
            .filter(signing)
            .find(|k| k.common.key_id.as_deref() == Some(kid)),
        None => {
            let mut keys = set.keys.iter().filter(signing);
            match (keys.next(), keys.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        }
    }
}

fn key_algorithm_matches(jwk: &Jwk, alg: Algorithm) -> bool {
    let Some(named) = jwk.common.key_algorithm else {
        return true;
    };
    let named = match named {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return false,
    };
    named == alg
}

/// Validates `token` with `jwk` and returns its claims.
pub fn validate(
    token: &str,
    alg: Algorithm,
    jwk: &Jwk,
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, Rejection> {
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) || !key_algorithm_matches(jwk, alg)
    {
        return Err(reject(
            "the identity provider's ID token is signed with a key not meant for its algorithm",
        ));
    }
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|_| reject("the identity provider publishes a signing key we cannot read"))?;
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(&[expected.client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    validation.leeway = expected.leeway_secs;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    let data =
        jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
            reject(match e.kind() {
                ErrorKind::InvalidSignature => {
                    "the identity provider's ID token has a signature that does not verify"
                }
                ErrorKind::ExpiredSignature => "the identity provider's ID token has expired",
                ErrorKind::ImmatureSignature => "the identity provider's ID token is not valid yet",
                ErrorKind::InvalidAudience => {
                    "the identity provider's ID token was issued to another client (aud)"
                }
                ErrorKind::InvalidIssuer => {
                    "the identity provider's ID token was issued by another issuer (iss)"
                }
                ErrorKind::MissingRequiredClaim(_) => {
                    "the identity provider's ID token lacks a required claim (exp, iat, iss or aud)"
                }
                _ => "the identity provider's ID token is invalid",
            })
        })?;
    let claims = data.claims;
    // OIDC Core §3.1.3.7 item 11: the nonce we sent, exactly.
    let nonce_ok = claims
        .get("nonce")
        .and_then(Value::as_str)
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(expected.nonce.as_bytes())));
    if !nonce_ok {
        return Err(reject(
            "the identity provider's ID token does not carry this sign-in's nonce",
        ));
    }
    // Items 4 and 5: several audiences need an `azp`, and an `azp` must be us.
    let several_audiences = claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1);
    match claims.get("azp") {
        Some(Value::String(azp)) if azp == expected.client_id => {}
        None if !several_audiences => {}
        _ => {
            return Err(reject(
                "the identity provider's ID token was issued to another party (azp)",
            ));
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn set(keys: Value) -> JwkSet {
        serde_json::from_value(json!({ "keys": keys })).unwrap()
    }

    fn ec(kid: &str, alg: Option<&str>, use_: Option<&str>) -> Value {
        let mut k = json!({"kty": "EC", "crv": "P-256", "kid": kid,
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        if let Some(a) = alg {
            k["alg"] = json!(a);
        }
        if let Some(u) = use_ {
            k["use"] = json!(u);
        }
        k
    }

    #[test]
    fn keys_are_found_by_kid_or_as_the_only_signing_key() {
        let two = set(json!([ec("a", None, None), ec("b", None, Some("sig"))]));
        assert_eq!(
            find_key(&two, Some("b")).unwrap().common.key_id.as_deref(),
            Some("b")
        );
        assert!(find_key(&two, Some("c")).is_none());
        assert!(find_key(&two, None).is_none(), "ambiguous without a kid");
        let one = set(json!([ec("a", None, None), ec("enc", None, Some("enc"))]));
        assert_eq!(
            find_key(&one, None).unwrap().common.key_id.as_deref(),
            Some("a")
        );
        assert!(
            find_key(&one, Some("enc")).is_none(),
            "an encryption key never verifies"
        );
    }

    #[test]
    fn symmetric_and_unsigned_tokens_are_refused_before_any_key() {
        // {"alg":"HS256","typ":"JWT"} and {"alg":"none"}.
        let hs = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.c2ln";
        assert!(header(hs).unwrap_err().0.contains("not accepted"));
        let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
        assert!(header(none).is_err());
        let es = set(json!([ec("a", Some("ES256"), None)]));
        let key = &es.keys[0];
        assert!(key_algorithm_matches(key, Algorithm::ES256));
        assert!(!key_algorithm_matches(key, Algorithm::RS256));
    }
}
