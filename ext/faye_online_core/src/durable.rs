//! Durable records in the old gem's four tables, so that an app that ran the
//! old gem keeps its data and its reports:
//!
//! - `faye_channels` (name → id),
//! - `faye_channel_online_lists` (channel_id, user_info_list: JSON array of uids),
//! - `faye_user_online_times` (user_id, online_times: JSON with
//!   `"<time>_started_at": "YYYYmmddHHMMSS"` and `"<time>_spended": seconds`),
//! - `faye_user_login_logs` (status 1/0, uid, t, channel_id, clientId).
//!
//! Records are applied in batches, each batch in one transaction with the
//! rows it edits locked, so several processes writing the same list or the
//! same user never lose each other's updates.

use crate::auth::User;
use crate::clock;
use crate::error::StoreError;
use crate::presence::HotStore;
use crate::sql::{self, Param, SqlConn};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// One durable change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A clientId came (`status` 1) or went (`status` 0).
    Login {
        status: i64,
        uid: u64,
        at_ms: i64,
        time: String,
        client_id: String,
    },
    /// The user came online in the room (and is known by `uname`).
    RoomJoin {
        room: String,
        uid: u64,
        uname: String,
    },
    /// The user went offline in the room.
    RoomLeave { room: String, uid: u64 },
    /// Users listed online in the room whom no live process has: left
    /// behind by a crash, removed at start.
    RoomPrune { room: String, uids: Vec<u64> },
    /// The user's lesson timer started.
    TimerStart { uid: u64, time: String, at_ms: i64 },
    /// The user's lesson session ended: `credited_ms` (the union of its
    /// clientIds' intervals), rounded to seconds, is added to the user's
    /// time. `restored`: the hot store lost the session (Redis restarted
    /// empty) and rebuilt it from the live clientIds, so it only knows it
    /// from `started_ms`; the time from the start recorded in SQL up to
    /// then is credited too.
    TimerStop {
        uid: u64,
        time: String,
        started_ms: i64,
        credited_ms: i64,
        restored: bool,
    },
}

/// One clientId's stay, from its login row to its logout row (none while
/// it is online, or if its process died before it was cleaned).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Session {
    pub client_id: String,
    pub uid: u64,
    pub uname: String,
    pub lesson: String,
    pub joined_ms: i64,
    pub left_ms: Option<i64>,
}

/// Brings `list`, the online list of `room`, up to date for one record.
fn edit_list(list: &mut Vec<u64>, room: &str, record: &Record, live: Option<&dyn HotStore>) {
    let in_room = |uid: u64| live.and_then(|h| h.room_has(room, uid).ok());
    match record {
        Record::RoomJoin { uid, .. } => set_member(list, *uid, in_room(*uid).unwrap_or(true)),
        Record::RoomLeave { uid, .. } => set_member(list, *uid, in_room(*uid).unwrap_or(false)),
        Record::RoomPrune { uids, .. } => {
            list.retain(|u| !uids.contains(u) || in_room(*u).unwrap_or(false))
        }
        _ => {}
    }
}

/// Brings a user's online times up to date for one record.
fn edit_times(times: &mut Map<String, Value>, record: &Record, live: Option<&dyn HotStore>) {
    let running = |uid: u64, time: &str| live.and_then(|h| h.timer_started_at(uid, time).ok());
    match record {
        Record::TimerStart { uid, time, at_ms } => {
            // A session that ended already is written by its stop.
            if let Some(at) = running(*uid, time).unwrap_or(Some(*at_ms)) {
                times.insert(started_key(time), Value::String(clock::compact_local(at)));
            }
        }
        Record::TimerStop {
            uid,
            time,
            started_ms,
            credited_ms,
            restored,
        } => {
            let recorded_start = times
                .remove(&started_key(time))
                .and_then(|v| v.as_str().and_then(clock::parse_compact_local));
            let lost_ms = match recorded_start {
                // SQL keeps seconds: only a whole second earlier is lost time.
                Some(at) if *restored && at + 1000 <= *started_ms => started_ms - at,
                _ => 0,
            };
            let key = spended_key(time);
            let before = times.get(&key).and_then(json_int).unwrap_or(0);
            let total = before + clock::elapsed_secs(0, credited_ms + lost_ms);
            times.insert(key, Value::from(total));
            // A later session, started in another process, whose start
            // reached SQL before this stop did.
            if let Some(Some(at)) = running(*uid, time) {
                times.insert(started_key(time), Value::String(clock::compact_local(at)));
            }
        }
        _ => {}
    }
}

/// Puts `uid` in the sorted `list` or takes it out.
fn set_member(list: &mut Vec<u64>, uid: u64, member: bool) {
    match (list.binary_search(&uid), member) {
        (Err(at), true) => list.insert(at, uid),
        (Ok(at), false) => {
            list.remove(at);
        }
        _ => {}
    }
}

pub fn started_key(time: &str) -> String {
    format!("{time}_started_at")
}

pub fn spended_key(time: &str) -> String {
    format!("{time}_spended")
}

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

    /// Runs `f`; on failure drops the connection (a new one is opened next
    /// time) and the cached channel ids (a rolled-back insert may hold one).
    fn guarded<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = f(self);
        if result.is_err() {
            if let Some(c) = self.conn.as_mut() {
                c.rollback();
            }
            self.conn = None;
            self.channel_ids.clear();
            self.rows_made.clear();
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
        live: Option<&dyn HotStore>,
    ) -> Result<(), StoreError> {
        let mut names: BTreeMap<u64, &str> = BTreeMap::new();
        let mut rooms: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
        let mut timers: BTreeMap<u64, Vec<&Record>> = BTreeMap::new();
        let mut logins: Vec<&Record> = Vec::new();
        for record in records {
            match record {
                Record::Login { .. } => logins.push(record),
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
                Err(e) if tries < 5 && e.0.contains("Deadlock") => continue,
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
        live: Option<&dyn HotStore>,
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
            s.conn()?.commit()
        })
    }

    /// Creates a JSON row if it is missing, outside any transaction.
    fn make_row(&mut self, row: JsonRow, key: i64) -> Result<(), StoreError> {
        if self.rows_made.contains(&(row.table, key)) {
            return Ok(());
        }
        let now = clock::sql_datetime(clock::now_ms());
        let conn = self.conn()?;
        let insert = format!(
            "{} {} ({}, {}, lock_version, created_at, updated_at) VALUES (?, ?, 0, ?, ?)",
            conn.dialect().insert_ignore(),
            row.table,
            row.key_column,
            row.column
        );
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
        let mut ids: Vec<&str> = rows.iter().map(|r| r.4).collect();
        ids.sort_unstable();
        ids.dedup();
        let marks = vec!["?"; ids.len()].join(", ");
        let params: Vec<Param> = ids.iter().map(|id| (*id).into()).collect();
        let present: Vec<(String, i64)> = conn
            .all_rows(
                &format!(
                    "SELECT clientId, status FROM faye_user_login_logs WHERE clientId IN ({marks})"
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
                "INSERT INTO faye_user_login_logs (status, uid, t, channel_id, clientId) VALUES {values}"
            ),
            &params,
        )?;
        Ok(())
    }

    /// The id of a channel in `faye_channels`, created if missing.
    pub fn channel_id(&mut self, name: &str) -> Result<i64, StoreError> {
        if let Some(id) = self.channel_ids.get(name) {
            return Ok(*id);
        }
        let now = clock::sql_datetime(clock::now_ms());
        let conn = self.conn()?;
        let insert = format!(
            "{} faye_channels (name, created_at, updated_at) VALUES (?, ?, ?)",
            conn.dialect().insert_ignore()
        );
        conn.execute(&insert, &[name.into(), now.clone().into(), now.into()])?;
        let row = conn
            .first_row(
                "SELECT id FROM faye_channels WHERE name = ?",
                &[name.into()],
            )?
            .ok_or_else(|| StoreError(format!("faye_channels has no row for {name}")))?;
        let id = parse_int(&row, 0)?;
        self.channel_ids.insert(name.to_owned(), id);
        Ok(id)
    }

    /// Records the name a user last connected with.
    fn remember_name(&mut self, uid: u64, uname: &str) -> Result<(), StoreError> {
        let now = clock::sql_datetime(clock::now_ms());
        let conn = self.conn()?;
        let sql = match conn.dialect() {
            sql::Dialect::MySql => "INSERT INTO faye_online_user_names (uid, uname, created_at, updated_at) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE uname = VALUES(uname), updated_at = VALUES(updated_at)",
            sql::Dialect::Sqlite => "INSERT INTO faye_online_user_names (uid, uname, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT(uid) DO UPDATE SET uname = excluded.uname, updated_at = excluded.updated_at",
        };
        conn.execute(
            sql,
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
                        StoreError(format!("{table} has no row for {key_column} {key}"))
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

    /// The login/logout log paired into one session per clientId, oldest
    /// first: of `uid` (or everyone), for sessions that began before
    /// `before_ms` and had not ended by `after_ms`.
    pub fn sessions(
        &mut self,
        uid: Option<u64>,
        after_ms: i64,
        before_ms: i64,
    ) -> Result<Vec<Session>, StoreError> {
        self.guarded(|s| {
            let mut sql = String::from(
                "SELECT l.status, l.uid, l.t, c.name, l.clientId, n.uname FROM faye_user_login_logs l \
                 LEFT JOIN faye_channels c ON c.id = l.channel_id \
                 LEFT JOIN faye_online_user_names n ON n.uid = l.uid WHERE l.t < ?",
            );
            // Rows keep whole seconds: a row of the second `before_ms` is in
            // falls before it.
            let before_s = before_ms.div_euclid(1000) + i64::from(before_ms.rem_euclid(1000) > 0);
            let mut params = vec![clock::sql_datetime(before_s * 1000).into()];
            if let Some(uid) = uid {
                sql.push_str(" AND l.uid = ?");
                params.push(Param::Int(uid as i64));
            }
            sql.push_str(" ORDER BY l.t, l.status DESC");
            let rows = s.conn()?.all_rows(&sql, &params)?;
            let mut sessions: Vec<Session> = Vec::new();
            let mut open: HashMap<String, usize> = HashMap::new();
            for row in rows {
                let (Some(at), Some(client_id)) = (
                    row[2].as_deref().and_then(clock::parse_sql_datetime),
                    row[4].clone(),
                ) else {
                    continue;
                };
                let uid = parse_int(&row, 1)? as u64;
                if parse_int(&row, 0)? == 1 {
                    open.insert(client_id.clone(), sessions.len());
                    sessions.push(Session {
                        client_id,
                        uid,
                        uname: row[5].clone().unwrap_or_default(),
                        lesson: row[3].clone().unwrap_or_default(),
                        joined_ms: at,
                        left_ms: None,
                    });
                } else if let Some(i) = open.remove(&client_id) {
                    sessions[i].left_ms = Some(at.max(sessions[i].joined_ms));
                }
            }
            sessions.retain(|x| x.left_ms.is_none_or(|left| left >= after_ms));
            Ok(sessions)
        })
    }

    /// Seconds the user spent in `time`, counting a running timer up to `now_ms`.
    pub fn online_time(&mut self, uid: u64, time: &str, now_ms: i64) -> Result<i64, StoreError> {
        let times = self.online_times(uid)?;
        Ok(seconds_in(&times, time, now_ms))
    }
}

/// Seconds credited in an `online_times` object, plus the running session.
pub fn seconds_in(times: &Map<String, Value>, time: &str, now_ms: i64) -> i64 {
    spent_secs(times, time) + running_secs(times, time, now_ms).unwrap_or(0)
}

/// Seconds of finished sessions (`<time>_spended`).
pub fn spent_secs(times: &Map<String, Value>, time: &str) -> i64 {
    times
        .get(&spended_key(time))
        .and_then(json_int)
        .unwrap_or(0)
}

/// Seconds of the running session up to `now_ms`, if `<time>_started_at` is set.
pub fn running_secs(times: &Map<String, Value>, time: &str, now_ms: i64) -> Option<i64> {
    times
        .get(&started_key(time))
        .and_then(Value::as_str)
        .and_then(clock::parse_compact_local)
        .map(|started| clock::elapsed_secs(started, now_ms))
}

fn json_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_int(row: &[Option<String>], i: usize) -> Result<i64, StoreError> {
    row.get(i)
        .and_then(|v| v.as_deref())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError(format!("expected an integer in column {i}")))
}

/// Reads an old-gem online list; unreadable data counts as empty rather
/// than stopping every later write to the room.
fn parse_uid_list(text: Option<&str>) -> Vec<u64> {
    let Some(Value::Array(items)) = text.and_then(|t| serde_json::from_str(t).ok()) else {
        return Vec::new();
    };
    let mut uids: Vec<u64> = items
        .iter()
        .filter_map(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .collect();
    uids.sort_unstable();
    uids.dedup();
    uids
}

fn parse_times(text: Option<&str>) -> Map<String, Value> {
    match text.and_then(|t| serde_json::from_str(t).ok()) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The four tables as the migrations in `db/migrate` create them, for the
/// Rust tests only (the migrations stay the one source of truth).
#[doc(hidden)]
pub mod test_schema {
    use super::*;

    pub fn create(conn: &mut dyn SqlConn) {
        let (id, text) = match conn.dialect() {
            sql::Dialect::MySql => ("id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY", "TEXT"),
            sql::Dialect::Sqlite => ("id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL", "TEXT"),
        };
        for ddl in [
            format!("CREATE TABLE faye_channels ({id}, name VARCHAR(255), created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL)"),
            "CREATE UNIQUE INDEX index_faye_channels_on_name ON faye_channels (name)".to_string(),
            format!("CREATE TABLE faye_channel_online_lists ({id}, channel_id INTEGER DEFAULT 0, user_info_list {text}, lock_version INTEGER DEFAULT 0, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL)"),
            "CREATE UNIQUE INDEX index_faye_channel_online_lists_on_channel_id ON faye_channel_online_lists (channel_id)".to_string(),
            format!("CREATE TABLE faye_user_online_times ({id}, user_id INTEGER DEFAULT 0, online_times {text}, lock_version INTEGER DEFAULT 0, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL)"),
            "CREATE UNIQUE INDEX index_faye_user_online_times_on_user_id ON faye_user_online_times (user_id)".to_string(),
            "CREATE TABLE faye_user_login_logs (status SMALLINT, uid INTEGER, t DATETIME, channel_id INTEGER, clientId VARCHAR(255))".to_string(),
            "CREATE INDEX idx_client_status ON faye_user_login_logs (clientId, status)".to_string(),
            format!("CREATE TABLE faye_online_user_names ({id}, uid BIGINT NOT NULL, uname VARCHAR(255) NOT NULL, created_at DATETIME, updated_at DATETIME)"),
            "CREATE UNIQUE INDEX index_faye_online_user_names_on_uid ON faye_online_user_names (uid)".to_string(),
        ] {
            conn.execute(&ddl, &[]).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The durable-store contract, run on SQLite and (when reachable) MySQL.
    fn contract(url: &str) {
        let mut store = DurableStore::new(url);
        let room = "/classes/4";
        let time = "/courses/5/lessons/1";
        let join = |uid: u64, uname: &str| Record::RoomJoin {
            room: room.into(),
            uid,
            uname: uname.into(),
        };
        store.apply(&join(7, "seven")).unwrap();
        store.apply(&join(3, "three")).unwrap();
        store.apply(&join(7, "Seven")).unwrap();
        assert_eq!(store.user_name(7).unwrap(), "Seven");
        assert_eq!(store.user_name(99).unwrap(), "");
        assert_eq!(store.online_uids(room).unwrap(), vec![3, 7]);
        store
            .apply(&Record::RoomLeave {
                room: room.into(),
                uid: 7,
            })
            .unwrap();
        assert_eq!(store.online_uids(room).unwrap(), vec![3]);
        assert_eq!(store.online_uids("/nowhere").unwrap(), Vec::<u64>::new());

        let t0 = 1_700_000_000_000;
        store
            .apply(&Record::TimerStart {
                uid: 3,
                time: time.into(),
                at_ms: t0,
            })
            .unwrap();
        let times = store.online_times(3).unwrap();
        assert_eq!(
            times[&started_key(time)],
            Value::String(clock::compact_local(t0))
        );
        assert_eq!(store.online_time(3, time, t0 + 10_000).unwrap(), 10);
        store
            .apply(&Record::TimerStop {
                uid: 3,
                time: time.into(),
                started_ms: t0,
                credited_ms: 42_000,
                restored: false,
            })
            .unwrap();
        store
            .apply(&Record::TimerStop {
                uid: 3,
                time: time.into(),
                started_ms: t0,
                credited_ms: 8_000,
                restored: false,
            })
            .unwrap();
        let times = store.online_times(3).unwrap();
        assert!(!times.contains_key(&started_key(time)));
        assert_eq!(times[&spended_key(time)], Value::from(50));
        assert_eq!(store.online_time(3, time, t0 + 999_000).unwrap(), 50);

        // A session that Redis lost and the live clientIds rebuilt from a
        // later join: the time from the start recorded here is credited too.
        let t1 = t0 + 1_000_000;
        store
            .apply(&Record::TimerStart {
                uid: 3,
                time: time.into(),
                at_ms: t1,
            })
            .unwrap();
        store
            .apply(&Record::TimerStop {
                uid: 3,
                time: time.into(),
                started_ms: t1 + 30_000,
                credited_ms: 5_000,
                restored: true,
            })
            .unwrap();
        assert_eq!(store.online_time(3, time, t1 + 999_000).unwrap(), 85);

        for status in [1, 0, 0] {
            store
                .apply(&Record::Login {
                    status,
                    uid: 3,
                    at_ms: t0,
                    time: time.into(),
                    client_id: "abc".into(),
                })
                .unwrap();
        }
        let tid = store.channel_id(time).unwrap();
        let conn = store.conn().unwrap();
        let row = conn
            .first_row(
                "SELECT COUNT(*), SUM(status), MIN(channel_id), MIN(t) FROM faye_user_login_logs WHERE clientId = ?",
                &["abc".into()],
            )
            .unwrap()
            .unwrap();
        assert_eq!(row[0].as_deref(), Some("2"));
        assert_eq!(row[1].as_deref(), Some("1"));
        assert_eq!(row[2].as_deref(), Some(tid.to_string().as_str()));
        assert!(row[3]
            .as_deref()
            .unwrap()
            .starts_with(&clock::sql_datetime(t0)));

        batches(url);
        two_writers(url);
    }

    /// Many records in one batch come out as if applied one by one, and
    /// login rows applied again are not written twice.
    fn batches(url: &str) {
        let mut store = DurableStore::new(url);
        let (room_a, room_b, time) = ("/batch/a", "/batch/b", "/batch/lesson");
        let t0 = 1_700_000_500_000;
        let mut batch = Vec::new();
        for uid in 100..110u64 {
            let room = if uid % 2 == 0 { room_a } else { room_b };
            batch.push(Record::Login {
                status: 1,
                uid,
                at_ms: t0,
                time: time.into(),
                client_id: format!("batch-{uid}"),
            });
            batch.push(Record::RoomJoin {
                room: room.into(),
                uid,
                uname: format!("u{uid}"),
            });
            batch.push(Record::TimerStart {
                uid,
                time: time.into(),
                at_ms: t0,
            });
        }
        for uid in [101, 104] {
            let room = if uid % 2 == 0 { room_a } else { room_b };
            batch.push(Record::Login {
                status: 0,
                uid,
                at_ms: t0 + 7_000,
                time: time.into(),
                client_id: format!("batch-{uid}"),
            });
            batch.push(Record::RoomLeave {
                room: room.into(),
                uid,
            });
            batch.push(Record::TimerStop {
                uid,
                time: time.into(),
                started_ms: t0,
                credited_ms: 7_000,
                restored: false,
            });
        }
        store.apply_batch(&batch, None).unwrap();
        let logins: Vec<Record> = batch
            .iter()
            .filter(|r| matches!(r, Record::Login { .. }))
            .cloned()
            .collect();
        store.apply_batch(&logins, None).unwrap();
        assert_eq!(store.online_uids(room_a).unwrap(), vec![100, 102, 106, 108]);
        assert_eq!(store.online_uids(room_b).unwrap(), vec![103, 105, 107, 109]);
        assert_eq!(store.user_name(109).unwrap(), "u109");
        let times = store.online_times(104).unwrap();
        assert!(!times.contains_key(&started_key(time)));
        assert_eq!(times[&spended_key(time)], Value::from(7));
        assert!(store
            .online_times(105)
            .unwrap()
            .contains_key(&started_key(time)));
        let conn = store.conn().unwrap();
        let row = conn
            .first_row(
                "SELECT COUNT(*), SUM(status) FROM faye_user_login_logs WHERE clientId LIKE 'batch-%'",
                &[],
            )
            .unwrap()
            .unwrap();
        assert_eq!(row[0].as_deref(), Some("12"));
        assert_eq!(row[1].as_deref(), Some("10"));
    }

    /// Two writers (two processes) apply batches that touch the same rooms
    /// and users in opposite orders at once: neither deadlocks nor loses
    /// the other's changes.
    fn two_writers(url: &str) {
        let rooms: Vec<String> = (0..4).map(|i| format!("/writers/{i}")).collect();
        let time = "/writers/lesson";
        let handles: Vec<_> = [false, true]
            .into_iter()
            .map(|reversed| {
                let url = url.to_owned();
                let rooms = rooms.clone();
                std::thread::spawn(move || {
                    let mut store = DurableStore::new(&url);
                    let base = if reversed { 2000 } else { 1000 };
                    for round in 0..20u64 {
                        let mut batch = Vec::new();
                        let mut order: Vec<usize> = (0..rooms.len()).collect();
                        if reversed {
                            order.reverse();
                        }
                        for i in order {
                            let uid = base + round * 10 + i as u64;
                            batch.push(Record::RoomJoin {
                                room: rooms[i].clone(),
                                uid,
                                uname: format!("w{uid}"),
                            });
                            batch.push(Record::TimerStop {
                                uid: 1 + i as u64,
                                time: time.into(),
                                started_ms: 0,
                                credited_ms: 1_000,
                                restored: false,
                            });
                        }
                        store.apply_batch(&batch, None).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let mut store = DurableStore::new(url);
        for room in &rooms {
            assert_eq!(store.online_uids(room).unwrap().len(), 40, "{room}");
        }
        for uid in 1..=4 {
            let times = store.online_times(uid).unwrap();
            assert_eq!(times[&spended_key(time)], Value::from(40), "user {uid}");
        }
    }

    #[test]
    fn keeps_the_durable_contract_on_sqlite() {
        let dir = std::env::temp_dir().join(format!("fo_durable_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.sqlite3");
        let _ = std::fs::remove_file(&path);
        let url = format!("sqlite://{}", path.display());
        test_schema::create(sql::open(&url).unwrap().as_mut());
        contract(&url);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Two processes record a user's leave and the user's return; the
    /// leave reaches SQL last. The rows still say what the hot store says.
    #[test]
    fn memberships_follow_the_hot_store_whatever_order_records_arrive_in() {
        use crate::memory::MemoryStore;
        use crate::presence::contract::auth;
        let dir = std::env::temp_dir().join(format!("fo_order_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.sqlite3");
        let _ = std::fs::remove_file(&path);
        let url = format!("sqlite://{}", path.display());
        test_schema::create(sql::open(&url).unwrap().as_mut());
        let mut store = DurableStore::new(&url);
        let hot = MemoryStore::new();
        let (room, time) = ("/classes/9", "/courses/9/lessons/1");
        let t0 = 1_700_000_000_000;
        let join = Record::RoomJoin {
            room: room.into(),
            uid: 5,
            uname: "five".into(),
        };
        let start = |at_ms| Record::TimerStart {
            uid: 5,
            time: time.into(),
            at_ms,
        };

        // The first tab joins, in the first process.
        hot.connect("a", &auth(room, time, 5, "five"), t0).unwrap();
        for r in [join.clone(), start(t0)] {
            store
                .apply_batch(std::slice::from_ref(&r), Some(&hot))
                .unwrap();
        }
        // It leaves; a tab in the second process joins 20 s later, and the
        // second process writes first.
        let left = hot.disconnect("a", t0 + 10_000).unwrap().unwrap();
        assert!(left.room_left);
        hot.connect("b", &auth(room, time, 5, "five"), t0 + 20_000)
            .unwrap();
        let late = [
            Record::RoomLeave {
                room: room.into(),
                uid: 5,
            },
            Record::TimerStop {
                uid: 5,
                time: time.into(),
                started_ms: t0,
                credited_ms: 10_000,
                restored: false,
            },
        ];
        for r in [join.clone(), start(t0 + 20_000)].iter().chain(&late) {
            store
                .apply_batch(std::slice::from_ref(r), Some(&hot))
                .unwrap();
        }
        assert_eq!(store.online_uids(room).unwrap(), vec![5]);
        let times = store.online_times(5).unwrap();
        assert_eq!(
            times[&started_key(time)],
            Value::String(clock::compact_local(t0 + 20_000))
        );
        assert_eq!(times[&spended_key(time)], Value::from(10));

        // A prune at start of a user who is online again keeps them.
        store
            .apply_batch(
                &[Record::RoomPrune {
                    room: room.into(),
                    uids: vec![5],
                }],
                Some(&hot),
            )
            .unwrap();
        assert_eq!(store.online_uids(room).unwrap(), vec![5]);

        // The second tab leaves; a join that arrives after its leave is
        // not believed, and a start after its stop leaves no running timer.
        hot.disconnect("b", t0 + 30_000).unwrap().unwrap();
        let ended = [
            late[0].clone(),
            Record::TimerStop {
                uid: 5,
                time: time.into(),
                started_ms: t0 + 20_000,
                credited_ms: 10_000,
                restored: false,
            },
            join,
            start(t0 + 20_000),
        ];
        for r in &ended {
            store
                .apply_batch(std::slice::from_ref(r), Some(&hot))
                .unwrap();
        }
        assert_eq!(store.online_uids(room).unwrap(), Vec::<u64>::new());
        let times = store.online_times(5).unwrap();
        assert!(!times.contains_key(&started_key(time)), "{times:?}");
        assert_eq!(times[&spended_key(time)], Value::from(20));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keeps_the_durable_contract_on_mysql() {
        let Ok(url) = std::env::var("FAYE_ONLINE_TEST_MYSQL_URL") else {
            eprintln!("skipped: FAYE_ONLINE_TEST_MYSQL_URL is not set");
            return;
        };
        let mut conn = sql::open(&url).expect("MySQL from FAYE_ONLINE_TEST_MYSQL_URL");
        for t in [
            "faye_channels",
            "faye_channel_online_lists",
            "faye_user_online_times",
            "faye_user_login_logs",
            "faye_online_user_names",
        ] {
            conn.execute(&format!("DROP TABLE IF EXISTS {t}"), &[])
                .unwrap();
        }
        test_schema::create(conn.as_mut());
        contract(&url);
    }

    #[test]
    fn reads_old_gem_data_leniently() {
        assert_eq!(parse_uid_list(Some("[3, \"5\", 3, null]")), vec![3, 5]);
        assert_eq!(parse_uid_list(Some("not json")), Vec::<u64>::new());
        let times = parse_times(Some(r#"{"/t_spended": "12"}"#));
        assert_eq!(seconds_in(&times, "/t", 0), 12);
    }
}
