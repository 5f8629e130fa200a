//! The hot store in Redis, shared by every Faye process of a site.
//!
//! Every state change is one Lua script, so two processes can never lose
//! each other's updates. Keys, under the prefix `/<namespace>/`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `clients:info:<b>` | hash | clientId → `uid\|room\|time\|joined\|seen\|uname` of each live clientId (times in ms) |
//! | `clients:due` | zset | bucket → a time no later than any of its clientIds was last seen (ms): the buckets a sweep must read |
//! | `room:<room>:users` | hash | uid → uname of the users online in a room |
//! | `room:<room>:tabs` | hash | uid → how many of the user's clientIds are in the room |
//! | `time:<time>:tabs` | hash | uid → how many of the user's clientIds are in the time channel |
//! | `time:<time>:started` | hash | uid → when the running timer started (ms) |
//! | `time:<time>:restored` | hash | uid → 1 while the running session was rebuilt after Redis lost it |
//! | `time:<time>:spans` | hash | uid → intervals of the clientIds that left the running session (`s:e,…`, ms) |
//! | `clients:pages:<b>` | hash | clientId → the page state it last reported, since when, and its latest report (`a\|<ms>\|<ms>`, `i\|…`, `h\|…`) |
//! | `room:<room>:pages` | hash | `<uid>:<a\|i\|h>` → how many of the user's tabs in the room are in that state |
//!
//! Every live clientId is one field of one hash, its values packed in one
//! string (rooms and times are channel names, which hold no `|`; the name
//! comes last and may hold anything): a key of its own per clientId would
//! cost Redis a third more memory. Each kind of a clientId's own entries
//! is spread over [`BUCKETS`] keys (`<b>` is [`bucket`] of the clientId),
//! so that each stays small enough for Redis's compact encoding (a
//! listpack: by default up to 128 entries of up to 64 bytes), and its
//! last-seen time is in its packed value, so that the clientId is stored
//! once: at 100,000 clientIds that costs about half of what one big hash
//! and a sorted set of last-seen times cost (`bin/bench`, section 4). The
//! sweep reads only the buckets `clients:due` says may hold a stale one.
//!
//! Scripts build key names from the prefix, so this store is for a single
//! Redis server (or a primary with replicas), not Redis Cluster.

use crate::auth::{Auth, User};
use crate::clock;
use crate::error::StoreError;
use crate::presence::{
    ClientRecord, ConnectOutcome, DisconnectOutcome, HotStore, PageState, StateOutcome,
};
use parking_lot::Mutex;
use redis::{Client, Connection, Script, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Each script is the shared prelude (key names and the packed format)
/// followed by its own body.
macro_rules! script {
    ($file:literal) => {
        concat!(include_str!("lua/prelude.lua"), include_str!($file))
    };
}

const CONNECT: &str = script!("lua/connect.lua");
const DISCONNECT: &str = script!("lua/disconnect.lua");
const RESTORE: &str = script!("lua/restore.lua");
const STATE: &str = script!("lua/state.lua");
const UPGRADE: &str = script!("lua/upgrade.lua");
const TOUCH: &str = script!("lua/touch.lua");
const SWEEP: &str = script!("lua/sweep.lua");

/// Due buckets a sweep script reads at most.
const SWEEP_BUCKETS: u32 = 128;
/// How long a clientId a sweep returned is left to the sweeper to end: if
/// it is still there after it (the sweeper failed or stopped), a sweep
/// returns it again.
const SWEEP_LEASE_MS: i64 = 30_000;

/// How many keys each kind of a clientId's own entries is spread over.
pub const BUCKETS: u32 = 2048;

/// The bucket of a clientId's entries, as the scripts' prelude computes it.
pub fn bucket(client_id: &str) -> u32 {
    client_id
        .bytes()
        .fold(0, |h, b| (h * 31 + u32::from(b)) % BUCKETS)
}

pub struct RedisStore {
    client: Client,
    prefix: String,
    conn: Mutex<Option<Connection>>,
    connect_script: Script,
    disconnect_script: Script,
    restore_script: Script,
    state_script: Script,
    upgrade_script: Script,
    touch_script: Script,
    sweep_script: Script,
    /// Bumped each time a connection fails (see [`HotStore::generation`]).
    generation: AtomicU64,
    /// With Faye's engine on Redis: its clients key (`<ns>/clients`) and
    /// Faye's timeout (ms). A connect is recorded only for a clientId the
    /// engine knows, and a clientId is stale only if the engine has not
    /// seen it either (its polls may reach any process).
    faye_engine: Option<(String, i64)>,
}

impl RedisStore {
    /// `url` is a `redis://` URL; `namespace` becomes the key prefix `/<ns>/`.
    pub fn new(url: &str, namespace: &str) -> Result<Self, StoreError> {
        let client = Client::open(url)?;
        Ok(Self {
            client,
            prefix: format!("/{namespace}/"),
            conn: Mutex::new(None),
            connect_script: Script::new(CONNECT),
            disconnect_script: Script::new(DISCONNECT),
            restore_script: Script::new(RESTORE),
            state_script: Script::new(STATE),
            upgrade_script: Script::new(UPGRADE),
            touch_script: Script::new(TOUCH),
            sweep_script: Script::new(SWEEP),
            generation: AtomicU64::new(0),
            faye_engine: None,
        })
    }

    /// Presence for Faye's engine on Redis in `namespace`, whose clients
    /// time out after `timeout_ms` (see [`crate::engine`]).
    pub fn with_faye_engine(mut self, namespace: &str, timeout_ms: i64) -> Self {
        self.faye_engine = Some((format!("{namespace}/clients"), timeout_ms));
        self
    }

    /// Runs `f` on a live connection, opening one if needed; a failed
    /// connection is dropped so that the next call reconnects.
    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut guard = self.conn.lock();
        if guard.is_none() {
            let conn = self
                .client
                .get_connection_with_timeout(Duration::from_secs(2))
                .inspect_err(|_| {
                    self.generation.fetch_add(1, Ordering::SeqCst);
                })?;
            conn.set_read_timeout(Some(Duration::from_secs(5)))?;
            conn.set_write_timeout(Some(Duration::from_secs(5)))?;
            *guard = Some(conn);
        }
        let conn = guard.as_mut().expect("connection just opened");
        match f(conn) {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                    *guard = None;
                    self.generation.fetch_add(1, Ordering::SeqCst);
                }
                Err(e.into())
            }
        }
    }

    /// A key of this store, as the scripts' prelude builds it too.
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The key of the bucket `b` of a kind of clientId entries
    /// (`clients:info`, `clients:pages`).
    fn bucket_key(&self, kind: &str, b: u32) -> String {
        format!("{}{kind}:{b}", self.prefix)
    }

    fn room_key(&self, room: &str, what: &str) -> String {
        format!("{}room:{room}:{what}", self.prefix)
    }

    fn time_key(&self, time: &str, what: &str) -> String {
        format!("{}time:{time}:{what}", self.prefix)
    }

    /// Refuses a Redis server older than the commands the scripts use
    /// (`ZADD … GT` needs 6.2): better said once at start than retried
    /// forever. An error reaching the server is returned as it is.
    pub fn check_version(&self) -> Result<(), StoreError> {
        let info: String = self.with_conn(|c| redis::cmd("INFO").arg("server").query(c))?;
        match server_version(&info) {
            Some(version) if version < MINIMUM_VERSION => Err(StoreError::Rejected(format!(
                "Redis {}.{}.{} is too old: faye-online needs Redis {}.{} or later",
                version.0, version.1, version.2, MINIMUM_VERSION.0, MINIMUM_VERSION.1
            ))),
            _ => Ok(()),
        }
    }

    /// The Redis pub/sub channel on which processes share publications.
    pub fn broadcast_channel(&self) -> String {
        self.key("user_lists")
    }

    /// How many connections (one per live process) listen for broadcasts.
    pub fn listeners(&self) -> Result<i64, StoreError> {
        let channel = self.broadcast_channel();
        let (_, n): (String, i64) =
            self.with_conn(|c| redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel).query(c))?;
        Ok(n)
    }

    /// Hands every payload broadcast by any process to `deliver`, until
    /// `stop` is set; reconnects after failures, reporting each to `on_error`,
    /// and calls `subscribed` after each (re)subscription.
    pub fn listen(
        &self,
        stop: &AtomicBool,
        mut subscribed: impl FnMut(),
        mut deliver: impl FnMut(String),
        mut on_error: impl FnMut(&StoreError),
    ) {
        let channel = self.broadcast_channel();
        while !stop.load(Ordering::SeqCst) {
            let result = (|| -> redis::RedisResult<()> {
                let mut conn = self
                    .client
                    .get_connection_with_timeout(Duration::from_secs(2))?;
                conn.set_read_timeout(Some(Duration::from_millis(500)))?;
                let mut pubsub = conn.as_pubsub();
                pubsub.subscribe(&channel)?;
                subscribed();
                while !stop.load(Ordering::SeqCst) {
                    match pubsub.get_message() {
                        Ok(msg) => {
                            if let Ok(payload) = msg.get_payload::<String>() {
                                deliver(payload);
                            }
                        }
                        Err(e) if e.is_timeout() => continue,
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            })();
            if let Err(e) = result {
                on_error(&e.into());
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }

    /// Deletes every key under this store's prefix (for tests and resets).
    pub fn clear(&self) -> Result<(), StoreError> {
        let pattern = format!("{}*", self.prefix);
        self.with_conn(|c| {
            let keys: Vec<String> = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .clone()
                .iter(c)?
                .collect();
            for chunk in keys.chunks(500) {
                redis::cmd("DEL").arg(chunk).query::<()>(c)?;
            }
            Ok(())
        })
    }
}

/// The oldest Redis the store works with (`ZADD … GT`, `ZRANGE … BYSCORE`).
const MINIMUM_VERSION: (u32, u32, u32) = (6, 2, 0);

/// `redis_version` from the text of `INFO server`.
fn server_version(info: &str) -> Option<(u32, u32, u32)> {
    let line = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("redis_version:"))?;
    let mut parts = line.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

fn bad_reply(what: &str, v: &Value) -> StoreError {
    StoreError::other(format!("redis: unexpected reply to {what}: {v:?}"))
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A clientId's packed values: `uid|room|time|joined|uname`.
/// A clientId's packed values: its identity, when it joined and when it
/// was last seen (ms; packed in base 36).
fn unpack(packed: &str) -> Option<(Auth, i64, i64)> {
    let mut parts = packed.splitn(6, '|');
    let uid = parts.next()?.parse().ok()?;
    let room = parts.next()?.to_owned();
    let time = parts.next()?.to_owned();
    let joined_ms = i64::from_str_radix(parts.next()?, 36).ok()?;
    let seen_ms = i64::from_str_radix(parts.next()?, 36).ok()?;
    let uname = parts.next()?.to_owned();
    Some((
        Auth {
            user: User { uid, uname },
            room,
            time,
        },
        joined_ms,
        seen_ms,
    ))
}

fn auth_from(fields: &[Value]) -> Option<Auth> {
    Some(Auth {
        user: User {
            uid: as_string(&fields[0])?.parse().ok()?,
            uname: as_string(&fields[1])?,
        },
        room: as_string(&fields[2])?,
        time: as_string(&fields[3])?,
    })
}

impl HotStore for RedisStore {
    fn connect(
        &self,
        client_id: &str,
        auth: &Auth,
        now_ms: i64,
    ) -> Result<ConnectOutcome, StoreError> {
        let (engine_clients, cutoff) = match &self.faye_engine {
            // As Faye's engine decides whether a client exists.
            Some((key, timeout_ms)) => (key.as_str(), now_ms - timeout_ms * 16 / 10),
            None => ("", 0),
        };
        let reply: Value = self.with_conn(|c| {
            self.connect_script
                .arg(&self.prefix)
                .arg(client_id)
                .arg(auth.user.uid)
                .arg(&auth.user.uname)
                .arg(&auth.room)
                .arg(&auth.time)
                .arg(now_ms)
                .arg(engine_clients)
                .arg(cutoff)
                .invoke(c)
        })?;
        let Value::Array(items) = &reply else {
            return Err(bad_reply("connect", &reply));
        };
        match items.first().and_then(as_i64) {
            Some(0) => Ok(ConnectOutcome::AlreadyKnown),
            Some(3) => Ok(ConnectOutcome::UnknownClient),
            Some(1) if items.len() == 3 => Ok(ConnectOutcome::Joined {
                room_joined: matches!(as_i64(&items[1]), Some(1 | 2)),
                room_occupied: as_i64(&items[1]) == Some(2),
                timer_started: as_i64(&items[2]) == Some(1),
            }),
            Some(2) if items.len() == 5 => auth_from(&items[1..5])
                .map(ConnectOutcome::Conflict)
                .ok_or_else(|| bad_reply("connect", &reply)),
            _ => Err(bad_reply("connect", &reply)),
        }
    }

    fn disconnect(
        &self,
        client_id: &str,
        at_ms: i64,
    ) -> Result<Option<DisconnectOutcome>, StoreError> {
        let reply: Value = self.with_conn(|c| {
            self.disconnect_script
                .arg(&self.prefix)
                .arg(client_id)
                .arg(at_ms)
                .invoke(c)
        })?;
        let Value::Array(items) = &reply else {
            return Err(bad_reply("disconnect", &reply));
        };
        match items.first().and_then(as_i64) {
            Some(0) => Ok(None),
            Some(1) if items.len() == 14 => {
                let auth =
                    auth_from(&items[1..5]).ok_or_else(|| bad_reply("disconnect", &reply))?;
                let page = as_string(&items[11])
                    .and_then(|l| PageState::from_letter(&l))
                    .zip(as_i64(&items[12]));
                let user_state_now = match as_string(&items[13]).as_deref() {
                    Some("-") | None => None,
                    Some(letter) => Some(PageState::from_letter(letter)),
                };
                Ok(Some(DisconnectOutcome {
                    auth,
                    room_left: matches!(as_i64(&items[5]), Some(1 | 2)),
                    room_vacated: as_i64(&items[5]) == Some(2),
                    timer_started_at: as_i64(&items[6]),
                    timer_ended_at: as_i64(&items[7]).unwrap_or(at_ms),
                    timer_credited_ms: as_i64(&items[8]).unwrap_or(0),
                    timer_restored: as_i64(&items[9]) == Some(1),
                    joined_ms: as_i64(&items[10]).unwrap_or(at_ms),
                    page,
                    user_state_now,
                }))
            }
            _ => Err(bad_reply("disconnect", &reply)),
        }
    }

    fn set_state(
        &self,
        client_id: &str,
        state: PageState,
        at_ms: i64,
    ) -> Result<Option<StateOutcome>, StoreError> {
        let reply: Value = self.with_conn(|c| {
            self.state_script
                .arg(&self.prefix)
                .arg(client_id)
                .arg(state.letter())
                .arg(at_ms)
                .invoke(c)
        })?;
        let Value::Array(items) = &reply else {
            return Err(bad_reply("state", &reply));
        };
        let letter = |v: &Value| as_string(v).and_then(|l| PageState::from_letter(&l));
        match items.first().and_then(as_i64) {
            Some(0) => Ok(None),
            Some(1) if items.len() == 9 => Ok(Some(StateOutcome {
                auth: auth_from(&items[1..5]).ok_or_else(|| bad_reply("state", &reply))?,
                previous: letter(&items[5]).zip(as_i64(&items[6])),
                user_before: letter(&items[7]),
                user_after: letter(&items[8]),
            })),
            _ => Err(bad_reply("state", &reply)),
        }
    }

    fn pages(&self, client_ids: &[String]) -> Result<Vec<Option<(PageState, i64)>>, StoreError> {
        let mut out = vec![None; client_ids.len()];
        // The positions of the clientIds in each bucket.
        let mut groups: HashMap<u32, Vec<usize>> = HashMap::new();
        for (at, id) in client_ids.iter().enumerate() {
            groups.entry(bucket(id)).or_default().push(at);
        }
        let groups: Vec<(u32, Vec<usize>)> = groups.into_iter().collect();
        for chunk in groups.chunks(256) {
            let mut pipe = redis::pipe();
            for (b, positions) in chunk {
                let cmd = pipe.cmd("HMGET").arg(self.bucket_key("clients:pages", *b));
                for at in positions {
                    cmd.arg(&client_ids[*at]);
                }
            }
            let replies: Vec<Vec<Option<String>>> = self.with_conn(|c| pipe.query(c))?;
            for ((_, positions), values) in chunk.iter().zip(replies) {
                for (at, v) in positions.iter().zip(values) {
                    out[*at] = v.as_deref().and_then(|v| {
                        let mut parts = v.split('|');
                        let state = PageState::from_letter(parts.next()?)?;
                        Some((state, parts.next()?.parse().ok()?))
                    });
                }
            }
        }
        Ok(out)
    }

    fn room_users(&self, room: &str) -> Result<Vec<User>, StoreError> {
        let key = self.room_key(room, "users");
        let pairs: Vec<(String, String)> =
            self.with_conn(|c| redis::cmd("HGETALL").arg(&key).query(c))?;
        let mut users: Vec<User> = pairs
            .into_iter()
            .filter_map(|(uid, uname)| {
                Some(User {
                    uid: uid.parse().ok()?,
                    uname,
                })
            })
            .collect();
        users.sort();
        Ok(users)
    }

    fn room_states(&self, room: &str) -> Result<HashMap<u64, PageState>, StoreError> {
        let key = self.room_key(room, "pages");
        let counts: HashMap<String, i64> =
            self.with_conn(|c| redis::cmd("HGETALL").arg(&key).query(c))?;
        let mut states: HashMap<u64, PageState> = HashMap::new();
        for (field, count) in counts {
            let Some((uid, letter)) = field.split_once(':') else {
                continue;
            };
            let (Ok(uid), Some(state)) = (uid.parse(), PageState::from_letter(letter)) else {
                continue;
            };
            if count > 0 {
                let entry = states.entry(uid).or_insert(state);
                *entry = (*entry).min(state);
            }
        }
        Ok(states)
    }

    fn room_count(&self, room: &str) -> Result<usize, StoreError> {
        let key = self.room_key(room, "users");
        self.with_conn(|c| redis::cmd("HLEN").arg(&key).query(c))
    }

    fn room_has(&self, room: &str, uid: u64) -> Result<bool, StoreError> {
        let key = self.room_key(room, "users");
        self.with_conn(|c| redis::cmd("HEXISTS").arg(&key).arg(uid).query(c))
    }

    fn timer_started_at(&self, uid: u64, time: &str) -> Result<Option<i64>, StoreError> {
        let key = self.time_key(time, "started");
        self.with_conn(|c| redis::cmd("HGET").arg(&key).arg(uid).query(c))
    }

    fn touch(&self, seen: &[(String, i64)]) -> Result<(), StoreError> {
        for chunk in seen.chunks(500) {
            let mut invocation = self.touch_script.arg(&self.prefix);
            for (client_id, at) in chunk {
                invocation.arg(client_id).arg(*at);
            }
            self.with_conn(|c| invocation.invoke::<()>(c))?;
        }
        Ok(())
    }

    fn last_seen(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        let key = self.bucket_key("clients:info", bucket(client_id));
        let packed: Option<String> =
            self.with_conn(|c| redis::cmd("HGET").arg(&key).arg(client_id).query(c))?;
        Ok(packed.as_deref().and_then(unpack).map(|(_, _, seen)| seen))
    }

    fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let mut out = Vec::new();
        let buckets: Vec<u32> = (0..BUCKETS).collect();
        for chunk in buckets.chunks(256) {
            let mut pipe = redis::pipe();
            for b in chunk {
                pipe.cmd("HGETALL").arg(self.bucket_key("clients:info", *b));
            }
            let replies: Vec<Vec<(String, String)>> = self.with_conn(|c| pipe.query(c))?;
            for (client_id, packed) in replies.into_iter().flatten() {
                let Some((auth, joined_ms, last_seen_ms)) = unpack(&packed) else {
                    continue;
                };
                out.push(ClientRecord {
                    client_id,
                    auth,
                    joined_ms,
                    last_seen_ms,
                });
            }
        }
        Ok(out)
    }

    fn stale_clients(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        // The due buckets, a bounded number per script call and per sweep.
        let mut rows: Vec<(String, i64)> = Vec::new();
        for _ in 0..(BUCKETS / SWEEP_BUCKETS) {
            if rows.len() >= limit {
                break;
            }
            let mut invocation = self.sweep_script.arg(&self.prefix);
            invocation
                .arg(before_ms)
                .arg(limit - rows.len())
                .arg(SWEEP_BUCKETS)
                .arg(SWEEP_LEASE_MS);
            let mut reply: Vec<Value> = self.with_conn(|c| invocation.invoke(c))?;
            let left = reply.pop().as_ref().and_then(as_i64).unwrap_or(0);
            for pair in reply.chunks(2) {
                if let [id, seen] = pair {
                    if let (Some(id), Some(seen)) = (as_string(id), as_string(seen)) {
                        rows.push((id, seen.parse().unwrap_or(0)));
                    }
                }
            }
            if left == 0 {
                break;
            }
        }
        rows.sort_by_key(|(_, seen)| *seen);
        let Some((engine_clients, _)) = &self.faye_engine else {
            return Ok(rows);
        };
        if rows.is_empty() {
            return Ok(rows);
        }
        // A client that polls other processes is seen by Faye's engine:
        // stale only if the engine has not seen it since either, and then
        // last seen at the later of the two.
        let ids: Vec<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
        let pings: Vec<Option<f64>> =
            self.with_conn(|c| redis::cmd("ZMSCORE").arg(engine_clients).arg(&ids).query(c))?;
        let mut stale = Vec::with_capacity(rows.len());
        let mut fresh = Vec::new();
        for ((id, seen), ping) in rows.into_iter().zip(pings) {
            let ping = ping.map(|p| p as i64).unwrap_or(0);
            if ping >= before_ms {
                fresh.push((id, ping));
            } else {
                stale.push((id, seen.max(ping)));
            }
        }
        // Alive after all: seen when the engine saw it, which bounds its
        // bucket again.
        self.touch(&fresh)?;
        Ok(stale)
    }

    fn broadcast(&self, payload: &str) -> Result<bool, StoreError> {
        let channel = self.broadcast_channel();
        self.with_conn(|c| {
            redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(payload)
                .query::<i64>(c)
        })?;
        Ok(true)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn outlives_process(&self) -> bool {
        true
    }

    /// Before the buckets, a clientId's entries were fields of three big
    /// keys (`clients` for last-seen times, `clients:info`,
    /// `clients:pages`): each is moved to its bucket, 500 at a time, and
    /// the old keys are deleted once empty.
    fn upgrade_layout(&self) -> Result<usize, StoreError> {
        let old_info = self.key("clients:info");
        let mut moved = 0;
        let mut cursor: u64 = 0;
        loop {
            // A scan may come back empty before its end: the cursor is
            // followed to 0, and the whole is done until the hash is gone.
            let (next, pairs): (u64, Vec<String>) = self.with_conn(|c| {
                redis::cmd("HSCAN")
                    .arg(&old_info)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(500)
                    .query(c)
            })?;
            let ids: Vec<&String> = pairs.iter().step_by(2).collect();
            if !ids.is_empty() {
                let mut invocation = self.upgrade_script.arg(&self.prefix);
                invocation.arg(clock::now_ms());
                for id in &ids {
                    invocation.arg(*id);
                }
                let n: usize = self.with_conn(|c| invocation.invoke(c))?;
                moved += n;
            }
            cursor = next;
            if cursor == 0 {
                let left: i64 = self.with_conn(|c| redis::cmd("EXISTS").arg(&old_info).query(c))?;
                if left == 0 {
                    break;
                }
            }
        }
        let (zset, pages) = (self.key("clients"), self.key("clients:pages"));
        self.with_conn(|c| redis::cmd("DEL").arg(&zset).arg(&pages).query::<()>(c))?;
        Ok(moved)
    }

    fn restore(&self, clients: &[ClientRecord]) -> Result<Vec<String>, StoreError> {
        let mut rooms = Vec::new();
        for chunk in clients.chunks(500) {
            let mut invocation = self.restore_script.arg(&self.prefix);
            for c in chunk {
                invocation
                    .arg(&c.client_id)
                    .arg(c.auth.user.uid)
                    .arg(&c.auth.user.uname)
                    .arg(&c.auth.room)
                    .arg(&c.auth.time)
                    .arg(c.joined_ms)
                    .arg(c.last_seen_ms);
            }
            let changed: Vec<String> = self.with_conn(|conn| invocation.invoke(conn))?;
            rooms.extend(changed);
        }
        rooms.sort();
        rooms.dedup();
        Ok(rooms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the shared contract on a real Redis (see
    /// [`test_redis_url`](crate::test_support::test_redis_url)).
    #[test]
    fn keeps_the_hot_store_contract() {
        let Some(url) = crate::test_support::test_redis_url() else {
            return;
        };
        let ns = format!("fo_core_test_{}", std::process::id());
        let store = RedisStore::new(&url, &ns).unwrap();
        store.clear().unwrap();
        crate::presence::contract::run_all(&store);
        store.clear().unwrap();
        restores_what_a_restarted_redis_lost(&store);
        store.clear().unwrap();
    }

    fn restores_what_a_restarted_redis_lost(store: &RedisStore) {
        use crate::presence::contract::auth;
        let a = auth("/r1/room", "/r1/time", 1, "ann");
        let b = auth("/r1/room", "/r1/time", 2, "bob");
        store.connect("ra1", &a, 1_000).unwrap();
        store.connect("ra2", &a, 2_000).unwrap();
        store.connect("rb1", &b, 3_000).unwrap();
        let live = |id: &str, auth: &Auth, joined: i64| ClientRecord {
            client_id: id.into(),
            auth: auth.clone(),
            joined_ms: joined,
            last_seen_ms: 6_000,
        };
        // Nothing was lost: nothing changes.
        assert!(store.restore(&[live("ra1", &a, 1_000)]).unwrap().is_empty());

        store.clear().unwrap();
        assert!(store.room_users("/r1/room").unwrap().is_empty());
        // Two processes put back their own clientIds, in either order.
        let rooms = store
            .restore(&[live("ra2", &a, 2_000), live("rb1", &b, 3_000)])
            .unwrap();
        assert_eq!(rooms, vec!["/r1/room".to_string()]);
        assert!(store.restore(&[live("ra1", &a, 1_000)]).unwrap().is_empty());
        assert_eq!(
            store.room_users("/r1/room").unwrap(),
            vec![a.user.clone(), b.user.clone()]
        );
        assert_eq!(store.timer_started_at(1, "/r1/time").unwrap(), Some(1_000));
        assert_eq!(store.last_seen("ra1").unwrap(), Some(6_000));
        // A restored clientId is not new: connecting again changes nothing.
        assert_eq!(
            store.connect("ra1", &a, 7_000).unwrap(),
            ConnectOutcome::AlreadyKnown
        );
        let out = store.disconnect("ra1", 8_000).unwrap().unwrap();
        assert_eq!(out.timer_started_at, None);
        let out = store.disconnect("ra2", 9_000).unwrap().unwrap();
        assert!(out.room_left);
        assert_eq!(out.timer_started_at, Some(1_000));
        assert_eq!(out.timer_credited_ms, 8_000);
        assert!(out.timer_restored, "the session was rebuilt");
        // The next session is an ordinary one.
        store.connect("ra3", &a, 10_000).unwrap();
        assert!(
            !store
                .disconnect("ra3", 11_000)
                .unwrap()
                .unwrap()
                .timer_restored
        );
    }

    /// The scripts and this file put a clientId in the same bucket, and a
    /// store started on the layout before the buckets moves what it finds.
    #[test]
    fn buckets_clients_and_moves_the_older_layout() {
        use crate::presence::contract::auth;
        let Some(url) = crate::test_support::test_redis_url() else {
            return;
        };
        let ns = format!("fo_core_buckets_{}", std::process::id());
        let store = RedisStore::new(&url, &ns).unwrap();
        store.clear().unwrap();
        let mut conn = store.client.get_connection().unwrap();
        let a = auth("/b/room", "/b/time", 1, "ann|the first");
        let id = "k0m2b9x1p4q8r7s6t5u3v2w1y0z9a8c";
        store.connect(id, &a, 1_000).unwrap();
        store.set_state(id, PageState::Idle, 1_500).unwrap();
        let b = bucket(id);
        // Fixed values, as the README's formula gives them (and the specs'
        // helper), bytes past 127 included.
        assert_eq!(bucket(""), 0);
        assert_eq!(bucket("a"), 97);
        assert_eq!(bucket("ab"), (97 * 31 + 98) % 2048);
        assert_eq!(bucket("é"), (0xC3 * 31 + 0xA9) % 2048);
        let info: Option<String> = redis::cmd("HGET")
            .arg(store.bucket_key("clients:info", b))
            .arg(id)
            .query(&mut conn)
            .unwrap();
        // 1000 ms is "rs" in base 36.
        assert_eq!(
            info.as_deref(),
            Some("1|/b/room|/b/time|rs|rs|ann|the first")
        );
        assert_eq!(store.last_seen(id).unwrap(), Some(1_000));
        let due: Option<i64> = redis::cmd("ZSCORE")
            .arg(store.key("clients:due"))
            .arg(b)
            .query(&mut conn)
            .unwrap();
        assert_eq!(due, Some(1_000));
        store.touch(&[(id.to_string(), 2_000)]).unwrap();
        assert_eq!(store.last_seen(id).unwrap(), Some(2_000));
        assert_eq!(
            store.pages(&[id.to_string()]).unwrap()[0].map(|p| p.0),
            Some(PageState::Idle)
        );
        assert!(store.stale_clients(2_000, 10).unwrap().is_empty());
        assert_eq!(
            store.stale_clients(2_001, 10).unwrap(),
            vec![(id.to_string(), 2_000)]
        );
        // Returned, it is the sweeper's for the lease: a sweep returns it
        // again only once the lease ran out (the sweeper failed, say) ...
        assert!(store.stale_clients(2_001, 10).unwrap().is_empty());
        assert!(store
            .stale_clients(2_001 + SWEEP_LEASE_MS - 1, 10)
            .unwrap()
            .is_empty());
        assert_eq!(
            store.stale_clients(2_001 + SWEEP_LEASE_MS + 1, 10).unwrap(),
            vec![(id.to_string(), 2_000)]
        );
        // ... or, seen again meanwhile (a poll, or another process's
        // connect), as soon as that is stale.
        store.touch(&[(id.to_string(), 2_500)]).unwrap();
        assert_eq!(
            store.stale_clients(2_501, 10).unwrap(),
            vec![(id.to_string(), 2_500)]
        );
        store.connect(id, &a, 2_400).unwrap();
        assert_eq!(
            store.stale_clients(2_501, 10).unwrap(),
            vec![(id.to_string(), 2_500)],
            "a connect of a known clientId bounds its bucket again"
        );
        store.clear().unwrap();

        // The older layout: three big keys, one with 1,200 clientIds.
        let old_info = store.key("clients:info");
        let old_seen = store.key("clients");
        let old_pages = store.key("clients:pages");
        for i in 0..1_200 {
            let cid = format!("old{i}");
            redis::cmd("HSET")
                .arg(&old_info)
                .arg(&cid)
                .arg(format!("{i}|/old/room|/old/time|{i}|user {i}"))
                .query::<()>(&mut conn)
                .unwrap();
            redis::cmd("ZADD")
                .arg(&old_seen)
                .arg(10_000 + i)
                .arg(&cid)
                .query::<()>(&mut conn)
                .unwrap();
        }
        redis::cmd("HSET")
            .arg(&old_pages)
            .arg("old7")
            .arg("h|5|6")
            .query::<()>(&mut conn)
            .unwrap();
        assert_eq!(store.upgrade_layout().unwrap(), 1_200);
        let left: i64 = redis::cmd("EXISTS")
            .arg(&old_info)
            .arg(&old_seen)
            .arg(&old_pages)
            .query(&mut conn)
            .unwrap();
        assert_eq!(left, 0, "the old keys are gone");
        let clients = store.clients().unwrap();
        assert_eq!(clients.len(), 1_200);
        let c7 = clients.iter().find(|c| c.client_id == "old7").unwrap();
        assert_eq!(
            (c7.auth.user.uid, c7.joined_ms, c7.last_seen_ms),
            (7, 7, 10_007)
        );
        assert_eq!(c7.auth.user.uname, "user 7");
        assert_eq!(
            store.pages(&["old7".to_string()]).unwrap()[0],
            Some((PageState::Hidden, 5))
        );
        assert_eq!(store.upgrade_layout().unwrap(), 0, "nothing left to move");
        store.clear().unwrap();
    }

    #[test]
    fn reads_the_server_version() {
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n";
        assert_eq!(server_version(info), Some((7, 0, 15)));
        assert!(server_version("redis_version:6.0.9").unwrap() < MINIMUM_VERSION);
        assert!(server_version("redis_version:6.2.0").unwrap() >= MINIMUM_VERSION);
        assert_eq!(server_version("nothing here"), None);
        if let Some(url) = crate::test_support::test_redis_url() {
            RedisStore::new(&url, "fo_version")
                .unwrap()
                .check_version()
                .unwrap();
        }
    }

    #[test]
    fn a_failed_connection_changes_the_generation() {
        let store = RedisStore::new("redis://127.0.0.1:1/0", "fo_gen_test").unwrap();
        assert_eq!(store.generation(), 0);
        assert!(store.room_users("/x").is_err());
        assert!(store.generation() > 0);
    }
}
