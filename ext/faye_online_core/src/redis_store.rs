//! The hot store in Redis, shared by every Faye process of a site.
//!
//! Every state change is one Lua script, so two processes can never lose
//! each other's updates. Keys, under the prefix `/<namespace>/`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `client:<clientId>` | hash | uid, uname, room, time of a live clientId |
//! | `clients` | zset | clientId → last seen (ms) |
//! | `room:<room>:users` | hash | uid → uname of the users online in a room |
//! | `room:<room>:uid:<uid>` | set | the user's clientIds in the room |
//! | `time:<time>:uid:<uid>` | set | the user's clientIds in the time channel |
//! | `time:<time>:started` | hash | uid → when the running timer started (ms) |
//! | `time:<time>:until` | hash | uid → latest end of a clientId that left the running session (ms) |
//!
//! Scripts build key names from the prefix, so this store is for a single
//! Redis server (or a primary with replicas), not Redis Cluster.

use crate::auth::{Auth, User};
use crate::error::StoreError;
use crate::presence::{ConnectOutcome, DisconnectOutcome, HotStore};
use parking_lot::Mutex;
use redis::{Client, Connection, Script, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const CONNECT: &str = r"
local p, cid, uid, uname, room, time, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local ck = p .. 'client:' .. cid
local known = redis.call('HMGET', ck, 'uid', 'uname', 'room', 'time')
if known[1] then
  if known[1] == uid and known[2] == uname and known[3] == room and known[4] == time then
    redis.call('ZADD', p .. 'clients', 'GT', now, cid)
    return {0}
  end
  return {2, known[1], known[2], known[3], known[4]}
end
redis.call('HSET', ck, 'uid', uid, 'uname', uname, 'room', room, 'time', time)
redis.call('ZADD', p .. 'clients', now, cid)
local rk = p .. 'room:' .. room .. ':uid:' .. uid
redis.call('SADD', rk, cid)
redis.call('HSET', p .. 'room:' .. room .. ':users', uid, uname)
local joined = 0
if redis.call('SCARD', rk) == 1 then joined = 1 end
local tk = p .. 'time:' .. time .. ':uid:' .. uid
redis.call('SADD', tk, cid)
local started = 0
if redis.call('SCARD', tk) == 1 then
  redis.call('HSET', p .. 'time:' .. time .. ':started', uid, now)
  redis.call('HSET', p .. 'time:' .. time .. ':until', uid, now)
  started = 1
end
return {1, joined, started}
";

const DISCONNECT: &str = r"
local p, cid, at = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ck = p .. 'client:' .. cid
local c = redis.call('HMGET', ck, 'uid', 'uname', 'room', 'time')
if not c[1] then return {0} end
redis.call('DEL', ck)
redis.call('ZREM', p .. 'clients', cid)
local uid, room, time = c[1], c[3], c[4]
local rk = p .. 'room:' .. room .. ':uid:' .. uid
redis.call('SREM', rk, cid)
local left = 0
if redis.call('SCARD', rk) == 0 then
  redis.call('HDEL', p .. 'room:' .. room .. ':users', uid)
  left = 1
end
local tk = p .. 'time:' .. time .. ':uid:' .. uid
redis.call('SREM', tk, cid)
local uk = p .. 'time:' .. time .. ':until'
local upto = tonumber(redis.call('HGET', uk, uid) or '0') or 0
if at > upto then upto = at end
local started = ''
if redis.call('SCARD', tk) == 0 then
  local sk = p .. 'time:' .. time .. ':started'
  started = redis.call('HGET', sk, uid) or ''
  redis.call('HDEL', sk, uid)
  redis.call('HDEL', uk, uid)
else
  redis.call('HSET', uk, uid, upto)
end
return {1, c[1], c[2], c[3], c[4], left, started, upto}
";

pub struct RedisStore {
    client: Client,
    prefix: String,
    conn: Mutex<Option<Connection>>,
    connect_script: Script,
    disconnect_script: Script,
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
        })
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
                .get_connection_with_timeout(Duration::from_secs(2))?;
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
                }
                Err(e.into())
            }
        }
    }

    /// The Redis pub/sub channel on which processes share publications.
    pub fn broadcast_channel(&self) -> String {
        format!("{}user_lists", self.prefix)
    }

    /// How many connections (one per live process) listen for broadcasts.
    pub fn listeners(&self) -> Result<i64, StoreError> {
        let channel = self.broadcast_channel();
        let (_, n): (String, i64) =
            self.with_conn(|c| redis::cmd("PUBSUB").arg("NUMSUB").arg(&channel).query(c))?;
        Ok(n)
    }

    /// Hands every payload broadcast by any process to `deliver`, until
    /// `stop` is set; reconnects after failures, reporting each to `on_error`.
    pub fn listen(
        &self,
        stop: &AtomicBool,
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

fn bad_reply(what: &str, v: &Value) -> StoreError {
    StoreError(format!("redis: unexpected reply to {what}: {v:?}"))
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
        let reply: Value = self.with_conn(|c| {
            self.connect_script
                .arg(&self.prefix)
                .arg(client_id)
                .arg(auth.user.uid)
                .arg(&auth.user.uname)
                .arg(&auth.room)
                .arg(&auth.time)
                .arg(now_ms)
                .invoke(c)
        })?;
        let Value::Array(items) = &reply else {
            return Err(bad_reply("connect", &reply));
        };
        match items.first().and_then(as_i64) {
            Some(0) => Ok(ConnectOutcome::AlreadyKnown),
            Some(1) if items.len() == 3 => Ok(ConnectOutcome::Joined {
                room_joined: as_i64(&items[1]) == Some(1),
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
            Some(1) if items.len() == 8 => {
                let auth =
                    auth_from(&items[1..5]).ok_or_else(|| bad_reply("disconnect", &reply))?;
                Ok(Some(DisconnectOutcome {
                    auth,
                    room_left: as_i64(&items[5]) == Some(1),
                    timer_started_at: as_i64(&items[6]),
                    timer_ended_at: as_i64(&items[7]).unwrap_or(at_ms),
                }))
            }
            _ => Err(bad_reply("disconnect", &reply)),
        }
    }

    fn room_users(&self, room: &str) -> Result<Vec<User>, StoreError> {
        let key = format!("{}room:{}:users", self.prefix, room);
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

    fn timer_started_at(&self, uid: u64, time: &str) -> Result<Option<i64>, StoreError> {
        let key = format!("{}time:{}:started", self.prefix, time);
        self.with_conn(|c| redis::cmd("HGET").arg(&key).arg(uid).query(c))
    }

    fn touch(&self, seen: &[(String, i64)]) -> Result<(), StoreError> {
        if seen.is_empty() {
            return Ok(());
        }
        let key = format!("{}clients", self.prefix);
        self.with_conn(|c| {
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(&key).arg("XX").arg("GT");
            for (client_id, at) in seen {
                cmd.arg(*at).arg(client_id);
            }
            cmd.query::<()>(c)
        })
    }

    fn last_seen(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        let key = format!("{}clients", self.prefix);
        let score: Option<f64> =
            self.with_conn(|c| redis::cmd("ZSCORE").arg(&key).arg(client_id).query(c))?;
        Ok(score.map(|s| s as i64))
    }

    fn stale_clients(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let key = format!("{}clients", self.prefix);
        let rows: Vec<(String, f64)> = self.with_conn(|c| {
            redis::cmd("ZRANGE")
                .arg(&key)
                .arg("-inf")
                .arg(format!("({before_ms}"))
                .arg("BYSCORE")
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .arg("WITHSCORES")
                .query(c)
        })?;
        Ok(rows.into_iter().map(|(id, s)| (id, s as i64)).collect())
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the shared contract on a real Redis: `FAYE_ONLINE_TEST_REDIS_URL`,
    /// or a local server on the default port when one answers.
    #[test]
    fn keeps_the_hot_store_contract() {
        let url = std::env::var("FAYE_ONLINE_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".into());
        let ns = format!("fo_core_test_{}", std::process::id());
        let store = RedisStore::new(&url, &ns).unwrap();
        if let Err(e) = store.clear() {
            if std::env::var("FAYE_ONLINE_TEST_REDIS_URL").is_ok() {
                panic!("Redis at {url} is required: {e}");
            }
            eprintln!("skipped: no Redis at {url} ({e})");
            return;
        }
        crate::presence::contract::run_all(&store);
        store.clear().unwrap();
    }
}
