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

    /// The server cannot take this now; the client should try again soon.
    pub fn unavailable(text: impl Into<String>) -> Self {
        Self {
            code: 503,
            args: String::new(),
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(String),
    #[error("mysql: {0}")]
    MySql(String),
    #[error("postgres: {0}")]
    Postgres(String),
    /// The database rolled the transaction back to break a deadlock with
    /// another writer (or, on PostgreSQL, a serialization failure): trying
    /// again at once is right.
    #[error("{0}")]
    Deadlock(String),
    #[error("sqlite: {0}")]
    Sqlite(String),
    /// The database refused this data for good (a value too long for its
    /// column, a character its charset cannot hold): trying again cannot
    /// help, so the record is set aside.
    #[error("{0}")]
    Rejected(String),
    #[error("json: {0}")]
    Json(String),
    /// Anything else: a missing row, a bad URL, a thread that would not start.
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    pub fn other(text: impl Into<String>) -> Self {
        StoreError::Other(text.into())
    }

    pub fn is_deadlock(&self) -> bool {
        matches!(self, StoreError::Deadlock(_))
    }

    /// Whether trying again cannot help (see [`StoreError::Rejected`]).
    pub fn is_permanent(&self) -> bool {
        matches!(self, StoreError::Rejected(_))
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Redis(e.to_string())
    }
}

/// MySQL's `ER_LOCK_DEADLOCK`.
const MYSQL_DEADLOCK: u16 = 1213;

/// MySQL's errors about the data itself, which no retry can cure: bad
/// null (1048), value out of range (1264), data truncated (1265), no
/// default (1364), incorrect string value for the charset (1366), invalid
/// character string (1300), incorrect value (1292), data too long (1406).
const MYSQL_REJECTED: [u16; 8] = [1048, 1264, 1265, 1292, 1300, 1364, 1366, 1406];

impl From<mysql::Error> for StoreError {
    fn from(e: mysql::Error) -> Self {
        match &e {
            mysql::Error::MySqlError(server) if server.code == MYSQL_DEADLOCK => {
                StoreError::Deadlock(format!("mysql: {e}"))
            }
            mysql::Error::MySqlError(server) if MYSQL_REJECTED.contains(&server.code) => {
                StoreError::Rejected(format!("mysql: {e}"))
            }
            _ => StoreError::MySql(e.to_string()),
        }
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        use postgres::error::SqlState;
        // The server's own words (message, detail), not only "db error".
        let text = match e.as_db_error() {
            Some(db) => match db.detail() {
                Some(detail) => format!(
                    "postgres: {} ({}): {detail}",
                    db.message(),
                    db.code().code()
                ),
                None => format!("postgres: {} ({})", db.message(), db.code().code()),
            },
            None => format!("postgres: {e}"),
        };
        match e.code() {
            Some(code)
                if *code == SqlState::T_R_DEADLOCK_DETECTED
                    || *code == SqlState::T_R_SERIALIZATION_FAILURE =>
            {
                StoreError::Deadlock(text)
            }
            // Class 22 is "data exception" (a value too long, a character
            // the encoding cannot hold, a NUL in text, out of range); a
            // null where none may be is 23502.
            Some(code)
                if code.code().starts_with("22") || *code == SqlState::NOT_NULL_VIOLATION =>
            {
                StoreError::Rejected(text)
            }
            // A value the client cannot convert to or from its column's
            // type (a column changed to one the core does not write, such
            // as numeric): no retry can cure it.
            None if is_conversion(&e) => StoreError::Rejected(text),
            _ => StoreError::Postgres(text.trim_start_matches("postgres: ").to_owned()),
        }
    }
}

/// Whether a PostgreSQL client error is a value that could not be
/// converted (the crate's `ToSql` and `FromSql` kinds, told by their text:
/// the kinds are not public).
fn is_conversion(e: &postgres::Error) -> bool {
    let text = e.to_string();
    text.starts_with("error serializing parameter")
        || text.starts_with("error deserializing column")
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{ConstraintViolation, TooBig, TypeMismatch};
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.code, ConstraintViolation | TooBig | TypeMismatch) =>
            {
                StoreError::Rejected(format!("sqlite: {e}"))
            }
            _ => StoreError::Sqlite(e.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Json(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadlock_is_told_from_other_mysql_errors() {
        let server = |code: u16, message: &str| {
            mysql::Error::MySqlError(mysql::MySqlError {
                state: "40001".into(),
                code,
                message: message.into(),
            })
        };
        let deadlock = StoreError::from(server(1213, "Deadlock found when trying to get lock"));
        assert!(deadlock.is_deadlock());
        assert!(deadlock.to_string().starts_with("mysql: "));
        assert!(!StoreError::from(server(1406, "Data too long")).is_deadlock());
        assert!(!StoreError::other("Deadlock in the text only").is_deadlock());
    }

    #[test]
    fn data_the_database_refuses_is_told_from_a_database_away() {
        let server = |code: u16| {
            StoreError::from(mysql::Error::MySqlError(mysql::MySqlError {
                state: "22001".into(),
                code,
                message: "refused".into(),
            }))
        };
        for code in [1406, 1366] {
            assert!(server(code).is_permanent(), "{code}");
            assert!(server(code).to_string().starts_with("mysql: "));
        }
        // Missing tables, a lost connection, a lock wait: tried again.
        for code in [1146, 2013, 1205, 1213] {
            assert!(!server(code).is_permanent(), "{code}");
        }
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(!StoreError::from(mysql::Error::IoError(io)).is_permanent());
    }
}
