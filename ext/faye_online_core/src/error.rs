//! Errors: the Bayeux error a client receives, and a store's failure.

use std::fmt;

/// An error sent back to a Bayeux client in `message["error"]`, in Faye's
/// `code:args:text` form, e.g. `400:auth.room_channel:must start with /`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BayeuxError {
    pub code: u16,
    pub args: String,
    pub text: String,
}

impl BayeuxError {
    pub fn bad_request(args: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            code: 400,
            args: args.into(),
            text: text.into(),
        }
    }

    pub fn forbidden(args: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            code: 403,
            args: args.into(),
            text: text.into(),
        }
    }

    pub fn internal(text: impl Into<String>) -> Self {
        Self {
            code: 500,
            args: String::new(),
            text: text.into(),
        }
    }
}

impl fmt::Display for BayeuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Faye's error grammar forbids ':' inside args and text.
        let args = self.args.replace(':', "_");
        let text = self.text.replace(':', " -");
        write!(f, "{}:{}:{}", self.code, args, text)
    }
}

/// A hot or durable store could not do what was asked (connection lost,
/// bad reply, SQL error). The caller retries; nothing is half-applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError(format!("redis: {e}"))
    }
}

impl From<mysql::Error> for StoreError {
    fn from(e: mysql::Error) -> Self {
        StoreError(format!("mysql: {e}"))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(format!("sqlite: {e}"))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError(format!("json: {e}"))
    }
}
