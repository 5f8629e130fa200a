//! Set-up shared by the core's tests, examples and benchmarks: the tables
//! on a fresh SQLite file, the Redis and MySQL the tests may use, and
//! waiting for a condition with a deadline. Not part of the API.

use crate::outbox::Notification;
use crate::redis_store::RedisStore;
use crate::sql::{self, SqlConn};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The tables as the migrations in `db/migrate` create them, for the Rust
/// tests only (the migrations stay the one source of truth).
pub fn create_schema(conn: &mut dyn SqlConn) {
    let dialect = conn.dialect();
    let (id, text, long_text, datetime) = match dialect {
        sql::Dialect::MySql => (
            "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
            "TEXT",
            "MEDIUMTEXT",
            "DATETIME",
        ),
        sql::Dialect::Postgres => ("id BIGSERIAL PRIMARY KEY", "TEXT", "TEXT", "TIMESTAMP(6)"),
        sql::Dialect::Sqlite => (
            "id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL",
            "TEXT",
            "TEXT",
            "DATETIME",
        ),
    };
    let client_id = dialect.column("clientId");
    for ddl in [
        format!("CREATE TABLE faye_channels ({id}, name VARCHAR(255), created_at {datetime} NOT NULL, updated_at {datetime} NOT NULL)"),
        "CREATE UNIQUE INDEX index_faye_channels_on_name ON faye_channels (name)".to_string(),
        format!("CREATE TABLE faye_channel_online_lists ({id}, channel_id INTEGER DEFAULT 0, user_info_list {text}, lock_version INTEGER DEFAULT 0, created_at {datetime} NOT NULL, updated_at {datetime} NOT NULL)"),
        "CREATE UNIQUE INDEX index_faye_channel_online_lists_on_channel_id ON faye_channel_online_lists (channel_id)".to_string(),
        format!("CREATE TABLE faye_user_online_times ({id}, user_id INTEGER DEFAULT 0, online_times {long_text}, lock_version INTEGER DEFAULT 0, created_at {datetime} NOT NULL, updated_at {datetime} NOT NULL)"),
        "CREATE UNIQUE INDEX index_faye_user_online_times_on_user_id ON faye_user_online_times (user_id)".to_string(),
        format!("CREATE TABLE faye_user_login_logs (status SMALLINT, uid INTEGER, t {datetime}, channel_id INTEGER, {client_id} VARCHAR(255))"),
        format!("CREATE INDEX idx_client_status ON faye_user_login_logs ({client_id}, status)"),
        "CREATE INDEX idx_status_t ON faye_user_login_logs (status, t)".to_string(),
        format!("CREATE TABLE faye_online_user_names ({id}, uid BIGINT NOT NULL, uname VARCHAR(255) NOT NULL, created_at {datetime}, updated_at {datetime})"),
        "CREATE UNIQUE INDEX index_faye_online_user_names_on_uid ON faye_online_user_names (uid)".to_string(),
        format!("CREATE TABLE faye_online_failed_records ({id}, record {text} NOT NULL, error {text} NOT NULL, created_at {datetime}, updated_at {datetime})"),
        format!("CREATE TABLE faye_online_intervals ({id}, uid BIGINT NOT NULL, lesson VARCHAR(255) NOT NULL, client_id VARCHAR(64) NOT NULL, kind VARCHAR(16) NOT NULL, started_ms BIGINT NOT NULL, ended_ms BIGINT NOT NULL, ended_by VARCHAR(16) NOT NULL)"),
        "CREATE UNIQUE INDEX index_faye_online_intervals_once ON faye_online_intervals (client_id, kind, started_ms)".to_string(),
        "CREATE INDEX index_faye_online_intervals_on_lesson_uid ON faye_online_intervals (lesson, uid)".to_string(),
        format!("CREATE TABLE faye_online_lessons ({id}, lesson VARCHAR(255) NOT NULL, starts_ms BIGINT NOT NULL, ends_ms BIGINT NOT NULL, created_at {datetime}, updated_at {datetime})"),
        "CREATE UNIQUE INDEX index_faye_online_lessons_on_lesson ON faye_online_lessons (lesson)".to_string(),
    ] {
        conn.execute(&ddl, &[]).unwrap();
    }
}

/// Drops the tables of [`create_schema`] that exist, then creates them.
pub fn recreate_schema(conn: &mut dyn SqlConn) {
    for t in [
        "faye_channels",
        "faye_channel_online_lists",
        "faye_user_online_times",
        "faye_user_login_logs",
        "faye_online_user_names",
        "faye_online_failed_records",
        "faye_online_intervals",
        "faye_online_lessons",
    ] {
        conn.execute(&format!("DROP TABLE IF EXISTS {t}"), &[])
            .unwrap();
    }
    create_schema(conn);
}

/// A fresh SQLite database with the tables, in a directory of its own
/// that is removed when this is dropped.
pub struct TempSqlite {
    pub dir: PathBuf,
    pub url: String,
}

impl TempSqlite {
    /// `name` tells this database from the others of one test run.
    pub fn new(name: &str) -> TempSqlite {
        let dir = std::env::temp_dir().join(format!("fo_{name}_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("t.sqlite3").display());
        create_schema(sql::open(&url).unwrap().as_mut());
        TempSqlite { dir, url }
    }
}

impl Drop for TempSqlite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The Redis the tests use: `FAYE_ONLINE_TEST_REDIS_URL` (required to
/// answer when set), else a local server on the default port when one
/// answers; `None` (the test skips) when neither does.
pub fn test_redis_url() -> Option<String> {
    let required = std::env::var("FAYE_ONLINE_TEST_REDIS_URL").ok();
    let url = required
        .clone()
        .unwrap_or_else(|| "redis://127.0.0.1:6379/15".into());
    let probe = RedisStore::new(&url, "fo_probe").and_then(|r| r.listeners());
    match probe {
        Ok(_) => Some(url),
        Err(e) if required.is_some() => panic!("Redis at {url} is required: {e}"),
        Err(e) => {
            eprintln!("skipped: no Redis at {url} ({e})");
            None
        }
    }
}

/// The MySQL the tests use, from `FAYE_ONLINE_TEST_MYSQL_URL`; `None`
/// (the test skips) when it is not set.
pub fn test_mysql_url() -> Option<String> {
    let url = std::env::var("FAYE_ONLINE_TEST_MYSQL_URL").ok();
    if url.is_none() {
        eprintln!("skipped: FAYE_ONLINE_TEST_MYSQL_URL is not set");
    }
    url
}

/// A MySQL database of its own for one test, beside the one of
/// `FAYE_ONLINE_TEST_MYSQL_URL` (`<that name>_<name>`), created if missing
/// and with fresh tables; `None` (the test skips) when that is not set.
pub fn test_mysql_database(name: &str) -> Option<String> {
    let base = test_mysql_url()?;
    let (server, db) = base
        .rsplit_once('/')
        .expect("FAYE_ONLINE_TEST_MYSQL_URL ends with /<database>");
    let db = format!("{db}_{name}");
    let mut conn = sql::open(&format!("{server}/")).expect("the test MySQL server");
    conn.execute(
        &format!("CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4"),
        &[],
    )
    .unwrap();
    let url = format!("{server}/{db}");
    recreate_schema(sql::open(&url).unwrap().as_mut());
    Some(url)
}

/// The PostgreSQL the tests use, from `FAYE_ONLINE_TEST_POSTGRES_URL`;
/// `None` (the test skips) when it is not set.
pub fn test_postgres_url() -> Option<String> {
    let url = std::env::var("FAYE_ONLINE_TEST_POSTGRES_URL").ok();
    if url.is_none() {
        eprintln!("skipped: FAYE_ONLINE_TEST_POSTGRES_URL is not set");
    }
    url
}

/// A PostgreSQL database of its own for one test, beside the one of
/// `FAYE_ONLINE_TEST_POSTGRES_URL` (`<that name>_<name>`), created if
/// missing and with fresh tables; `None` (the test skips) when that is not
/// set.
pub fn test_postgres_database(name: &str) -> Option<String> {
    let base = test_postgres_url()?;
    let (server, db) = base
        .rsplit_once('/')
        .expect("FAYE_ONLINE_TEST_POSTGRES_URL ends with /<database>");
    let db = format!("{db}_{name}");
    let mut conn = sql::open(&format!("{server}/postgres")).expect("the test PostgreSQL server");
    let exists = conn
        .first_row(
            "SELECT 1 FROM pg_database WHERE datname = ?",
            &[db.as_str().into()],
        )
        .unwrap()
        .is_some();
    if !exists {
        conn.execute(
            &format!("CREATE DATABASE \"{db}\" ENCODING 'UTF8' TEMPLATE template0"),
            &[],
        )
        .unwrap();
    }
    let url = format!("{server}/{db}");
    recreate_schema(sql::open(&url).unwrap().as_mut());
    Some(url)
}

/// The text of each log line among `notifications`, in order.
pub fn log_lines(notifications: Vec<Notification>) -> Vec<String> {
    notifications
        .into_iter()
        .filter_map(|n| match n {
            Notification::Log { text, .. } => Some(text),
            _ => None,
        })
        .collect()
}

/// The log lines `drain` gives, gathered until `done` holds of them all;
/// panics showing them after `timeout`.
pub fn logs_until(
    timeout: Duration,
    mut drain: impl FnMut() -> Vec<Notification>,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut logs = Vec::new();
    while !done(&logs) {
        assert!(Instant::now() < deadline, "timed out; the logs: {logs:#?}");
        logs.extend(log_lines(drain()));
        std::thread::sleep(Duration::from_millis(10));
    }
    logs
}

/// Waits until `cond` holds, polling every 10 ms, and panics naming
/// `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
