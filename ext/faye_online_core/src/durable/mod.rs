//! Durable records in SQL, in the old gem's four tables (and the names
//! table beside them), so that an app that ran the old gem keeps its data
//! and its reports:
//!
//! - `faye_channels` (name → id),
//! - `faye_channel_online_lists` (channel_id, user_info_list),
//! - `faye_user_online_times` (user_id, online_times),
//! - `faye_user_login_logs` (status 1/0, uid, t, channel_id, clientId).
//!
//! What the JSON columns hold, and how a record edits them, is the
//! [`ledger`](crate::ledger)'s; this module reads and writes the rows.
//! Records are applied in batches, each batch in one transaction with the
//! rows it edits locked, so several processes writing the same list or the
//! same user never lose each other's updates.

use crate::auth::User;
use crate::clock;
use crate::error::StoreError;
use crate::ledger::{
    edit_list, edit_times, parse_times, parse_uid_list, seconds_in, Interval, IntervalKind,
    Memberships, Record,
};
use crate::sql::{self, Param, SqlConn};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A table whose rows hold one JSON document each, found by a key column.
#[derive(Clone, Copy)]
struct JsonRow {
    table: &'static str,
    key_column: &'static str,
    column: &'static str,
    empty: &'static str,
}

impl JsonRow {
    const ONLINE_LIST: JsonRow = JsonRow {
        table: "faye_channel_online_lists",
        key_column: "channel_id",
        column: "user_info_list",
        empty: "[]",
    };
    const ONLINE_TIMES: JsonRow = JsonRow {
        table: "faye_user_online_times",
        key_column: "user_id",
        column: "online_times",
        empty: "{}",
    };
}

/// Channel ids, and JSON rows known to exist, cached at most.
const MAX_CACHED: usize = 4096;

/// A durable store behind a URL, connected on first use and reconnected
/// after a failure.
pub struct DurableStore {
    url: String,
    conn: Option<Box<dyn SqlConn>>,
    channel_ids: HashMap<String, i64>,
    /// JSON rows known to exist (table, key): made before a batch's
    /// transaction, so that inside it every row is only locked, never
    /// created (two transactions creating rows in one gap deadlock).
    rows_made: HashSet<(&'static str, i64)>,
}

impl DurableStore {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            conn: None,
            channel_ids: HashMap::new(),
            rows_made: HashSet::new(),
        }
    }

    pub fn url_for_logs(&self) -> String {
        sql::redact(&self.url)
    }

    fn conn(&mut self) -> Result<&mut Box<dyn SqlConn>, StoreError> {
        if self.conn.is_none() {
            self.conn = Some(sql::open(&self.url)?);
        }
        Ok(self.conn.as_mut().expect("connection just opened"))
    }

    /// Drops the connection (rolling back what it was doing) and what was
    /// cached on it; the next call connects again.
    pub fn reset(&mut self) {
        if let Some(c) = self.conn.as_mut() {
            c.rollback();
        }
        self.conn = None;
        self.channel_ids.clear();
        self.rows_made.clear();
    }

    /// Runs `f`; on failure drops the connection (a new one is opened next
    /// time) and the cached channel ids (a rolled-back insert may hold one).
    fn guarded<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = f(self);
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// Applies one record, atomically.
    pub fn apply(&mut self, record: &Record) -> Result<(), StoreError> {
        self.apply_batch(std::slice::from_ref(record), None)
    }

    /// Applies `records` in one transaction: all of them or none.
    ///
    /// Each room's list and each user's times are rewritten once, however
    /// many of the records touch them, with the row locked. Rows are locked
    /// in one order (names by uid, lists by room, times by uid), the same
    /// in every process, so that two processes' batches never deadlock.
    ///
    /// Processes write their records each in their own order: the leave
    /// that one process recorded may reach SQL after the join that another
    /// process recorded later. So a room or timer record only says *which*
    /// row to bring up to date; with the row locked, the membership is read
    /// from `live`, the hot store that all processes share, and the last
    /// writer of a row always writes what the hot store holds after every
    /// change to it. Without `live`, or when it cannot be read, the
    /// records' own changes are applied, in order. Login rows and credited
    /// time come out the same in any order.
    pub fn apply_batch(
        &mut self,
        records: &[Record],
        live: Option<&dyn Memberships>,
    ) -> Result<(), StoreError> {
        let mut names: BTreeMap<u64, &str> = BTreeMap::new();
        let mut rooms: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
        let mut timers: BTreeMap<u64, Vec<&Record>> = BTreeMap::new();
        let mut logins: Vec<&Record> = Vec::new();
        for record in records {
            match record {
                Record::Login { .. } | Record::Interval { .. } => logins.push(record),
                Record::RoomJoin { room, uid, uname } => {
                    names.insert(*uid, uname);
                    rooms.entry(room).or_default().push(record);
                }
                Record::RoomLeave { room, .. } | Record::RoomPrune { room, .. } => {
                    rooms.entry(room).or_default().push(record)
                }
                Record::TimerStart { uid, .. } | Record::TimerStop { uid, .. } => {
                    timers.entry(*uid).or_default().push(record)
                }
            }
        }
        // Two writers creating the same missing row at once can still
        // deadlock; the database then rolls one back, and it tries again.
        let mut tries = 0;
        loop {
            tries += 1;
            match self.apply_batch_once(&names, &rooms, &timers, &logins, live) {
                Err(e) if tries < 5 && e.is_deadlock() => continue,
                result => return result,
            }
        }
    }

    fn apply_batch_once(
        &mut self,
        names: &BTreeMap<u64, &str>,
        rooms: &BTreeMap<&str, Vec<&Record>>,
        timers: &BTreeMap<u64, Vec<&Record>>,
        logins: &[&Record],
        live: Option<&dyn Memberships>,
    ) -> Result<(), StoreError> {
        self.guarded(|s| {
            // Channel ids are found (or made) before the transaction, each
            // committed at once: they are cached, and never locked for long.
            for login in logins {
                if let Record::Login { time, .. } = login {
                    s.channel_id(time)?;
                }
            }
            for room in rooms.keys() {
                let channel_id = s.channel_id(room)?;
                s.make_row(JsonRow::ONLINE_LIST, channel_id)?;
            }
            for uid in timers.keys() {
                s.make_row(JsonRow::ONLINE_TIMES, *uid as i64)?;
            }
            s.conn()?.begin()?;
            for (uid, uname) in names {
                s.remember_name(*uid, uname)?;
            }
            for (room, records) in rooms {
                s.edit_online_list(room, |list| {
                    for record in records {
                        edit_list(list, room, record, live);
                    }
                })?;
            }
            for (uid, records) in timers {
                s.edit_online_times(*uid, |times| {
                    for record in records {
                        edit_times(times, record, live);
                    }
                })?;
            }
            s.insert_logins(logins)?;
            s.insert_intervals(logins)?;
            s.conn()?.commit()
        })
    }

    /// Creates a JSON row if it is missing, outside any transaction.
    fn make_row(&mut self, row: JsonRow, key: i64) -> Result<(), StoreError> {
        if self.rows_made.contains(&(row.table, key)) {
            return Ok(());
        }
        if self.rows_made.len() >= MAX_CACHED {
            self.rows_made.clear();
        }
        let now = clock::sql_datetime(clock::now_ms());
        let conn = self.conn()?;
        let insert = conn.dialect().insert_ignore(&format!(
            "{} ({}, {}, lock_version, created_at, updated_at) VALUES (?, ?, 0, ?, ?)",
            row.table, row.key_column, row.column
        ));
        conn.execute(
            &insert,
            &[
                Param::Int(key),
                row.empty.into(),
                now.clone().into(),
                now.into(),
            ],
        )?;
        self.rows_made.insert((row.table, key));
        Ok(())
    }

    /// Login and logout rows, once per clientId and status: a retry after a
    /// connection broke before the commit's answer came back writes no
    /// second row. Only the process that recorded a clientId's change
    /// writes its row, so a plain read of the rows there (no locks, which
    /// other processes' inserts could deadlock on) is enough to skip them.
    fn insert_logins(&mut self, logins: &[&Record]) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(logins.len());
        for login in logins {
            if let Record::Login {
                status,
                uid,
                at_ms,
                time,
                client_id,
            } = login
            {
                let channel_id = self.channel_id(time)?;
                rows.push((*status, *uid, *at_ms, channel_id, client_id.as_str()));
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        let conn = self.conn()?;
        let client_id_column = conn.dialect().column("clientId");
        let mut ids: Vec<&str> = rows.iter().map(|r| r.4).collect();
        ids.sort_unstable();
        ids.dedup();
        let marks = vec!["?"; ids.len()].join(", ");
        let params: Vec<Param> = ids.iter().map(|id| (*id).into()).collect();
        let present: Vec<(String, i64)> = conn
            .all_rows(
                &format!(
                    "SELECT {client_id_column}, status FROM faye_user_login_logs WHERE {client_id_column} IN ({marks})"
                ),
                &params,
            )?
            .into_iter()
            .filter_map(|r| Some((r.first()?.clone()?, r.get(1)?.as_deref()?.parse().ok()?)))
            .collect();
        let mut present = present;
        let mut params = Vec::new();
        let mut count = 0;
        for (status, uid, at_ms, channel_id, client_id) in rows {
            if present
                .iter()
                .any(|(id, st)| id == client_id && *st == status)
            {
                continue;
            }
            present.push((client_id.to_owned(), status));
            params.extend([
                Param::Int(status),
                Param::Int(uid as i64),
                clock::sql_datetime(at_ms).into(),
                Param::Int(channel_id),
                client_id.into(),
            ]);
            count += 1;
        }
        if count == 0 {
            return Ok(());
        }
        let values = vec!["(?, ?, ?, ?, ?)"; count].join(", ");
        conn.execute(
            &format!(
                "INSERT INTO faye_user_login_logs (status, uid, t, channel_id, {client_id_column}) VALUES {values}"
            ),
            &params,
        )?;
        Ok(())
    }

    /// Rows of the interval ledger: each at most once (its clientId, kind
    /// and start are its unique key), so a batch retried after its commit
    /// succeeded, or the same interval written by two processes, adds
    /// nothing.
    fn insert_intervals(&mut self, records: &[&Record]) -> Result<(), StoreError> {
        let mut params = Vec::new();
        let mut count = 0;
        for record in records {
            if let Record::Interval {
                uid,
                time,
                client_id,
                measure,
                started_ms,
                ended_ms,
                ended_by,
            } = record
            {
                params.extend([
                    Param::Int(*uid as i64),
                    time.as_str().into(),
                    client_id.as_str().into(),
                    measure.name().into(),
                    Param::Int(*started_ms),
                    Param::Int(*ended_ms),
                    ended_by.as_str().into(),
                ]);
                count += 1;
            }
        }
        if count == 0 {
            return Ok(());
        }
        let conn = self.conn()?;
        let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; count].join(", ");
        let insert = conn.dialect().insert_ignore(&format!(
            "faye_online_intervals (uid, lesson, client_id, kind, started_ms, ended_ms, ended_by) VALUES {values}"
        ));
        conn.execute(&insert, &params)?;
        Ok(())
    }

    /// How many channel ids are cached.
    pub fn cached_channel_ids(&self) -> usize {
        self.channel_ids.len()
    }

    /// The id of a channel in `faye_channels`, created if missing.
    pub fn channel_id(&mut self, name: &str) -> Result<i64, StoreError> {
        if let Some(id) = self.channel_ids.get(name) {
            return Ok(*id);
        }
        // A bounded cache: past MAX_CACHED it starts over (a miss costs one
        // SELECT), so that a site with ever new rooms and lessons does not
        // grow the writer without end.
        if self.channel_ids.len() >= MAX_CACHED {
            self.channel_ids.clear();
        }
        let now = clock::sql_datetime(clock::now_ms());
        let conn = self.conn()?;
        let insert = conn
            .dialect()
            .insert_ignore("faye_channels (name, created_at, updated_at) VALUES (?, ?, ?)");
        conn.execute(&insert, &[name.into(), now.clone().into(), now.into()])?;
        let row = conn
            .first_row(
                "SELECT id FROM faye_channels WHERE name = ?",
                &[name.into()],
            )?
            .ok_or_else(|| StoreError::other(format!("faye_channels has no row for {name}")))?;
        let id = parse_int(&row, 0)?;
        self.channel_ids.insert(name.to_owned(), id);
        Ok(id)
    }

    /// Records the name a user last connected with.
    fn remember_name(&mut self, uid: u64, uname: &str) -> Result<(), StoreError> {
        let now = clock::sql_datetime(clock::now_ms());
        let conn = self.conn()?;
        let sql = conn.dialect().upsert(
            "faye_online_user_names (uid, uname, created_at, updated_at) VALUES (?, ?, ?, ?)",
            "uid",
            &["uname", "updated_at"],
        );
        conn.execute(
            &sql,
            &[
                Param::Int(uid as i64),
                uname.into(),
                now.clone().into(),
                now.into(),
            ],
        )?;
        Ok(())
    }

    /// The name a user last connected with ("" if unknown).
    pub fn user_name(&mut self, uid: u64) -> Result<String, StoreError> {
        self.guarded(|s| {
            let row = s.conn()?.first_row(
                "SELECT uname FROM faye_online_user_names WHERE uid = ?",
                &[Param::Int(uid as i64)],
            )?;
            Ok(row
                .and_then(|r| r.into_iter().next().flatten())
                .unwrap_or_default())
        })
    }

    fn edit_online_list(
        &mut self,
        room: &str,
        edit: impl FnOnce(&mut Vec<u64>),
    ) -> Result<(), StoreError> {
        let channel_id = self.channel_id(room)?;
        self.edit_json_row(JsonRow::ONLINE_LIST, channel_id, |text| {
            let mut list = parse_uid_list(text);
            edit(&mut list);
            Ok(serde_json::to_string(&list)?)
        })
    }

    fn edit_online_times(
        &mut self,
        uid: u64,
        edit: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<(), StoreError> {
        self.edit_json_row(JsonRow::ONLINE_TIMES, uid as i64, |text| {
            let mut times = parse_times(text);
            edit(&mut times);
            Ok(Value::Object(times).to_string())
        })
    }

    /// Read-modify-write of one row's JSON column, within the caller's
    /// transaction: the row is created if missing and locked until the
    /// transaction ends, so that writers in several processes never lose
    /// each other's changes.
    fn edit_json_row(
        &mut self,
        row: JsonRow,
        key: i64,
        edit: impl FnOnce(Option<&str>) -> Result<String, StoreError>,
    ) -> Result<(), StoreError> {
        let JsonRow {
            table,
            key_column,
            column,
            ..
        } = row;
        let now = clock::sql_datetime(clock::now_ms());
        let conn = self.conn()?;
        let dialect = conn.dialect();
        let select = format!(
            "SELECT id, {column} FROM {table} WHERE {key_column} = ? ORDER BY id LIMIT 1{}",
            dialect.for_update()
        );
        // The row is locked for writing at once when it exists (the usual
        // case): a shared lock first, as an insert of a duplicate takes,
        // would deadlock two writers that both upgrade it.
        let found = match conn.first_row(&select, &[Param::Int(key)])? {
            Some(found) => found,
            // Made before the transaction, and deleted since.
            None => {
                self.rows_made.remove(&(table, key));
                self.make_row(row, key)?;
                self.conn()?
                    .first_row(&select, &[Param::Int(key)])?
                    .ok_or_else(|| {
                        StoreError::other(format!("{table} has no row for {key_column} {key}"))
                    })?
            }
        };
        let conn = self.conn()?;
        let id = parse_int(&found, 0)?;
        let text = edit(found[1].as_deref())?;
        conn.execute(
            &format!(
                "UPDATE {table} SET {column} = ?, lock_version = lock_version + 1, updated_at = ? WHERE id = ?"
            ),
            &[text.into(), now.into(), Param::Int(id)],
        )?;
        Ok(())
    }

    /// The interval ledger's rows of `lesson` (of one user, or of all),
    /// in order of start.
    pub fn intervals(
        &mut self,
        lesson: &str,
        uid: Option<u64>,
    ) -> Result<Vec<Interval>, StoreError> {
        let rows = self.guarded(|s| {
            let select = "SELECT uid, client_id, kind, started_ms, ended_ms, ended_by FROM faye_online_intervals";
            match uid {
                Some(uid) => s.conn()?.all_rows(
                    &format!("{select} WHERE lesson = ? AND uid = ? ORDER BY started_ms, id"),
                    &[lesson.into(), Param::Int(uid as i64)],
                ),
                None => s.conn()?.all_rows(
                    &format!("{select} WHERE lesson = ? ORDER BY started_ms, id"),
                    &[lesson.into()],
                ),
            }
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(measure) = row[2].as_deref().and_then(IntervalKind::parse) else {
                continue;
            };
            out.push(Interval {
                uid: parse_int(&row, 0)? as u64,
                lesson: lesson.to_owned(),
                client_id: row[1].clone().unwrap_or_default(),
                measure,
                started_ms: parse_int(&row, 3)?,
                ended_ms: parse_int(&row, 4)?,
                ended_by: row[5].clone().unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// The uids in a room's online list.
    pub fn online_uids(&mut self, room: &str) -> Result<Vec<u64>, StoreError> {
        self.guarded(|s| {
            let row = s.conn()?.first_row(
                "SELECT l.user_info_list FROM faye_channel_online_lists l JOIN faye_channels c ON c.id = l.channel_id WHERE c.name = ? ORDER BY l.id LIMIT 1",
                &[room.into()],
            )?;
            Ok(row.map(|r| parse_uid_list(r[0].as_deref())).unwrap_or_default())
        })
    }

    /// Every room's online list: (room, uids with their recorded names).
    pub fn online_lists(&mut self) -> Result<Vec<(String, Vec<User>)>, StoreError> {
        let rows = self.guarded(|s| {
            s.conn()?.all_rows(
                "SELECT c.name, l.user_info_list FROM faye_channel_online_lists l \
                 JOIN faye_channels c ON c.id = l.channel_id ORDER BY c.name",
                &[],
            )
        })?;
        let mut out = Vec::new();
        for row in rows {
            let Some(room) = row[0].clone() else { continue };
            let uids = parse_uid_list(row[1].as_deref());
            if uids.is_empty() {
                continue;
            }
            let users = uids
                .into_iter()
                .map(|uid| {
                    Ok(User {
                        uid,
                        uname: self.user_name(uid)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            out.push((room, users));
        }
        Ok(out)
    }

    /// A user's `online_times` JSON object (empty if they have no row).
    pub fn online_times(&mut self, uid: u64) -> Result<Map<String, Value>, StoreError> {
        self.guarded(|s| {
            let row = s.conn()?.first_row(
                "SELECT online_times FROM faye_user_online_times WHERE user_id = ?",
                &[Param::Int(uid as i64)],
            )?;
            Ok(row
                .map(|r| parse_times(r[0].as_deref()))
                .unwrap_or_default())
        })
    }

    /// Seconds the user spent in `time`, counting a running timer up to `now_ms`.
    pub fn online_time(&mut self, uid: u64, time: &str, now_ms: i64) -> Result<i64, StoreError> {
        let times = self.online_times(uid)?;
        Ok(seconds_in(&times, time, now_ms))
    }
}

pub(super) fn parse_int(row: &[Option<String>], i: usize) -> Result<i64, StoreError> {
    row.get(i)
        .and_then(|v| v.as_deref())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::other(format!("expected an integer in column {i}")))
}

mod failed;
mod logins;
mod schedule;
pub use schedule::Scheduled;

pub use failed::FailedRecord;
pub use logins::MAX_OPEN_SESSIONS;

#[cfg(test)]
mod tests;
