//! JSON columns: lists and objects are stored as JSON text, identically in both dialects.

use mcp_oauth_provider::{ProviderError, ProviderResult};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub fn to_json<T: Serialize + ?Sized>(value: &T) -> ProviderResult<String> {
    serde_json::to_string(value).map_err(|e| ProviderError::backend("encoding a JSON column", e))
}

pub fn from_json<T: DeserializeOwned>(column: &'static str, text: &str) -> ProviderResult<T> {
    serde_json::from_str(text)
        .map_err(|e| ProviderError::backend(format!("stored column {column} is corrupt"), e))
}
