//! The tracker: decides on the reactor thread, works on its own threads.
//!
//! [`Tracker::incoming`] runs inside Faye's `incoming` hook, on the one
//! thread that serves every client, so it never waits on I/O: it checks the
//! message against a small in-process table of this process's clientIds and,
//! when something really changed, queues an event. Two threads do the rest:
//!
//! - the *presence worker* applies events to the hot store (memory or Redis)
//!   and turns what changed into durable records and publications;
//! - the *writer* applies durable records to SQL, retrying until they land,
//!   in order.
//!
//! Publications go to a queue that the host drains on its own thread; a
//! byte written to a socket pair wakes it (see [`Tracker::take_waker_fd`]).

use crate::auth::{Auth, User};
use crate::channel;
use crate::clock;
use crate::config::Config;
use crate::durable::{self, DurableStore, Record};
use crate::error::{BayeuxError, StoreError};
use crate::memory::MemoryStore;
use crate::message::{valid_client_id, Incoming, Verdict};
use crate::presence::{ConnectOutcome, HotStore, LiveClient};
use crate::redis_store::RedisStore;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Something for the host to do on its own thread.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// Publish `data` on `channel` to every subscriber.
    Publish { channel: String, data: Value },
    /// Send `data` on `channel` to one client only.
    Deliver {
        client_id: String,
        channel: String,
        data: Value,
    },
    /// A line for the host's log.
    Log { level: LogLevel, text: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

enum Event {
    Connect {
        client_id: String,
        auth: Auth,
        at: i64,
    },
    Disconnect {
        client_id: String,
        at: i64,
    },
    /// A new subscriber of a room's user_list (or, with `changes`, its
    /// user_changes) gets the whole list once.
    Snapshot {
        client_id: String,
        room: String,
        changes: bool,
    },
    Touch(Vec<(String, i64)>),
    Sweep,
    /// At start: remove from the SQL online lists the users whom the hot
    /// store does not have online (left behind by a crash).
    Repair,
    /// The shared store came back after an outage: put back this process's
    /// clientIds and send every watched room's list again.
    Resync,
    Barrier(Sender<()>),
    Stop,
}

enum Write_ {
    Record(Record),
    Barrier(Sender<()>),
    Stop,
}

/// The host's queue of notifications and the socket that wakes it.
struct Outbox {
    queue: Mutex<Vec<Notification>>,
    waker: Mutex<Option<UnixStream>>,
}

impl Outbox {
    fn push(&self, n: Notification) {
        let was_empty = {
            let mut q = self.queue.lock();
            let was_empty = q.is_empty();
            q.push(n);
            was_empty
        };
        if was_empty {
            if let Some(w) = self.waker.lock().as_mut() {
                // A full socket already holds a wake-up: nothing is lost.
                let _ = w.write(&[1]);
            }
        }
    }

    fn log(&self, level: LogLevel, text: impl Into<String>) {
        self.push(Notification::Log {
            level,
            text: text.into(),
        });
    }
}

/// This process's clientIds: those Faye handshook here, with the auth they
/// connected with and when they were last seen.
#[derive(Default)]
struct LocalClient {
    auth: Option<Auth>,
    last_seen: i64,
}

#[derive(Default)]
struct Local {
    clients: HashMap<String, LocalClient>,
    /// last-seen times not yet written to the hot store
    seen: HashMap<String, i64>,
    /// rooms whose user_list a client of this process subscribed to
    watched: HashSet<String>,
}

/// Read access for the app: who is online, how long a user spent.
pub struct Query {
    hot: Option<Arc<dyn HotStore>>,
    durable: Mutex<DurableStore>,
}

impl Query {
    /// A query handle for a process that runs no server (a Rails app): it
    /// reads Redis when there is one, else the durable store.
    pub fn new(config: &Config) -> Result<Query, StoreError> {
        let hot: Option<Arc<dyn HotStore>> = match &config.redis_url {
            Some(url) => Some(Arc::new(RedisStore::new(url, &config.namespace)?)),
            None => None,
        };
        Ok(Query {
            hot,
            durable: Mutex::new(DurableStore::new(&config.database_url)),
        })
    }

    /// The users online in `room`, sorted by uid: from the hot store, or
    /// else from the durable list and the names recorded beside it.
    pub fn online_users(&self, room: &str) -> Result<Vec<User>, StoreError> {
        if channel::check(room).is_err() {
            return Ok(Vec::new());
        }
        match &self.hot {
            Some(hot) => hot.room_users(room),
            None => {
                let mut durable = self.durable.lock();
                let uids = durable.online_uids(room)?;
                uids.into_iter()
                    .map(|uid| {
                        Ok(User {
                            uid,
                            uname: durable.user_name(uid)?,
                        })
                    })
                    .collect()
            }
        }
    }

    /// Seconds `uid` spent in `time`, including a running session.
    pub fn online_time(&self, uid: u64, time: &str) -> Result<i64, StoreError> {
        if channel::check(time).is_err() {
            return Ok(0);
        }
        let now = clock::now_ms();
        let times = self.durable.lock().online_times(uid)?;
        // The hot store knows a running session to the millisecond, even
        // before its start has reached SQL.
        let running = match &self.hot {
            Some(hot) => hot
                .timer_started_at(uid, time)?
                .map(|started| clock::elapsed_secs(started, now)),
            None => durable::running_secs(&times, time, now),
        };
        Ok(durable::spent_secs(&times, time) + running.unwrap_or(0))
    }
}

impl Query {
    /// The login/logout log as sessions, one per clientId (see
    /// [`DurableStore::sessions`]).
    pub fn sessions(
        &self,
        uid: Option<u64>,
        after_ms: i64,
        before_ms: i64,
    ) -> Result<Vec<durable::Session>, StoreError> {
        self.durable.lock().sessions(uid, after_ms, before_ms)
    }

    /// Who is online where, with their clientIds, and whose lesson timers
    /// run: from the hot store, or else from SQL (the online lists, and the
    /// clientIds with a login row but no logout row yet).
    pub fn status(&self) -> Result<Value, StoreError> {
        use std::collections::BTreeMap;
        type Entry = (String, Vec<String>, Option<i64>);
        let mut rooms: BTreeMap<String, BTreeMap<u64, Entry>> = BTreeMap::new();
        let mut lessons: BTreeMap<String, BTreeMap<u64, Entry>> = BTreeMap::new();
        let source = match &self.hot {
            Some(hot) => {
                for c in hot.clients()? {
                    let uid = c.auth.user.uid;
                    let room = rooms.entry(c.auth.room.clone()).or_default();
                    let e = room
                        .entry(uid)
                        .or_insert_with(|| (c.auth.user.uname.clone(), Vec::new(), None));
                    e.1.push(c.client_id.clone());
                    let lesson = lessons.entry(c.auth.time.clone()).or_default();
                    let e = lesson
                        .entry(uid)
                        .or_insert_with(|| (c.auth.user.uname.clone(), Vec::new(), None));
                    e.1.push(c.client_id);
                }
                for (time, users) in lessons.iter_mut() {
                    for (uid, e) in users.iter_mut() {
                        e.2 = hot.timer_started_at(*uid, time)?;
                    }
                }
                "hot"
            }
            None => {
                let mut durable = self.durable.lock();
                for (room, users) in durable.online_lists()? {
                    let entry = rooms.entry(room).or_default();
                    for u in users {
                        entry.insert(u.uid, (u.uname, Vec::new(), None));
                    }
                }
                let now = clock::now_ms();
                for s in durable.sessions(None, now, now + 86_400_000)? {
                    if s.left_ms.is_some() {
                        continue;
                    }
                    let e = lessons
                        .entry(s.lesson.clone())
                        .or_default()
                        .entry(s.uid)
                        .or_insert_with(|| (s.uname.clone(), Vec::new(), Some(s.joined_ms)));
                    e.1.push(s.client_id);
                    e.2 = e.2.map(|t| t.min(s.joined_ms));
                }
                "sql"
            }
        };
        let render = |m: BTreeMap<String, BTreeMap<u64, Entry>>, key: &str| -> Vec<Value> {
            m.into_iter()
                .map(|(name, users)| {
                    let users: Vec<Value> = users
                        .into_iter()
                        .map(|(uid, (uname, mut ids, started))| {
                            ids.sort();
                            let mut u = json!({"uid": uid, "uname": uname, "client_ids": ids});
                            if key == "lesson" {
                                u["started_ms"] = json!(started);
                            }
                            u
                        })
                        .collect();
                    json!({key: name, "count": users.len(), "users": users})
                })
                .collect()
        };
        Ok(json!({
            "source": source,
            "rooms": render(rooms, "room"),
            "lessons": render(lessons, "lesson"),
        }))
    }
}

/// A message of `<room>/user_changes`: the count and what changed, or for
/// a new subscriber the whole list (`users`).
pub fn user_changes_message(
    room: &str,
    count: usize,
    users: Option<&[User]>,
    change: Option<(&str, &User)>,
) -> Value {
    let mut data = json!({"count": count, "channel_name": room});
    if let Some(users) = users {
        data["users"] = json!(users);
    }
    if let Some((kind, user)) = change {
        data[kind] = json!([user]);
    }
    data
}

/// The user_list message of a room: the old gem's `count`, `user_list` and
/// `channel_name`, plus `users` with names and what changed.
pub fn user_list_message(room: &str, users: &[User], change: Option<(&str, &User)>) -> Value {
    let mut data = json!({
        "count": users.len(),
        "user_list": users.iter().map(|u| u.uid).collect::<Vec<_>>(),
        "channel_name": room,
        "users": users,
    });
    if let Some((kind, user)) = change {
        data[kind] = json!([user]);
    }
    data
}

pub struct Tracker {
    query: Arc<Query>,
    local: Arc<Mutex<Local>>,
    outbox: Arc<Outbox>,
    events: Mutex<Sender<Event>>,
    waker_fd: Mutex<Option<UnixStream>>,
    stopping: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    secret: Option<Vec<u8>>,
}

impl Tracker {
    pub fn new(config: &Config) -> Result<Tracker, StoreError> {
        let redis = match &config.redis_url {
            Some(url) => Some(Arc::new(RedisStore::new(url, &config.namespace)?)),
            None => None,
        };
        let hot: Arc<dyn HotStore> = match &redis {
            Some(r) => r.clone(),
            None => Arc::new(MemoryStore::new()),
        };
        let query = Arc::new(Query {
            hot: Some(hot.clone()),
            durable: Mutex::new(DurableStore::new(&config.database_url)),
        });
        let (wake_read, wake_write) =
            UnixStream::pair().map_err(|e| StoreError(format!("socket pair: {e}")))?;
        wake_write
            .set_nonblocking(true)
            .map_err(|e| StoreError(format!("socket pair: {e}")))?;
        let outbox = Arc::new(Outbox {
            queue: Mutex::new(Vec::new()),
            waker: Mutex::new(Some(wake_write)),
        });
        let local = Arc::new(Mutex::new(Local::default()));
        let stopping = Arc::new(AtomicBool::new(false));
        let (events_tx, events_rx) = mpsc::channel();
        // First of all events: nothing a client does can come before it.
        let _ = events_tx.send(Event::Repair);
        let (writes_tx, writes_rx) = mpsc::channel();

        let mut threads = Vec::new();
        let pending = Arc::new(AtomicUsize::new(0));
        // The writer reads memberships on a connection of its own, so that
        // it never waits on the presence worker's.
        let live: Arc<dyn HotStore> = match &config.redis_url {
            Some(url) => Arc::new(RedisStore::new(url, &config.namespace)?),
            None => hot.clone(),
        };
        let writer = Writer {
            durable: DurableStore::new(&config.database_url),
            live,
            pending: pending.clone(),
            outbox: outbox.clone(),
            stopping: stopping.clone(),
        };
        threads.push(spawn("faye-online-writer", move || writer.run(writes_rx))?);
        let worker = Worker {
            hot,
            writes: writes_tx,
            pending,
            max_pending: config.max_pending_records,
            dropped: AtomicUsize::new(0),
            outbox: outbox.clone(),
            local: local.clone(),
            stopping: stopping.clone(),
            session_timeout_ms: config.session_timeout_ms,
            full_lists: config.full_lists,
            live: RefCell::new(HashMap::new()),
            query: query.clone(),
            restored_generation: Cell::new(0),
            resync: Cell::new(false),
            snapshots_due: RefCell::new(Vec::new()),
        };
        threads.push(spawn("faye-online-presence", move || {
            worker.run(events_rx)
        })?);
        let ticker_tx = events_tx.clone();
        let ticker_local = local.clone();
        let ticker_stop = stopping.clone();
        let gc_every = config.gc_interval_ms;
        threads.push(spawn("faye-online-ticker", move || {
            ticker(ticker_tx, ticker_local, ticker_stop, gc_every)
        })?);

        if let Some(redis) = redis {
            let outbox = outbox.clone();
            let stop = stopping.clone();
            let resync = events_tx.clone();
            threads.push(spawn("faye-online-listener", move || {
                let failing = std::cell::Cell::new(false);
                let mut subscriptions = 0u64;
                redis.listen(
                    &stop,
                    || {
                        // After the first subscription, a new one means that
                        // Redis was away: it may have restarted empty, and
                        // publications were missed meanwhile.
                        subscriptions += 1;
                        if subscriptions > 1 {
                            outbox.log(LogLevel::Info, "Redis is back: restoring presence");
                            let _ = resync.send(Event::Resync);
                        }
                    },
                    |payload| {
                        failing.set(false);
                        match serde_json::from_str::<Value>(&payload) {
                            Ok(Value::Object(mut m)) => {
                                let channel = m
                                    .remove("channel")
                                    .and_then(|c| c.as_str().map(str::to_owned));
                                let data = m.remove("data").unwrap_or(Value::Null);
                                if let Some(channel) = channel {
                                    outbox.push(Notification::Publish { channel, data });
                                }
                            }
                            _ => outbox.log(LogLevel::Warn, "ignored a malformed broadcast"),
                        }
                    },
                    |e| {
                        if !failing.replace(true) {
                            outbox.log(
                                LogLevel::Warn,
                                format!("lost the Redis subscription, reconnecting: {e}"),
                            );
                        }
                    },
                );
            })?);
        }

        let backend = match &config.redis_url {
            Some(url) => format!(
                "Redis {} (namespace {})",
                crate::sql::redact(url),
                config.namespace
            ),
            None => "process memory".to_string(),
        };
        outbox.log(
            LogLevel::Info,
            format!(
                "presence in {backend}, records in {}",
                crate::sql::redact(&config.database_url)
            ),
        );
        if config.secret.is_none() {
            outbox.log(
                LogLevel::Warn,
                "no secret is set: identities are not verified, and any page can claim any uid",
            );
        }
        Ok(Tracker {
            secret: config.secret.as_ref().map(|s| s.as_bytes().to_vec()),
            query,
            local,
            outbox,
            events: Mutex::new(events_tx),
            waker_fd: Mutex::new(Some(wake_read)),
            stopping,
            threads: Mutex::new(threads),
        })
    }

    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The read end of the wake-up socket, handed over once to the host,
    /// which watches it and calls [`Tracker::drain`] when it is readable.
    pub fn take_waker_fd(&self) -> Option<UnixStream> {
        self.waker_fd.lock().take()
    }

    /// Notifications waiting for the host.
    pub fn drain(&self) -> Vec<Notification> {
        std::mem::take(&mut *self.outbox.queue.lock())
    }

    fn send(&self, event: Event) {
        // The worker lives as long as the tracker; a send can only fail
        // after `close`, when dropping the event is right.
        let _ = self.events.lock().send(event);
    }

    /// Faye created `client_id` in this process.
    pub fn handshake(&self, client_id: &str) {
        if !valid_client_id(client_id) {
            return;
        }
        let now = clock::now_ms();
        self.local.lock().clients.insert(
            client_id.to_owned(),
            LocalClient {
                auth: None,
                last_seen: now,
            },
        );
    }

    /// Faye ended `client_id`'s session in this process (explicitly or
    /// because it stopped polling): its time ends when it was last seen.
    pub fn session_ended(&self, client_id: &str) {
        let gone = {
            let mut local = self.local.lock();
            local.seen.remove(client_id);
            local.clients.remove(client_id)
        };
        if let Some(LocalClient {
            auth: Some(_),
            last_seen,
        }) = gone
        {
            self.send(Event::Disconnect {
                client_id: client_id.to_owned(),
                at: last_seen,
            });
        }
    }

    /// The incoming hook: never blocks, never panics on any input.
    pub fn incoming(&self, msg: &Incoming) -> Verdict {
        let now = clock::now_ms();
        let client_id = msg.client_id.as_deref().filter(|c| valid_client_id(c));
        match msg.channel.as_str() {
            "/meta/connect" => {
                let Some(client_id) = client_id else {
                    return Verdict::Pass;
                };
                let (auth, value) = match &msg.auth {
                    None => {
                        self.seen(client_id, now);
                        return Verdict::Pass;
                    }
                    Some(Err(e)) => return Verdict::Refuse(e.clone()),
                    Some(Ok(value)) => match Auth::from_value(value) {
                        Ok(auth) => (auth, value),
                        Err(e) => return Verdict::Refuse(e),
                    },
                };
                self.connect(client_id, auth, value, now)
            }
            "/meta/subscribe" => {
                if let Some(client_id) = client_id {
                    self.seen(client_id, now);
                }
                self.check_subscription(msg, now)
            }
            "/meta/disconnect" => {
                if let Some(client_id) = client_id {
                    let known = {
                        let mut local = self.local.lock();
                        local.seen.remove(client_id);
                        local.clients.remove(client_id)
                    };
                    // Not ours (or never authenticated): the store decides.
                    if !matches!(known, Some(LocalClient { auth: None, .. })) {
                        self.send(Event::Disconnect {
                            client_id: client_id.to_owned(),
                            at: now,
                        });
                    }
                }
                Verdict::Pass
            }
            ch if ch.starts_with("/meta/") => {
                if let Some(client_id) = client_id {
                    self.seen(client_id, now);
                }
                Verdict::Pass
            }
            ch => {
                if let Some(client_id) = client_id {
                    self.seen(client_id, now);
                }
                if channel::is_server_only(ch) {
                    return Verdict::Refuse(BayeuxError::forbidden(
                        ch,
                        "only the server publishes online lists",
                    ));
                }
                Verdict::Pass
            }
        }
    }

    fn seen(&self, client_id: &str, now: i64) {
        let mut local = self.local.lock();
        if let Some(c) = local.clients.get_mut(client_id) {
            c.last_seen = now;
            if c.auth.is_some() {
                // Most messages come from a client already seen this second:
                // update in place, without allocating its id again.
                match local.seen.get_mut(client_id) {
                    Some(at) => *at = now,
                    None => {
                        local.seen.insert(client_id.to_owned(), now);
                    }
                }
            }
        }
    }

    /// With a secret, a room's user_list is only for holders of a valid
    /// token for that room.
    fn check_subscription(&self, msg: &Incoming, now: i64) -> Verdict {
        let Some(secret) = &self.secret else {
            return Verdict::Pass;
        };
        for sub in &msg.subscription {
            if !channel::is_server_only(sub) {
                continue;
            }
            let Some((room, _)) = channel::room_of_list_channel(sub) else {
                return Verdict::Refuse(BayeuxError::forbidden(
                    sub.as_str(),
                    "not a room's user_list",
                ));
            };
            let value = match &msg.auth {
                Some(Ok(value)) => value,
                Some(Err(e)) => return Verdict::Refuse(e.clone()),
                None => {
                    return Verdict::Refuse(BayeuxError::forbidden(
                        sub.as_str(),
                        "subscribing to a user_list needs auth with a token for the room",
                    ))
                }
            };
            let auth = match Auth::from_value(value) {
                Ok(auth) => auth,
                Err(e) => return Verdict::Refuse(e),
            };
            if auth.room != room {
                return Verdict::Refuse(BayeuxError::forbidden(
                    sub.as_str(),
                    "the token is for another room",
                ));
            }
            if let Err(e) = auth.verify(secret, value, now / 1000) {
                return Verdict::Refuse(e);
            }
        }
        Verdict::Pass
    }

    fn connect(&self, client_id: &str, auth: Auth, value: &Value, now: i64) -> Verdict {
        let mut local = self.local.lock();
        let Some(client) = local.clients.get_mut(client_id) else {
            // Not a clientId of this process: Faye answers 401 itself.
            return Verdict::Pass;
        };
        client.last_seen = now;
        match &client.auth {
            Some(known) if *known == auth => {
                local.seen.insert(client_id.to_owned(), now);
                Verdict::Pass
            }
            Some(known) if known.user.uid != auth.user.uid => {
                Verdict::Refuse(BayeuxError::forbidden(
                    "auth.current_user.uid",
                    "this clientId is already connected as another user",
                ))
            }
            Some(_) => Verdict::Refuse(BayeuxError::forbidden(
                "auth",
                "this clientId is already connected to other channels; open a new client",
            )),
            None => {
                // A token is checked once, when the clientId first connects:
                // a page left open past its token's expiry stays online.
                if let Some(secret) = &self.secret {
                    if let Err(e) = auth.verify(secret, value, now / 1000) {
                        return Verdict::Refuse(e);
                    }
                }
                client.auth = Some(auth.clone());
                drop(local);
                self.send(Event::Connect {
                    client_id: client_id.to_owned(),
                    auth,
                    at: now,
                });
                Verdict::Pass
            }
        }
    }

    /// The outgoing hook: after a successful subscription to a room's
    /// user_list, the subscriber gets the current list.
    pub fn subscribed(&self, client_id: &str, subscription: &str) {
        if !valid_client_id(client_id) {
            return;
        }
        if let Some((room, changes)) = channel::room_of_list_channel(subscription) {
            let mut local = self.local.lock();
            if !changes && !local.watched.contains(room) {
                local.watched.insert(room.to_owned());
            }
            drop(local);
            self.send(Event::Snapshot {
                client_id: client_id.to_owned(),
                room: room.to_owned(),
                changes,
            });
        }
    }

    /// Waits until every event queued so far is applied to the hot store and
    /// written to SQL, or until `timeout`; true if everything landed.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        self.send(Event::Barrier(tx));
        rx.recv_timeout(timeout).is_ok()
    }

    /// Flushes (up to `timeout`) and stops the threads.
    pub fn close(&self, timeout: Duration) -> bool {
        if self.stopping.load(Ordering::SeqCst) {
            return true;
        }
        let flushed = self.flush(timeout);
        self.stopping.store(true, Ordering::SeqCst);
        self.send(Event::Stop);
        let threads = std::mem::take(&mut *self.threads.lock());
        if flushed {
            for t in threads {
                let _ = t.join();
            }
        }
        flushed
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.close(Duration::from_secs(5));
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, StoreError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| StoreError(format!("cannot start thread {name}: {e}")))
}

/// Writes last-seen times to the hot store every second and asks for a
/// sweep every `gc_every_ms`.
fn ticker(
    events: Sender<Event>,
    local: Arc<Mutex<Local>>,
    stopping: Arc<AtomicBool>,
    gc_every_ms: i64,
) {
    let tick = Duration::from_millis(250);
    let mut since_touch = Duration::ZERO;
    let mut since_gc = Duration::ZERO;
    while !stopping.load(Ordering::SeqCst) {
        std::thread::sleep(tick);
        since_touch += tick;
        since_gc += tick;
        if since_touch >= Duration::from_secs(1) {
            since_touch = Duration::ZERO;
            let seen: Vec<(String, i64)> = local.lock().seen.drain().collect();
            if !seen.is_empty() && events.send(Event::Touch(seen)).is_err() {
                return;
            }
        }
        if gc_every_ms > 0 && since_gc >= Duration::from_millis(gc_every_ms as u64) {
            since_gc = Duration::ZERO;
            if events.send(Event::Sweep).is_err() {
                return;
            }
        }
    }
}

struct Worker {
    hot: Arc<dyn HotStore>,
    writes: Sender<Write_>,
    pending: Arc<AtomicUsize>,
    max_pending: usize,
    dropped: AtomicUsize,
    outbox: Arc<Outbox>,
    local: Arc<Mutex<Local>>,
    stopping: Arc<AtomicBool>,
    session_timeout_ms: i64,
    full_lists: bool,
    /// The clientIds of this process that the hot store holds (as far as
    /// this worker applied them), with their auth and join time: what to
    /// put back if the store loses its state.
    live: RefCell<HashMap<String, (Auth, i64)>>,
    /// The store generation whose state this worker last made sure of.
    restored_generation: Cell<u64>,
    /// A restore is due whatever the generation (Redis came back).
    resync: Cell<bool>,
    /// Rooms whose lists changed in a restore, to send out.
    snapshots_due: RefCell<Vec<String>>,
    /// For reading what SQL holds at start (writes go through the writer).
    query: Arc<Query>,
}

impl Worker {
    fn run(self, events: Receiver<Event>) {
        while let Ok(event) = events.recv() {
            match event {
                Event::Connect {
                    client_id,
                    auth,
                    at,
                } => self.connect(&client_id, &auth, at),
                Event::Disconnect { client_id, at } => self.disconnect(&client_id, at),
                Event::Snapshot {
                    client_id,
                    room,
                    changes,
                } => {
                    if let Some(users) = self.with_hot("read a room", || self.hot.room_users(&room))
                    {
                        let (channel, data) = if changes {
                            (
                                channel::user_changes_channel(&room),
                                user_changes_message(&room, users.len(), Some(&users), None),
                            )
                        } else {
                            (
                                channel::user_list_channel(&room),
                                user_list_message(&room, &users, None),
                            )
                        };
                        self.outbox.push(Notification::Deliver {
                            client_id,
                            channel,
                            data,
                        });
                    }
                }
                Event::Touch(seen) => {
                    self.with_hot("record last-seen times", || self.hot.touch(&seen));
                }
                Event::Sweep => self.sweep(),
                Event::Repair => self.repair(),
                Event::Resync => {
                    self.resync.set(true);
                    self.with_hot("restore presence", || Ok(()));
                    let watched: Vec<String> = self.local.lock().watched.iter().cloned().collect();
                    for room in watched {
                        self.snapshot_here(&room);
                    }
                }
                Event::Barrier(ack) => {
                    let _ = self.writes.send(Write_::Barrier(ack));
                }
                Event::Stop => {
                    let _ = self.writes.send(Write_::Stop);
                    return;
                }
            }
        }
    }

    /// Runs `f` on the hot store until it succeeds, backing off up to 5 s,
    /// logging the first failure and the recovery; gives up only when
    /// stopping. After the store lost its connection, this process's
    /// clientIds are put back first, so that nothing applied after an
    /// outage works on a store that forgot them.
    fn with_hot<T>(&self, what: &str, mut f: impl FnMut() -> Result<T, StoreError>) -> Option<T> {
        let result = retry_until_ok(&self.outbox, &self.stopping, what, || {
            self.restore_if_needed()?;
            f()
        });
        let due = std::mem::take(&mut *self.snapshots_due.borrow_mut());
        for room in due {
            self.publish_snapshot(&room);
        }
        result
    }

    fn restore_if_needed(&self) -> Result<(), StoreError> {
        let generation = self.hot.generation();
        if generation == self.restored_generation.get() && !self.resync.get() {
            return Ok(());
        }
        let clients: Vec<LiveClient> = {
            let local = self.local.lock();
            let now = clock::now_ms();
            self.live
                .borrow()
                .iter()
                .map(|(id, (auth, joined))| LiveClient {
                    client_id: id.clone(),
                    auth: auth.clone(),
                    joined_ms: *joined,
                    last_seen_ms: local.clients.get(id).map_or(now, |c| c.last_seen),
                })
                .collect()
        };
        let rooms = self.hot.restore(&clients)?;
        self.restored_generation.set(generation);
        self.resync.set(false);
        if !rooms.is_empty() {
            self.outbox.log(
                LogLevel::Warn,
                format!(
                    "Redis had lost this process's clientIds: put back {} in {} rooms",
                    clients.len(),
                    rooms.len()
                ),
            );
        }
        self.snapshots_due.borrow_mut().extend(rooms);
        Ok(())
    }

    fn write(&self, record: Record) {
        if self.pending.load(Ordering::SeqCst) >= self.max_pending {
            let dropped = self.dropped.fetch_add(1, Ordering::SeqCst) + 1;
            if dropped == 1 || dropped.is_multiple_of(10_000) {
                self.outbox.log(
                    LogLevel::Error,
                    format!(
                        "{} records are waiting for the database: dropped {dropped} so far, the latest {record:?}",
                        self.max_pending
                    ),
                );
            }
            return;
        }
        self.pending.fetch_add(1, Ordering::SeqCst);
        let _ = self.writes.send(Write_::Record(record));
    }

    /// Publishes a room's change: the new whole list on `<room>/user_list`
    /// (unless full lists are off) and the change alone on
    /// `<room>/user_changes`.
    fn publish(&self, room: &str, change: (&str, &User)) {
        let count = if self.full_lists {
            let Some(users) = self.with_hot("read a room", || self.hot.room_users(room)) else {
                return;
            };
            let count = users.len();
            self.send_out(
                channel::user_list_channel(room),
                user_list_message(room, &users, Some(change)),
            );
            count
        } else {
            let Some(count) = self.with_hot("count a room", || self.hot.room_count(room)) else {
                return;
            };
            count
        };
        self.send_out(
            channel::user_changes_channel(room),
            user_changes_message(room, count, None, Some(change)),
        );
    }

    /// Through the shared store to every process when there is one, else
    /// (or if that fails) to this process's subscribers.
    fn send_out(&self, channel: String, data: Value) {
        let payload = json!({"channel": channel, "data": data}).to_string();
        match self.hot.broadcast(&payload) {
            Ok(true) => {}
            Ok(false) => self.outbox.push(Notification::Publish { channel, data }),
            Err(e) => {
                self.outbox.log(
                    LogLevel::Warn,
                    format!("cannot broadcast to other processes, publishing here only: {e}"),
                );
                self.outbox.push(Notification::Publish { channel, data });
            }
        }
    }

    /// Sends a room's whole list (as a new subscriber gets it) to every
    /// process's subscribers.
    fn publish_snapshot(&self, room: &str) {
        let Some(users) = self.with_hot("read a room", || self.hot.room_users(room)) else {
            return;
        };
        self.send_out(
            channel::user_list_channel(room),
            user_list_message(room, &users, None),
        );
        self.send_out(
            channel::user_changes_channel(room),
            user_changes_message(room, users.len(), Some(&users), None),
        );
    }

    /// Sends a room's whole list to this process's subscribers only.
    fn snapshot_here(&self, room: &str) {
        if let Some(users) = self.with_hot("read a room", || self.hot.room_users(room)) {
            self.outbox.push(Notification::Publish {
                channel: channel::user_list_channel(room),
                data: user_list_message(room, &users, None),
            });
            self.outbox.push(Notification::Publish {
                channel: channel::user_changes_channel(room),
                data: user_changes_message(room, users.len(), Some(&users), None),
            });
        }
    }

    fn connect(&self, client_id: &str, auth: &Auth, at: i64) {
        let Some(outcome) =
            self.with_hot("record a connect", || self.hot.connect(client_id, auth, at))
        else {
            return;
        };
        if !matches!(outcome, ConnectOutcome::Conflict(_)) {
            self.live
                .borrow_mut()
                .entry(client_id.to_owned())
                .or_insert_with(|| (auth.clone(), at));
        }
        match outcome {
            ConnectOutcome::Joined {
                room_joined,
                timer_started,
            } => {
                self.write(Record::Login {
                    status: 1,
                    uid: auth.user.uid,
                    at_ms: at,
                    time: auth.time.clone(),
                    client_id: client_id.to_owned(),
                });
                if timer_started {
                    self.write(Record::TimerStart {
                        uid: auth.user.uid,
                        time: auth.time.clone(),
                        at_ms: at,
                    });
                }
                if room_joined {
                    self.write(Record::RoomJoin {
                        room: auth.room.clone(),
                        uid: auth.user.uid,
                        uname: auth.user.uname.clone(),
                    });
                    self.publish(&auth.room, ("joined", &auth.user));
                }
            }
            ConnectOutcome::AlreadyKnown => {}
            ConnectOutcome::Conflict(known) => self.outbox.log(
                LogLevel::Warn,
                format!(
                    "clientId {client_id} is already recorded for user {} in {}; ignored a claim for user {} in {}",
                    known.user.uid, known.room, auth.user.uid, auth.room
                ),
            ),
        }
    }

    fn disconnect(&self, client_id: &str, at: i64) {
        let outcome = self.with_hot("record a disconnect", || self.hot.disconnect(client_id, at));
        self.live.borrow_mut().remove(client_id);
        let Some(Some(out)) = outcome else {
            return;
        };
        let auth = &out.auth;
        self.write(Record::Login {
            status: 0,
            uid: auth.user.uid,
            at_ms: at,
            time: auth.time.clone(),
            client_id: client_id.to_owned(),
        });
        if let Some(started) = out.timer_started_at {
            self.write(Record::TimerStop {
                uid: auth.user.uid,
                time: auth.time.clone(),
                started_ms: started,
                credited_ms: out.timer_credited_ms,
                restored: out.timer_restored,
            });
        }
        if out.room_left {
            self.write(Record::RoomLeave {
                room: auth.room.clone(),
                uid: auth.user.uid,
            });
            self.publish(&auth.room, ("left", &auth.user));
        }
    }

    /// Prunes users from the SQL online lists whom the hot store does not
    /// have online: with process memory nobody is online at start; with
    /// Redis, the processes that share it know who is.
    fn repair(&self) {
        // One try: presence must not wait on SQL.
        let lists = match self.query.durable.lock().online_lists() {
            Ok(lists) => lists,
            Err(e) => {
                self.outbox.log(
                    LogLevel::Warn,
                    format!("could not check the online lists for users left by a crash: {e}"),
                );
                return;
            }
        };
        let mut pruned = 0;
        let mut rooms = 0;
        for (room, users) in lists {
            let Some(online) = self.with_hot("read a room", || self.hot.room_users(&room)) else {
                return;
            };
            let stale: Vec<u64> = users
                .iter()
                .map(|u| u.uid)
                .filter(|uid| !online.iter().any(|o| o.uid == *uid))
                .collect();
            if stale.is_empty() {
                continue;
            }
            pruned += stale.len();
            rooms += 1;
            self.write(Record::RoomPrune { room, uids: stale });
        }
        if pruned > 0 {
            self.outbox.log(
                LogLevel::Warn,
                format!("removed {pruned} users left online by a crash from {rooms} online lists"),
            );
        }
    }

    /// Removes clientIds not seen for longer than the session timeout, in
    /// whichever process they lived; their time ends when last seen.
    fn sweep(&self) {
        let before = clock::now_ms() - self.session_timeout_ms;
        let Ok(stale) = self.hot.stale_clients(before, 1000) else {
            return;
        };
        for (client_id, last_seen) in stale {
            // A live clientId of this process may have been seen since the
            // last touch reached the store.
            let fresh = {
                let local = self.local.lock();
                local
                    .clients
                    .get(&client_id)
                    .is_some_and(|c| c.last_seen >= before)
            };
            if fresh {
                continue;
            }
            self.local.lock().clients.remove(&client_id);
            self.disconnect(&client_id, last_seen);
        }
    }
}

struct Writer {
    durable: DurableStore,
    /// The hot store, for the memberships that room and timer records
    /// write (see [`DurableStore::apply_batch`]).
    live: Arc<dyn HotStore>,
    pending: Arc<AtomicUsize>,
    outbox: Arc<Outbox>,
    stopping: Arc<AtomicBool>,
}

/// The most records the writer applies in one transaction.
const MAX_BATCH: usize = 256;

/// How long the writer gathers records into a batch after the first: SQL
/// is a few milliseconds later, and under load each transaction carries
/// many records. Presence never waits on it (it is published from the hot
/// store), and a barrier or a stop writes at once.
const BATCH_WINDOW: Duration = Duration::from_millis(20);

impl Writer {
    /// Applies records in batches: what comes within [`BATCH_WINDOW`] of a
    /// batch's first record, up to [`MAX_BATCH`]. Under load one
    /// transaction for many records spares the database most of its work.
    fn run(mut self, writes: Receiver<Write_>) {
        let mut batch = Vec::new();
        let mut window = Instant::now();
        while let Ok(first) = writes.recv() {
            let mut next = Some(first);
            while let Some(w) = next.take() {
                match w {
                    Write_::Record(record) => {
                        if batch.is_empty() {
                            window = Instant::now() + BATCH_WINDOW;
                        }
                        batch.push(record);
                        if batch.len() < MAX_BATCH {
                            let wait = window.saturating_duration_since(Instant::now());
                            next = writes.recv_timeout(wait).ok();
                        }
                    }
                    Write_::Barrier(ack) => {
                        self.apply(&mut batch);
                        let _ = ack.send(());
                        next = writes.try_recv().ok();
                    }
                    Write_::Stop => {
                        self.apply(&mut batch);
                        return;
                    }
                }
            }
            self.apply(&mut batch);
        }
    }

    fn apply(&mut self, batch: &mut Vec<Record>) {
        if batch.is_empty() {
            return;
        }
        let what = format!("write to {}", self.durable.url_for_logs());
        let durable = &mut self.durable;
        let live = self.live.as_ref();
        if retry_until_ok(&self.outbox, &self.stopping, &what, || {
            durable.apply_batch(batch, Some(live))
        })
        .is_none()
        {
            for record in batch.iter() {
                self.outbox
                    .log(LogLevel::Error, format!("dropped {record:?} at shutdown"));
            }
        }
        self.pending.fetch_sub(batch.len(), Ordering::SeqCst);
        batch.clear();
    }
}

/// Runs `f` until it succeeds, backing off from 50 ms up to 5 s, logging the
/// first failure and the recovery; gives up (`None`) only when stopping.
fn retry_until_ok<T>(
    outbox: &Outbox,
    stopping: &AtomicBool,
    what: &str,
    mut f: impl FnMut() -> Result<T, StoreError>,
) -> Option<T> {
    let mut delay = Duration::from_millis(50);
    let mut failed = false;
    loop {
        match f() {
            Ok(v) => {
                if failed {
                    outbox.log(LogLevel::Info, format!("can {what} again"));
                }
                return Some(v);
            }
            Err(e) => {
                if !failed {
                    outbox.log(LogLevel::Warn, format!("cannot {what}, retrying: {e}"));
                    failed = true;
                }
                if stopping.load(Ordering::SeqCst) {
                    outbox.log(
                        LogLevel::Error,
                        format!("gave up to {what} at shutdown: {e}"),
                    );
                    return None;
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durable::test_schema;
    use serde_json::json;

    struct Fixture {
        tracker: Tracker,
        dir: std::path::PathBuf,
        url: String,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn fixture(name: &str) -> Fixture {
        fixture_with(name, json!({}))
    }

    fn fixture_with(name: &str, extra: Value) -> Fixture {
        fixture_after(name, extra, |_| {})
    }

    /// A tracker on a fresh SQLite database that `before` has written to.
    fn fixture_after(name: &str, extra: Value, before: impl FnOnce(&mut DurableStore)) -> Fixture {
        let dir = std::env::temp_dir().join(format!("fo_tracker_{}_{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("t.sqlite3").display());
        test_schema::create(crate::sql::open(&url).unwrap().as_mut());
        before(&mut DurableStore::new(&url));
        let mut config = json!({"database_url": url, "gc_interval_ms": 0});
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        let config = Config::from_json(&config.to_string()).unwrap();
        Fixture {
            tracker: Tracker::new(&config).unwrap(),
            dir,
            url,
        }
    }

    fn connect(client_id: &str, uid: u64) -> Incoming {
        Incoming {
            channel: "/meta/connect".into(),
            client_id: Some(client_id.into()),
            auth: Some(Ok(
                json!({"room_channel": "/classes/4", "time_channel": "/courses/5/lessons/1",
                                "current_user": {"uid": uid, "uname": format!("u{uid}")}}),
            )),
            subscription: Vec::new(),
        }
    }

    /// What was published on user_list channels.
    fn publications(t: &Tracker) -> Vec<Value> {
        publications_on(t, "/user_list")
    }

    fn publications_on(t: &Tracker, suffix: &str) -> Vec<Value> {
        t.drain()
            .into_iter()
            .filter_map(|n| match n {
                Notification::Publish { channel, data } if channel.ends_with(suffix) => Some(data),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn big_rooms_can_have_changes_alone() {
        let f = fixture_with("changes", json!({"full_lists": false}));
        let t = &f.tracker;
        t.handshake("tab1");
        t.handshake("tab2");
        t.incoming(&connect("tab1", 9));
        t.incoming(&connect("tab2", 10));
        assert!(t.flush(Duration::from_secs(5)));
        let all = t.drain();
        assert!(
            !all.iter().any(|n| matches!(n, Notification::Publish { channel, .. } if channel.ends_with("/user_list"))),
            "no whole lists"
        );
        let changes: Vec<&Value> = all
            .iter()
            .filter_map(|n| match n {
                Notification::Publish { channel, data } if channel == "/classes/4/user_changes" => {
                    Some(data)
                }
                _ => None,
            })
            .collect();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1]["count"], 2);
        assert_eq!(changes[1]["joined"][0]["uid"], 10);
        assert!(changes[1].get("users").is_none());
        t.subscribed("watcher", "/classes/4/user_changes");
        assert!(t.flush(Duration::from_secs(5)));
        let delivered: Vec<Notification> = t.drain();
        assert!(delivered.iter().any(|n| matches!(n,
            Notification::Deliver { client_id, channel, data }
                if client_id == "watcher" && channel == "/classes/4/user_changes"
                    && data["users"].as_array().map(Vec::len) == Some(2) && data["count"] == 2)));
    }

    #[test]
    fn users_left_online_by_a_crash_are_removed_at_start() {
        let f = fixture_after("repair", json!({}), |durable| {
            for uid in [7, 8] {
                durable
                    .apply(&Record::RoomJoin {
                        room: "/classes/4".into(),
                        uid,
                        uname: format!("u{uid}"),
                    })
                    .unwrap();
            }
        });
        let t = &f.tracker;
        t.handshake("tab1");
        t.incoming(&connect("tab1", 9));
        assert!(t.flush(Duration::from_secs(5)));
        let mut durable = DurableStore::new(&f.url);
        assert_eq!(durable.online_uids("/classes/4").unwrap(), vec![9]);
        let logs: Vec<String> = t
            .drain()
            .into_iter()
            .filter_map(|n| match n {
                Notification::Log { text, .. } => Some(text),
                _ => None,
            })
            .collect();
        assert!(
            logs.iter().any(|l| l.contains("removed 2 users")),
            "{logs:?}"
        );
    }

    #[test]
    fn a_full_session_through_the_tracker() {
        let f = fixture("session");
        let t = &f.tracker;
        t.handshake("tab1");
        t.handshake("tab2");
        assert_eq!(t.incoming(&connect("tab1", 9)), Verdict::Pass);
        assert_eq!(t.incoming(&connect("tab1", 9)), Verdict::Pass);
        assert_eq!(t.incoming(&connect("tab2", 9)), Verdict::Pass);
        assert!(t.flush(Duration::from_secs(5)));
        let published = publications(t);
        assert_eq!(published.len(), 1, "only the first tab changes the room");
        assert_eq!(published[0]["count"], 1);
        assert_eq!(published[0]["user_list"], json!([9]));
        assert_eq!(published[0]["channel_name"], "/classes/4");
        assert_eq!(published[0]["joined"][0]["uname"], "u9");
        assert_eq!(t.query().online_users("/classes/4").unwrap().len(), 1);

        let disconnect = |id: &str| Incoming {
            channel: "/meta/disconnect".into(),
            client_id: Some(id.into()),
            auth: None,
            subscription: Vec::new(),
        };
        t.incoming(&disconnect("tab1"));
        t.session_ended("tab1");
        assert!(t.flush(Duration::from_secs(5)));
        assert!(
            publications(t).is_empty(),
            "the user is still online through tab2"
        );
        t.incoming(&disconnect("tab2"));
        assert!(t.flush(Duration::from_secs(5)));
        let published = publications(t);
        assert_eq!(published.len(), 1);
        assert_eq!(published[0]["count"], 0);
        assert_eq!(published[0]["left"][0]["uid"], 9);
        assert!(t.query().online_users("/classes/4").unwrap().is_empty());

        let mut durable = DurableStore::new(&f.url);
        assert!(durable.online_uids("/classes/4").unwrap().is_empty());
        let times = durable.online_times(9).unwrap();
        assert!(times.contains_key("/courses/5/lessons/1_spended"));
        assert!(!times.contains_key("/courses/5/lessons/1_started_at"));
    }

    #[test]
    fn refuses_bad_input_and_stores_nothing() {
        let f = fixture("bad");
        let t = &f.tracker;
        t.handshake("tab1");
        let mut bad = connect("tab1", 9);
        bad.auth = Some(Ok(json!({"room_channel": "/classes/*"})));
        assert!(matches!(t.incoming(&bad), Verdict::Refuse(e) if e.code == 400));
        bad.auth = Some(Err(BayeuxError::bad_request("auth", "too big")));
        assert!(matches!(t.incoming(&bad), Verdict::Refuse(e) if e.code == 400));
        assert_eq!(t.incoming(&connect("tab1", 9)), Verdict::Pass);
        assert!(matches!(t.incoming(&connect("tab1", 10)), Verdict::Refuse(e) if e.code == 403));
        let publish = Incoming {
            channel: "/classes/4/user_list".into(),
            client_id: Some("tab1".into()),
            auth: None,
            subscription: Vec::new(),
        };
        assert!(matches!(t.incoming(&publish), Verdict::Refuse(e) if e.code == 403));
        // A clientId this process never handshook is left to Faye (401).
        assert_eq!(t.incoming(&connect("stranger", 11)), Verdict::Pass);
        assert!(t.flush(Duration::from_secs(5)));
        let users = t.query().online_users("/classes/4").unwrap();
        assert_eq!(users.iter().map(|u| u.uid).collect::<Vec<_>>(), vec![9]);
    }

    #[test]
    fn with_a_secret_only_signed_claims_count() {
        let secret = "a-secret-of-sixteen+";
        let f = fixture_with("secret", json!({"secret": secret}));
        let t = &f.tracker;
        let now = clock::now_ms() / 1000;
        let signed = |uid: u64, room: &str, expires: i64| {
            let mut msg = connect("x", uid);
            let Some(Ok(value)) = &mut msg.auth else {
                unreachable!()
            };
            value["room_channel"] = json!(room);
            let auth = Auth::from_value(value).unwrap();
            value["expires"] = json!(expires);
            value["token"] = json!(crate::auth::sign(secret.as_bytes(), &auth, expires));
            value.clone()
        };
        let refused = |v: Verdict| matches!(v, Verdict::Refuse(e) if e.code == 403);
        t.handshake("tab1");
        assert!(refused(t.incoming(&connect("tab1", 9))), "no token");
        let mut forged = connect("tab1", 10);
        forged.auth = Some(Ok({
            let mut v = signed(9, "/classes/4", now + 60);
            v["current_user"]["uid"] = json!(10);
            v
        }));
        assert!(refused(t.incoming(&forged)), "a token for another uid");
        let mut expired = connect("tab1", 9);
        expired.auth = Some(Ok(signed(9, "/classes/4", now - 1)));
        assert!(refused(t.incoming(&expired)), "expired");
        let mut good = connect("tab1", 9);
        good.auth = Some(Ok(signed(9, "/classes/4", now + 60)));
        assert_eq!(t.incoming(&good), Verdict::Pass);
        assert_eq!(t.incoming(&good), Verdict::Pass, "polls again");

        let subscribe = |auth: Option<Value>| Incoming {
            channel: "/meta/subscribe".into(),
            client_id: Some("tab1".into()),
            auth: auth.map(Ok),
            subscription: vec!["/classes/4/user_list".into()],
        };
        assert!(refused(t.incoming(&subscribe(None))));
        assert!(refused(t.incoming(&subscribe(Some(signed(
            9,
            "/classes/5",
            now + 60
        ))))));
        assert_eq!(
            t.incoming(&subscribe(Some(signed(9, "/classes/4", now + 60)))),
            Verdict::Pass
        );
        assert!(t.flush(Duration::from_secs(5)));
        let users = t.query().online_users("/classes/4").unwrap();
        assert_eq!(users.iter().map(|u| u.uid).collect::<Vec<_>>(), vec![9]);
    }

    #[test]
    fn past_the_bound_records_are_dropped_and_logged() {
        let url = "sqlite:///nonexistent-dir-of-faye-online/x.sqlite3";
        let config = Config::from_json(
            &json!({"database_url": url, "gc_interval_ms": 0, "max_pending_records": 2})
                .to_string(),
        )
        .unwrap();
        let t = Tracker::new(&config).unwrap();
        for i in 0..4 {
            let id = format!("tab{i}");
            t.handshake(&id);
            t.incoming(&connect(&id, 20 + i));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut logs = Vec::new();
        let logged = |logs: &[String], what: &str| logs.iter().any(|l| l.contains(what));
        while !(logged(&logs, "dropped") && logged(&logs, "cannot write")) {
            assert!(
                std::time::Instant::now() < deadline,
                "no drop or no write failure was logged: {logs:?}"
            );
            logs.extend(t.drain().into_iter().filter_map(|n| match n {
                Notification::Log { text, .. } => Some(text),
                _ => None,
            }));
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !t.close(Duration::from_millis(200)),
            "nothing could be written"
        );
    }

    #[test]
    fn a_subscriber_gets_the_current_list() {
        let f = fixture("snapshot");
        let t = &f.tracker;
        t.handshake("tab1");
        t.incoming(&connect("tab1", 9));
        t.subscribed("watcher", "/classes/4/user_list");
        t.subscribed("watcher", "/classes/*/user_list");
        assert!(t.flush(Duration::from_secs(5)));
        let delivered: Vec<_> = t
            .drain()
            .into_iter()
            .filter(|n| matches!(n, Notification::Deliver { .. }))
            .collect();
        assert_eq!(delivered.len(), 1);
        let Notification::Deliver {
            client_id,
            channel,
            data,
        } = &delivered[0]
        else {
            unreachable!()
        };
        assert_eq!(client_id, "watcher");
        assert_eq!(channel, "/classes/4/user_list");
        assert_eq!(data["user_list"], json!([9]));
    }

    #[test]
    fn the_waker_socket_becomes_readable() {
        use std::io::Read;
        let f = fixture("waker");
        let mut fd = f.tracker.take_waker_fd().unwrap();
        assert!(f.tracker.take_waker_fd().is_none());
        fd.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        assert!(
            fd.read(&mut buf).unwrap() >= 1,
            "the start-up log line wakes the host"
        );
    }

    /// Two processes sharing Redis: a change made through one reaches the
    /// user_list subscribers of both, once each.
    #[test]
    fn publications_reach_every_process_sharing_redis() {
        let url = std::env::var("FAYE_ONLINE_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".into());
        let ns = format!("fo_fanout_{}", std::process::id());
        let probe = RedisStore::new(&url, &ns).unwrap();
        if probe.clear().is_err() && std::env::var("FAYE_ONLINE_TEST_REDIS_URL").is_err() {
            eprintln!("skipped: no Redis at {url}");
            return;
        }
        let f = fixture("fanout");
        let config = Config::from_json(
            &json!({"database_url": f.url, "redis_url": url, "namespace": ns, "gc_interval_ms": 0})
                .to_string(),
        )
        .unwrap();
        let a = Tracker::new(&config).unwrap();
        let b = Tracker::new(&config).unwrap();
        let wait = |what: &str, cond: &mut dyn FnMut() -> bool| {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while !cond() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "timed out waiting for {what}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        wait("both listeners", &mut || probe.listeners().unwrap() >= 2);
        let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
        for (uid, id) in [(5, "taba"), (6, "tabb")] {
            a.handshake(id);
            a.incoming(&connect(id, uid));
            wait("the publication in both processes", &mut || {
                got_a.extend(publications(&a));
                got_b.extend(publications(&b));
                got_a.iter().any(|d| d["joined"][0]["uid"] == uid)
                    && got_b.iter().any(|d| d["joined"][0]["uid"] == uid)
            });
        }
        // Broadcasts arrive in order: a duplicate of the first change would
        // have come before the second.
        assert_eq!(got_a.len(), 2, "{got_a:?}");
        assert_eq!(got_b.len(), 2, "{got_b:?}");
        assert_eq!(got_b[1]["user_list"], json!([5, 6]));
        a.close(Duration::from_secs(5));
        b.close(Duration::from_secs(5));
        probe.clear().unwrap();
    }
}
