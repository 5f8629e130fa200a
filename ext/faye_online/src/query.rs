//! `FayeOnline::Native::Query`: the read API, for a server's tracker (see
//! `Tracker#_query`) or for a process that runs no server (a Rails app).
//! Every call releases Ruby's global lock while it waits on Redis or SQL.

use crate::convert::{config_from, json_to_ruby, users_to_ruby};
use crate::errors::{configuration_error, store_error};
use crate::gvl::query;
use faye_online_core::Query;
use magnus::{Error, RArray, RHash, Ruby, Value};
use std::sync::Arc;

#[magnus::wrap(class = "FayeOnline::Native::Query", free_immediately, size)]
pub struct RbQuery(pub Arc<Query>);

impl RbQuery {
    pub fn new(ruby: &Ruby, config: RHash) -> Result<Self, Error> {
        let config = config_from(config).map_err(|e| configuration_error(ruby, e))?;
        Query::new(&config)
            .map(|q| RbQuery(Arc::new(q)))
            .map_err(|e| store_error(ruby, e))
    }

    /// `[{"uid" => 1, "uname" => "ann"}, …]`, sorted by uid.
    pub fn online_users(ruby: &Ruby, rb_self: &Self, room: String) -> Result<RArray, Error> {
        let users = query(ruby, || rb_self.0.online_users(&room))?;
        users_to_ruby(ruby, &users)
    }

    /// Seconds `uid` spent in `time`, counting a running session.
    pub fn online_time(ruby: &Ruby, rb_self: &Self, uid: u64, time: String) -> Result<i64, Error> {
        query(ruby, || rb_self.0.online_time(uid, &time))
    }

    /// `{"attended_ms" => …, "engaged_ms" => …}` from the interval ledger
    /// (clipped to [from_ms, to_ms) when both are given).
    pub fn lesson_time(
        ruby: &Ruby,
        rb_self: &Self,
        uid: u64,
        lesson: String,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Value, Error> {
        let window = from_ms.zip(to_ms);
        let time = query(ruby, || rb_self.0.lesson_time(uid, &lesson, window))?;
        json_to_ruby(ruby, &serde_json::to_value(time).unwrap_or_default())
    }

    /// Every user's time in a lesson (clipped to [from_ms, to_ms) when
    /// both are given), as hashes.
    pub fn lesson_times(
        ruby: &Ruby,
        rb_self: &Self,
        lesson: String,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Value, Error> {
        let window = from_ms.zip(to_ms);
        let rows = query(ruby, || rb_self.0.lesson_times(&lesson, window))?;
        json_to_ruby(ruby, &serde_json::to_value(rows).unwrap_or_default())
    }

    /// Every user's time in each of several lessons, by lesson.
    pub fn lessons_times(
        ruby: &Ruby,
        rb_self: &Self,
        lessons: Vec<String>,
    ) -> Result<Value, Error> {
        let rows = query(ruby, || rb_self.0.lessons_times(&lessons, None))?;
        json_to_ruby(ruby, &serde_json::to_value(rows).unwrap_or_default())
    }

    /// Sets a lesson's window (ms since the epoch).
    pub fn schedule(
        ruby: &Ruby,
        rb_self: &Self,
        lesson: String,
        starts_ms: i64,
        ends_ms: i64,
    ) -> Result<bool, Error> {
        query(ruby, || rb_self.0.schedule(&lesson, starts_ms, ends_ms))?;
        Ok(true)
    }

    /// A lesson's window as `{"lesson", "starts_ms", "ends_ms"}`, or nil.
    pub fn scheduled(ruby: &Ruby, rb_self: &Self, lesson: String) -> Result<Value, Error> {
        let found = query(ruby, || rb_self.0.scheduled(&lesson))?;
        json_to_ruby(ruby, &serde_json::to_value(found).unwrap_or_default())
    }

    /// The lessons whose window starts in [from_ms, to_ms).
    pub fn schedules(
        ruby: &Ruby,
        rb_self: &Self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Value, Error> {
        let found = query(ruby, || rb_self.0.schedules(from_ms, to_ms))?;
        json_to_ruby(ruby, &serde_json::to_value(found).unwrap_or_default())
    }

    /// The interval ledger's rows of a lesson, as hashes.
    pub fn intervals(
        ruby: &Ruby,
        rb_self: &Self,
        lesson: String,
        uid: Option<u64>,
    ) -> Result<Value, Error> {
        let rows = query(ruby, || rb_self.0.intervals(&lesson, uid))?;
        json_to_ruby(ruby, &serde_json::to_value(rows).unwrap_or_default())
    }

    /// `{"source" => …, "rooms" => […], "lessons" => […]}`; a lesson's
    /// users carry `started_ms`, an integer (ms since the epoch) or nil.
    pub fn status(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        let status = query(ruby, || rb_self.0.status())?;
        json_to_ruby(ruby, &status)
    }

    /// The records set aside: hashes with `id`, `record` (JSON text),
    /// `error` and `created_at`.
    pub fn failed_records(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        let failed = query(ruby, || rb_self.0.failed_records())?;
        let value = serde_json::to_value(failed).map_err(|e| store_error(ruby, e))?;
        json_to_ruby(ruby, &value)
    }

    /// Writes the records set aside again: `[written, still failing]`.
    pub fn replay_failed(ruby: &Ruby, rb_self: &Self) -> Result<(usize, usize), Error> {
        query(ruby, || rb_self.0.replay_failed())
    }

    /// The sessions of `uid` (nil: everyone) that overlap
    /// `[after_ms, before_ms)`: hashes with `client_id`, `uid`, `uname`,
    /// `lesson`, `joined_ms` and `left_ms` (nil while open).
    pub fn sessions(
        ruby: &Ruby,
        rb_self: &Self,
        uid: Option<u64>,
        after_ms: i64,
        before_ms: i64,
    ) -> Result<Value, Error> {
        let sessions = query(ruby, || rb_self.0.sessions(uid, after_ms, before_ms))?;
        let value = serde_json::to_value(sessions).map_err(|e| store_error(ruby, e))?;
        json_to_ruby(ruby, &value)
    }
}
