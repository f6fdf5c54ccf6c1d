//! A small key-value store, scoped by the host to the (user, plugin) pair of the
//! current call: whatever key a plugin passes, it cannot reach another user's or
//! another plugin's values.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::netra::plugin::kv;
use crate::{AgentError, ToolError};

/// Why a key-value operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvError {
    /// The plugin was not granted key-value access.
    Denied(String),
    /// The key or value is larger than the host allows.
    TooLarge(String),
    /// The store is not reachable right now; retrying later may succeed.
    Unavailable(String),
    /// A value could not be encoded as JSON, or the stored bytes were not JSON
    /// of the expected type (only from [`get_json`] and [`set_json`]).
    Encoding(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(message) => write!(f, "key-value access denied: {message}"),
            Self::TooLarge(message) => write!(f, "key or value too large: {message}"),
            Self::Unavailable(message) => write!(f, "key-value store unavailable: {message}"),
            Self::Encoding(message) => write!(f, "key-value JSON encoding: {message}"),
        }
    }
}

impl std::error::Error for KvError {}

impl From<kv::KvError> for KvError {
    fn from(error: kv::KvError) -> Self {
        match error {
            kv::KvError::Denied(message) => Self::Denied(message),
            kv::KvError::TooLarge(message) => Self::TooLarge(message),
            kv::KvError::Unavailable(message) => Self::Unavailable(message),
        }
    }
}

/// Lets a tool use `?` on the store: a denial stays a denial, anything else
/// fails the call.
impl From<KvError> for ToolError {
    fn from(error: KvError) -> Self {
        match error {
            KvError::Denied(_) => Self::Denied(error.to_string()),
            _ => Self::Failed(error.to_string()),
        }
    }
}

/// Lets an agent use `?` on the store: an unreachable store is worth retrying
/// later, anything else fails the run.
impl From<KvError> for AgentError {
    fn from(error: KvError) -> Self {
        match error {
            KvError::Unavailable(_) => Self::Unavailable(error.to_string()),
            _ => Self::Failed(error.to_string()),
        }
    }
}

/// Returns the value stored under `key`, or `None`.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    Ok(kv::get(key)?)
}

/// Stores `value` under `key`, replacing any earlier value.
pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
    Ok(kv::set(key, value)?)
}

/// Removes `key`; returns whether it existed.
pub fn delete(key: &str) -> Result<bool, KvError> {
    Ok(kv::delete(key)?)
}

/// Lists the keys that start with `prefix`, in lexicographic order.
pub fn list_keys(prefix: &str) -> Result<Vec<String>, KvError> {
    Ok(kv::list_keys(prefix)?)
}

/// Returns the JSON value stored under `key` decoded as `T`, or `None`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, KvError> {
    get(key)?.map(|bytes| decode(key, &bytes)).transpose()
}

/// Stores `value` as JSON under `key`, replacing any earlier value.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), KvError> {
    set(key, &encode(key, value)?)
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, KvError> {
    serde_json::from_slice(bytes)
        .map_err(|error| KvError::Encoding(format!("the value of `{key}`: {error}")))
}

fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>, KvError> {
    serde_json::to_vec(value)
        .map_err(|error| KvError::Encoding(format!("the value for `{key}`: {error}")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn host_errors_keep_their_case() {
        assert_eq!(
            KvError::from(kv::KvError::TooLarge("1 MiB".into())),
            KvError::TooLarge("1 MiB".into())
        );
        assert_eq!(
            KvError::from(kv::KvError::Denied("no grant".into())),
            KvError::Denied("no grant".into())
        );
    }

    #[test]
    fn errors_map_onto_tool_and_agent_errors() {
        assert_eq!(
            ToolError::from(KvError::Denied("no grant".into())),
            ToolError::denied("key-value access denied: no grant")
        );
        assert!(matches!(
            ToolError::from(KvError::Unavailable("down".into())),
            ToolError::Failed(_)
        ));
        assert!(matches!(
            AgentError::from(KvError::Unavailable("down".into())),
            AgentError::Unavailable(_)
        ));
        assert!(matches!(
            AgentError::from(KvError::TooLarge("big".into())),
            AgentError::Failed(_)
        ));
    }

    #[test]
    fn json_values_round_trip_and_bad_bytes_are_encoding_errors() {
        let bytes = encode("k", &vec![1, 2, 3]).expect("encodes");
        assert_eq!(decode::<Vec<u8>>("k", &bytes), Ok(vec![1, 2, 3]));
        assert!(matches!(
            decode::<Vec<u8>>("k", b"not json"),
            Err(KvError::Encoding(message)) if message.contains("`k`")
        ));
        let unencodable = BTreeMap::from([((1, 2), 3)]);
        assert!(matches!(
            encode("k", &unencodable),
            Err(KvError::Encoding(_))
        ));
    }
}
