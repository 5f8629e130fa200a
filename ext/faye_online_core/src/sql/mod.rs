//! A minimal SQL connection over MySQL/MariaDB, PostgreSQL and SQLite, just wide enough
//! for the durable store: parameterised statements, one optional row back,
//! and explicit transactions. Every value reaches the server as a bound
//! parameter, never spliced into the SQL text.

use crate::error::StoreError;
use std::time::Duration;

mod pg;

pub use pg::PgConn;

#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(i64),
    Text(String),
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}

impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(v.to_owned())
    }
}

impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Text(v)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    MySql,
    Postgres,
    Sqlite,
}

impl Dialect {
    /// An insert that skips rows a unique key already holds: `into` is
    /// what follows `INSERT INTO` (`table (columns) VALUES (…)`).
    pub fn insert_ignore(self, into: &str) -> String {
        match self {
            Dialect::MySql => format!("INSERT IGNORE INTO {into}"),
            Dialect::Postgres => format!("INSERT INTO {into} ON CONFLICT DO NOTHING"),
            Dialect::Sqlite => format!("INSERT OR IGNORE INTO {into}"),
        }
    }

    /// An insert that updates `updates` (columns) from the new row when
    /// the unique key `key` already holds one.
    pub fn upsert(self, into: &str, key: &str, updates: &[&str]) -> String {
        match self {
            Dialect::MySql => {
                let set: Vec<String> = updates
                    .iter()
                    .map(|c| format!("{c} = VALUES({c})"))
                    .collect();
                format!(
                    "INSERT INTO {into} ON DUPLICATE KEY UPDATE {}",
                    set.join(", ")
                )
            }
            Dialect::Postgres | Dialect::Sqlite => {
                let set: Vec<String> = updates
                    .iter()
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect();
                format!(
                    "INSERT INTO {into} ON CONFLICT({key}) DO UPDATE SET {}",
                    set.join(", ")
                )
            }
        }
    }

    /// Row lock for read-modify-write inside a transaction (SQLite locks the
    /// whole database at `BEGIN IMMEDIATE` instead).
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::MySql | Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }

    /// A column name as this database must be told it. The migrations
    /// (ActiveRecord) quote every name, so PostgreSQL keeps the old gem's
    /// mixed-case `clientId` as written and folds it to lower case unless
    /// it is quoted; MySQL and SQLite compare names without case.
    pub fn column(self, name: &str) -> String {
        match self {
            Dialect::Postgres if name.bytes().any(|b| b.is_ascii_uppercase()) => {
                format!("\"{name}\"")
            }
            _ => name.to_owned(),
        }
    }
}

/// One row, each column as text (`None` for NULL).
pub type Row = Vec<Option<String>>;

pub trait SqlConn: Send {
    fn dialect(&self) -> Dialect;
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError>;
    fn first_row(&mut self, sql: &str, params: &[Param]) -> Result<Option<Row>, StoreError>;
    fn all_rows(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError>;
    fn begin(&mut self) -> Result<(), StoreError>;
    fn commit(&mut self) -> Result<(), StoreError>;
    fn rollback(&mut self);
}

/// Opens a connection from a `mysql://user:pass@host:port/db`,
/// `postgres://user:pass@host:port/db` (also `postgresql://`) or
/// `sqlite://path` (also `sqlite:path`) URL.
pub fn open(url: &str) -> Result<Box<dyn SqlConn>, StoreError> {
    if url.starts_with("mysql://") {
        Ok(Box::new(MySqlConn::open(url)?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(PgConn::open(url)?))
    } else if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Ok(Box::new(SqliteConn::open(path)?))
    } else {
        Err(StoreError::other(format!(
            "unsupported database URL {:?}: use mysql://…, postgres://… or sqlite://…",
            redact(url)
        )))
    }
}

/// The URL with any password replaced, for logs and errors: the one in
/// `user:password@`, and a `password=` in the query (PostgreSQL's form for
/// a Unix socket).
pub fn redact(url: &str) -> String {
    let url = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s && !url[s + 3..at].contains(['/', '?']) => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    };
    let Some((base, query)) = url.split_once('?') else {
        return url;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

pub struct MySqlConn {
    conn: mysql::Conn,
}

impl MySqlConn {
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let opts =
            mysql::Opts::from_url(url).map_err(|e| StoreError::other(format!("mysql url: {e}")))?;
        let opts = mysql::OptsBuilder::from_opts(opts)
            .tcp_connect_timeout(Some(Duration::from_secs(3)))
            .read_timeout(Some(Duration::from_secs(10)))
            .write_timeout(Some(Duration::from_secs(10)))
            .init(vec!["SET NAMES utf8mb4", "SET time_zone = '+00:00'"]);
        Ok(Self {
            conn: mysql::Conn::new(opts)?,
        })
    }
}

fn mysql_params(params: &[Param]) -> mysql::Params {
    if params.is_empty() {
        return mysql::Params::Empty;
    }
    mysql::Params::Positional(
        params
            .iter()
            .map(|p| match p {
                Param::Int(i) => mysql::Value::Int(*i),
                Param::Text(s) => mysql::Value::Bytes(s.as_bytes().to_vec()),
            })
            .collect(),
    )
}

fn mysql_text(v: &mysql::Value) -> Option<String> {
    match v {
        mysql::Value::NULL => None,
        mysql::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        mysql::Value::Int(i) => Some(i.to_string()),
        mysql::Value::UInt(u) => Some(u.to_string()),
        mysql::Value::Date(y, mo, d, h, mi, s, _) => {
            Some(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"))
        }
        other => Some(other.as_sql(true)),
    }
}

impl SqlConn for MySqlConn {
    fn dialect(&self) -> Dialect {
        Dialect::MySql
    }

    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        use mysql::prelude::Queryable;
        self.conn.exec_drop(sql, mysql_params(params))?;
        Ok(self.conn.affected_rows())
    }

    fn first_row(&mut self, sql: &str, params: &[Param]) -> Result<Option<Row>, StoreError> {
        use mysql::prelude::Queryable;
        let row: Option<mysql::Row> = self.conn.exec_first(sql, mysql_params(params))?;
        Ok(row.map(|r| r.unwrap().iter().map(mysql_text).collect()))
    }

    fn all_rows(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        use mysql::prelude::Queryable;
        let rows: Vec<mysql::Row> = self.conn.exec(sql, mysql_params(params))?;
        Ok(rows
            .into_iter()
            .map(|r| r.unwrap().iter().map(mysql_text).collect())
            .collect())
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        use mysql::prelude::Queryable;
        Ok(self.conn.query_drop("START TRANSACTION")?)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        use mysql::prelude::Queryable;
        Ok(self.conn.query_drop("COMMIT")?)
    }

    fn rollback(&mut self) {
        use mysql::prelude::Queryable;
        let _ = self.conn.query_drop("ROLLBACK");
    }
}

pub struct SqliteConn {
    conn: rusqlite::Connection,
}

impl SqliteConn {
    pub fn open(path: &str) -> Result<Self, StoreError> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        Ok(Self { conn })
    }
}

impl SqliteConn {
    /// Up to `limit` rows, each column as text.
    fn query_rows(
        &mut self,
        sql: &str,
        params: &[Param],
        limit: usize,
    ) -> Result<Vec<Row>, StoreError> {
        use rusqlite::types::ValueRef;
        let mut stmt = self.conn.prepare_cached(sql)?;
        let n = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(sqlite_params(params)))?;
        let mut all = Vec::new();
        while all.len() < limit {
            let Some(row) = rows.next()? else {
                break;
            };
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                out.push(match row.get_ref(i)? {
                    ValueRef::Null => None,
                    ValueRef::Integer(v) => Some(v.to_string()),
                    ValueRef::Real(v) => Some(v.to_string()),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Some(String::from_utf8_lossy(t).into_owned())
                    }
                });
            }
            all.push(out);
        }
        Ok(all)
    }
}

fn sqlite_params(params: &[Param]) -> Vec<rusqlite::types::Value> {
    params
        .iter()
        .map(|p| match p {
            Param::Int(i) => rusqlite::types::Value::Integer(*i),
            Param::Text(s) => rusqlite::types::Value::Text(s.clone()),
        })
        .collect()
}

impl SqlConn for SqliteConn {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        Ok(stmt.execute(rusqlite::params_from_iter(sqlite_params(params)))? as u64)
    }

    fn first_row(&mut self, sql: &str, params: &[Param]) -> Result<Option<Row>, StoreError> {
        Ok(self.query_rows(sql, params, 1)?.pop())
    }

    fn all_rows(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        self.query_rows(sql, params, usize::MAX)
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch("BEGIN IMMEDIATE")?)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch("COMMIT")?)
    }

    fn rollback(&mut self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("mysql://root:secret@db:3306/x"),
            "mysql://root:***@db:3306/x"
        );
        assert_eq!(redact("mysql://root@db/x"), "mysql://root@db/x");
        assert_eq!(
            redact("postgresql://app:pw@db/x?sslmode=disable"),
            "postgresql://app:***@db/x?sslmode=disable"
        );
        assert_eq!(
            redact("postgresql:///x?host=%2Frun%2Fpg&user=app&password=p%40ss&port=5433"),
            "postgresql:///x?host=%2Frun%2Fpg&user=app&password=***&port=5433"
        );
        assert_eq!(
            redact("postgresql:///x?host=/run/pg&user=a@b"),
            "postgresql:///x?host=/run/pg&user=a@b"
        );
        assert_eq!(redact("sqlite://a.db"), "sqlite://a.db");
    }

    #[test]
    fn refuses_unknown_urls() {
        assert!(open("oracle://x").is_err());
        assert!(open("postgres://x:notaport/db").is_err());
    }
}
