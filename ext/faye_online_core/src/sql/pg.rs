//! PostgreSQL behind the same narrow [`SqlConn`](super::SqlConn) as MySQL
//! and SQLite.
//!
//! The durable store writes its statements once, with `?` placeholders and
//! every value as an integer or a text. PostgreSQL wants `$1, $2, …` and is
//! strict about types (an `i64` cannot be bound to an `integer` column), so
//! each statement is prepared first (and kept, up to a bound), and each
//! value is converted to the type the server says that placeholder has.
//! Results come back as text, as from the other databases, with timestamps
//! in the `YYYY-mm-dd HH:MM:SS` form the rest of the core reads.

use super::{Dialect, Param, Row, SqlConn};
use crate::error::StoreError;
use chrono::{DateTime, NaiveDateTime, Utc};
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls, Statement};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// Prepared statements kept per connection at most (the batched login
/// insert makes one per batch size).
const MAX_STATEMENTS: usize = 256;

pub struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl PgConn {
    /// Connects from a `postgres://` or `postgresql://` URL (libpq's URL
    /// form: `postgres://user:password@host:5432/database?sslmode=disable`;
    /// a Unix socket directory as `?host=/run/postgresql`).
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let mut config = postgres::Config::from_str(url)
            .map_err(|e| StoreError::other(format!("postgres url: {e}")))?;
        // As libpq does, the operating system's user name when the URL
        // names none (a Rails database.yml often leaves it out).
        if config.get_user().is_none() {
            let user = std::env::var("PGUSER")
                .or_else(|_| std::env::var("USER"))
                .unwrap_or_else(|_| "postgres".to_owned());
            config.user(&user);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(3));
        }
        // A server that vanishes without closing the connection (a cable
        // pulled, a machine gone) is given up on within seconds, not at
        // the kernel's default of many minutes.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3)
            .tcp_user_timeout(Duration::from_secs(10));
        if config.get_application_name().is_none() {
            config.application_name("faye-online");
        }
        let client = config.connect(NoTls)?;
        let mut conn = Self {
            client,
            statements: HashMap::new(),
        };
        // Rows keep UTC, as on MySQL; no statement waits for ever on a lock.
        conn.client
            .batch_execute("SET TIME ZONE 'UTC'; SET lock_timeout = '10s'")?;
        Ok(conn)
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(stmt) = self.statements.get(sql) {
            return Ok(stmt.clone());
        }
        if self.statements.len() >= MAX_STATEMENTS {
            self.statements.clear();
        }
        let stmt = self.client.prepare(&numbered_placeholders(sql))?;
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    fn rows(&mut self, sql: &str, params: &[Param]) -> Result<Vec<postgres::Row>, StoreError> {
        let stmt = self.statement(sql)?;
        let values = bind(&stmt, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        Ok(self.client.query(&stmt, &refs)?)
    }
}

/// `?` placeholders as `$1, $2, …`, leaving quoted text and names alone.
pub fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '?') => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
                continue;
            }
            (None, _) => {}
        }
        out.push(c);
    }
    out
}

type Value = Box<dyn ToSql + Sync>;

/// Each value converted to the type its placeholder has.
fn bind(stmt: &Statement, params: &[Param]) -> Result<Vec<Value>, StoreError> {
    let types = stmt.params();
    if types.len() != params.len() {
        return Err(StoreError::other(format!(
            "postgres: statement takes {} values, given {}",
            types.len(),
            params.len()
        )));
    }
    types.iter().zip(params).map(|(t, p)| value(t, p)).collect()
}

fn value(ty: &Type, param: &Param) -> Result<Value, StoreError> {
    let out_of_range =
        |v: i64| StoreError::Rejected(format!("postgres: {v} is out of range for {ty}"));
    Ok(match (param, ty) {
        (Param::Int(v), &Type::INT2) => Box::new(i16::try_from(*v).map_err(|_| out_of_range(*v))?),
        (Param::Int(v), &Type::INT4) => Box::new(i32::try_from(*v).map_err(|_| out_of_range(*v))?),
        (Param::Int(v), &Type::BOOL) => Box::new(*v != 0),
        (Param::Int(v), &Type::FLOAT8) => Box::new(*v as f64),
        (Param::Int(v), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR) => Box::new(v.to_string()),
        (Param::Int(v), _) => Box::new(*v),
        (Param::Text(s), &Type::TIMESTAMP) => Box::new(timestamp(s)?),
        (Param::Text(s), &Type::TIMESTAMPTZ) => Box::new(timestamp(s)?.and_utc()),
        (Param::Text(s), &Type::INT2 | &Type::INT4 | &Type::INT8) => {
            let v: i64 = s
                .parse()
                .map_err(|_| StoreError::Rejected(format!("postgres: {s:?} is not an integer")))?;
            return value(ty, &Param::Int(v));
        }
        (Param::Text(s), _) => Box::new(s.clone()),
    })
}

fn timestamp(s: &str) -> Result<NaiveDateTime, StoreError> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .map_err(|_| StoreError::Rejected(format!("postgres: {s:?} is not a timestamp")))
}

/// One column as text, as MySQL and SQLite give it.
fn text(row: &postgres::Row, i: usize) -> Result<Option<String>, StoreError> {
    let ty = row.columns()[i].type_();
    Ok(match *ty {
        Type::INT2 => row.try_get::<_, Option<i16>>(i)?.map(|v| v.to_string()),
        Type::INT4 => row.try_get::<_, Option<i32>>(i)?.map(|v| v.to_string()),
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(|v| v.to_string()),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(i)?.map(|v| v.to_string()),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(|v| v.to_string()),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map(|v| if v { "1" } else { "0" }.to_owned()),
        Type::TIMESTAMP => row
            .try_get::<_, Option<NaiveDateTime>>(i)?
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
        Type::TIMESTAMPTZ => row
            .try_get::<_, Option<DateTime<Utc>>>(i)?
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
        _ => row.try_get::<_, Option<String>>(i)?,
    })
}

fn texts(row: &postgres::Row) -> Result<Row, StoreError> {
    (0..row.len()).map(|i| text(row, i)).collect()
}

impl SqlConn for PgConn {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let stmt = self.statement(sql)?;
        let values = bind(&stmt, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
        Ok(self.client.execute(&stmt, &refs)?)
    }

    fn first_row(&mut self, sql: &str, params: &[Param]) -> Result<Option<Row>, StoreError> {
        self.rows(sql, params)?.first().map(texts).transpose()
    }

    fn all_rows(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        self.rows(sql, params)?.iter().map(texts).collect()
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        Ok(self.client.batch_execute("BEGIN")?)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(self.client.batch_execute("COMMIT")?)
    }

    fn rollback(&mut self) {
        let _ = self.client.batch_execute("ROLLBACK");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The URL forms faye-online's Ruby side hands over: a host and port,
    /// or a Unix socket directory as `?host=` (percent-escaped).
    #[test]
    fn reads_the_urls_the_ruby_side_writes() {
        use postgres::config::Host;
        let tcp = postgres::Config::from_str(
            "postgresql://app:p%40ss@db.internal:5433/school?sslmode=disable",
        )
        .unwrap();
        assert_eq!(tcp.get_hosts(), &[Host::Tcp("db.internal".into())]);
        assert_eq!(tcp.get_ports(), &[5433]);
        assert_eq!(tcp.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(tcp.get_dbname(), Some("school"));
        let socket =
            postgres::Config::from_str("postgresql:///school?host=%2Frun%2Fpg&port=5433").unwrap();
        assert_eq!(
            socket.get_hosts(),
            &[Host::Unix(std::path::PathBuf::from("/run/pg"))]
        );
        assert_eq!(socket.get_dbname(), Some("school"));
    }

    /// TLS is not built in: a URL that demands it is refused at once,
    /// rather than sending the password in the clear.
    #[test]
    fn refuses_a_url_that_requires_tls() {
        let e = PgConn::open("postgresql://app:pw@127.0.0.1:5432/school?sslmode=require")
            .err()
            .expect("refused");
        assert!(e.to_string().contains("TLS"), "{e}");
    }

    #[test]
    fn numbers_placeholders_outside_quotes() {
        assert_eq!(
            numbered_placeholders("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
        assert_eq!(
            numbered_placeholders("SELECT '?', \"odd?name\" FROM t WHERE x = ?"),
            "SELECT '?', \"odd?name\" FROM t WHERE x = $1"
        );
    }
}
