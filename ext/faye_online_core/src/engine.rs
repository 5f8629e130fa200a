//! Faye's engine on Redis: clients, subscriptions and message queues shared
//! by every Faye process of a site, in the layout of Faye's own Redis
//! engines (faye-redis for Ruby and Node.js), so that processes of either
//! kind serve one cluster together.
//!
//! Keys, under the namespace `<ns>` as given (no slash is added):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<ns>/clients` | zset | clientId → last ping (ms) |
//! | `<ns>/clients/<id>/channels` | set | the client's subscriptions |
//! | `<ns>/channels<channel>` | set | the channel's subscribers |
//! | `<ns>/clients/<id>/messages` | list | messages (JSON) waiting for the client |
//! | `<ns>/locks/gc` | string | the garbage collector's lock: its expiry (ms) |
//! | `<ns>/clients/<id>/grants` | set | faye-online's own: what the client showed a token for |
//!
//! and the pub/sub channels `<ns>/notifications/messages` (a clientId
//! whose queue got a message) and `<ns>/notifications/close` (a clientId
//! that was destroyed).
//!
//! The host (Faye's reactor) never waits on Redis: each engine call is an
//! [`Op`] on the engine thread's queue, which sends all queued ops to
//! Redis as one pipeline and hands answers back through the outbox
//! ([`Notification::Engine`]). A second thread listens for notifications
//! and takes the queue of each client that has an open connection in this
//! process.
//!
//! A client's grants (`room:<room>` for a room's lists, `channel:<name>`
//! for a private channel, `uid:<uid>` for the user it connected as,
//! `dashboard`) are written by the process that checked the token, before
//! its subscription (ops run in order), and read with the client's
//! messages: so a process delivering to a client another process let in
//! knows what the client may receive, without waiting on Redis.

use crate::clock;
use crate::error::StoreError;
use crate::outbox::{LogLevel, Notification, Outbox};
use parking_lot::Mutex;
use redis::{Client, Connection, Script, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DESTROY: &str = include_str!("lua/engine/destroy.lua");
const PUBLISH: &str = include_str!("lua/engine/publish.lua");
const ENQUEUE: &str = include_str!("lua/engine/enqueue.lua");
const TAKE: &str = include_str!("lua/engine/take.lua");
const CONNECT: &str = include_str!("lua/engine/connect.lua");
const GC_LOCK: &str = include_str!("lua/engine/gc_lock.lua");

/// How long a client's grants outlive its last connect through a
/// faye-online process (a client is destroyed long before; this only bounds what a
/// client destroyed by another kind of process leaves).
const GRANTS_TTL_MS: i64 = 86_400_000;
/// How long the garbage collector's lock is held at most (as faye-redis).
const LOCK_TIMEOUT_MS: i64 = 120_000;
/// Ops sent to Redis in one pipeline, at most.
const MAX_BATCH: usize = 512;
/// Ops queued at most for the engine thread; past it, new ops are refused.
pub const MAX_QUEUED_OPS: usize = 100_000;
/// Ops with no caller waiting (publications, pings, queue takes) held
/// while Redis is away, at most; past it they are dropped and counted.
const MAX_HELD_OPS: usize = 100_000;
/// How often the engine thread tries Redis again while it is away.
const RECONNECT_EVERY: Duration = Duration::from_millis(250);

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub redis_url: String,
    pub namespace: String,
    /// Faye's connection timeout (ms): a client not seen for 1.6 times it
    /// no longer exists; the collector destroys it after twice it.
    pub timeout_ms: i64,
    /// How often the collector runs (ms).
    pub gc_ms: i64,
}

/// One engine call. `ticket` names the host's callback (0: none).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    CreateClient {
        ticket: u64,
        client_id: String,
    },
    /// With `take` (for a `/meta/connect`), in one call: also pings the
    /// client if it exists (as Faye's engine does next for a connect) and
    /// takes its queue, so that the answer carries what was waiting.
    ClientExists {
        ticket: u64,
        client_id: String,
        take: bool,
    },
    DestroyClient {
        ticket: u64,
        client_id: String,
    },
    Ping {
        client_id: String,
    },
    Subscribe {
        ticket: u64,
        client_id: String,
        channel: String,
    },
    Unsubscribe {
        ticket: u64,
        client_id: String,
        channel: String,
    },
    /// `message` is JSON; `channels` are the names it matches (the channel
    /// and its wildcard patterns).
    Publish {
        message: String,
        channels: Vec<String>,
    },
    /// Take the client's queue, for its open connection in this process.
    EmptyQueue {
        client_id: String,
    },
    /// Queue messages (JSON) for one client, at the back, or at the front
    /// (messages taken that could not be delivered here after all).
    Enqueue {
        client_id: String,
        messages: Vec<String>,
        front: bool,
    },
    /// Record what the client showed a valid token for (see the module).
    Grant {
        client_id: String,
        grants: Vec<String>,
    },
    /// Read the client's grants.
    Grants {
        ticket: u64,
        client_id: String,
    },
}

/// An answer for the host.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `added` false: the id was taken; the host tries another.
    Created {
        ticket: u64,
        client_id: String,
        added: bool,
    },
    /// With `messages` taken if asked (JSON), and the client's grants
    /// when there are messages.
    Exists {
        ticket: u64,
        client_id: String,
        exists: bool,
        messages: Vec<String>,
        grants: Vec<String>,
    },
    /// Also made by the collector (ticket 0) for each client it destroys.
    Destroyed {
        ticket: u64,
        client_id: String,
        existed: bool,
        channels: Vec<String>,
        /// Its last ping (ms), when it existed.
        last_ping: Option<i64>,
    },
    Subscribed {
        ticket: u64,
        client_id: String,
        channel: String,
        added: bool,
    },
    Unsubscribed {
        ticket: u64,
        client_id: String,
        channel: String,
        removed: bool,
    },
    /// Messages (JSON) taken from the queue of a client connected here,
    /// with the client's grants.
    Messages {
        client_id: String,
        messages: Vec<String>,
        grants: Vec<String>,
    },
    /// The client's grants.
    Grants {
        ticket: u64,
        client_id: String,
        grants: Vec<String>,
    },
    /// A client was destroyed (by any process): close its connection here.
    Closed { client_id: String },
    /// Redis is away, or refused the op: the host answers its caller with
    /// an error at once (a prompt 503 rather than a request held).
    Failed { ticket: u64, error: String },
}

/// The host's handle on the engine's threads.
pub struct Engine {
    ops: Mutex<Option<Sender<Op>>>,
    queued: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    connected: Arc<Mutex<HashSet<String>>>,
}

impl Engine {
    /// Starts the engine's two threads (named by `spawn`), which stop when
    /// `stop` is set.
    pub(crate) fn start(
        config: &EngineConfig,
        outbox: Arc<Outbox>,
        stop: Arc<AtomicBool>,
        mut spawn: impl FnMut(&str, Box<dyn FnOnce() + Send>) -> Result<(), StoreError>,
    ) -> Result<Engine, StoreError> {
        let client = Client::open(config.redis_url.as_str())?;
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let connected = Arc::new(Mutex::new(HashSet::new()));
        let runner = Runner {
            client: client.clone(),
            conn: None,
            ns: config.namespace.clone(),
            timeout_ms: config.timeout_ms,
            gc_ms: config.gc_ms.max(100),
            outbox: outbox.clone(),
            queued: queued.clone(),
            down: down.clone(),
            stop: stop.clone(),
            scripts: Scripts::new(),
            failing_since: None,
            last_attempt: None,
            held: Vec::new(),
            dropped: 0,
        };
        spawn("faye-online-engine", Box::new(move || runner.run(rx)))?;
        let listener = Listener {
            client,
            ns: config.namespace.clone(),
            ops: tx.clone(),
            queued: queued.clone(),
            connected: connected.clone(),
            outbox,
            stop,
        };
        spawn(
            "faye-online-engine-listener",
            Box::new(move || listener.run()),
        )?;
        Ok(Engine {
            ops: Mutex::new(Some(tx)),
            queued,
            down,
            connected,
        })
    }

    /// Queues an op; false if the engine is stopped or too far behind.
    pub fn submit(&self, op: Op) -> bool {
        if self.queued.load(Ordering::SeqCst) >= MAX_QUEUED_OPS {
            return false;
        }
        let guard = self.ops.lock();
        let Some(tx) = guard.as_ref() else {
            return false;
        };
        self.queued.fetch_add(1, Ordering::SeqCst);
        if tx.send(op).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Whether Redis is away now (the gate refuses new work meanwhile).
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// Ops waiting for Redis.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// The host opened (`true`) or closed a connection for `client_id`:
    /// messages for it are taken from Redis here while it is open.
    pub fn connection(&self, client_id: &str, open: bool) {
        let mut set = self.connected.lock();
        if open {
            set.insert(client_id.to_owned());
        } else {
            set.remove(client_id);
        }
    }

    /// Stops taking ops (the threads end when the tracker stops).
    pub(crate) fn close(&self) {
        self.ops.lock().take();
    }
}

struct Scripts {
    destroy: Script,
    publish: Script,
    enqueue: Script,
    take: Script,
    connect: Script,
    gc_lock: Script,
}

impl Scripts {
    fn new() -> Scripts {
        Scripts {
            destroy: Script::new(DESTROY),
            publish: Script::new(PUBLISH),
            enqueue: Script::new(ENQUEUE),
            take: Script::new(TAKE),
            connect: Script::new(CONNECT),
            gc_lock: Script::new(GC_LOCK),
        }
    }

    fn all(&self) -> [&Script; 6] {
        [
            &self.destroy,
            &self.publish,
            &self.enqueue,
            &self.take,
            &self.connect,
            &self.gc_lock,
        ]
    }
}

/// The engine thread: ops in, one pipeline per batch, replies out.
struct Runner {
    client: Client,
    conn: Option<Connection>,
    ns: String,
    timeout_ms: i64,
    gc_ms: i64,
    outbox: Arc<Outbox>,
    queued: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    scripts: Scripts,
    failing_since: Option<Instant>,
    last_attempt: Option<Instant>,
    /// Ops with no caller waiting, kept while Redis is away.
    held: Vec<Op>,
    /// Ops dropped while Redis was away (past [`MAX_HELD_OPS`]).
    dropped: u64,
}

impl Runner {
    fn run(mut self, rx: Receiver<Op>) {
        let gc_every = Duration::from_millis(self.gc_ms as u64);
        let mut next_gc = Instant::now() + gc_every;
        let mut batch = Vec::new();
        while !self.stop.load(Ordering::SeqCst) {
            let wait = next_gc
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200));
            match rx.recv_timeout(wait) {
                Ok(op) => batch.push(op),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            let n = batch.len();
            if n > 0 || !self.held.is_empty() {
                if self.failing_since.is_some() && !self.reconnect() {
                    self.shed(std::mem::take(&mut batch));
                } else {
                    let mut all = std::mem::take(&mut self.held);
                    all.append(&mut batch);
                    self.run_batch(all);
                }
                self.queued.fetch_sub(n, Ordering::SeqCst);
            }
            if Instant::now() >= next_gc && self.failing_since.is_none() {
                next_gc = Instant::now() + gc_every;
                if let Err(e) = self.gc() {
                    self.failed(&e);
                }
            }
        }
    }

    fn ns_key(&self, rest: &str) -> String {
        format!("{}{rest}", self.ns)
    }

    fn cutoff(&self, factor: f64) -> i64 {
        clock::now_ms() - (factor * self.timeout_ms as f64) as i64
    }

    /// A live connection with the scripts loaded.
    fn conn(&mut self) -> redis::RedisResult<&mut Connection> {
        if self.conn.is_none() {
            let mut conn = self
                .client
                .get_connection_with_timeout(Duration::from_secs(2))?;
            conn.set_read_timeout(Some(Duration::from_secs(10)))?;
            conn.set_write_timeout(Some(Duration::from_secs(10)))?;
            for script in self.scripts.all() {
                script.prepare_invoke().load(&mut conn)?;
            }
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connection just set"))
    }

    /// Sends the batch to Redis. If Redis is away, every op whose caller
    /// waits is answered with a failure at once, and the others are held
    /// until Redis is back (the gate refuses new work meanwhile).
    fn run_batch(&mut self, mut batch: Vec<Op>) {
        coalesce_takes(&mut batch);
        let mut reloaded = false;
        loop {
            match self.try_batch(&batch) {
                Ok(values) => {
                    self.recovered();
                    for (op, value) in batch.into_iter().zip(values) {
                        self.reply(op, value);
                    }
                    return;
                }
                Err(e) if is_connection_error(&e) => {
                    self.failed(&e.into());
                    self.shed(batch);
                    return;
                }
                Err(e) if e.kind() == redis::ErrorKind::NoScriptError && !reloaded => {
                    // Scripts flushed by an operator: load them again.
                    reloaded = true;
                    self.conn = None;
                }
                Err(e) => {
                    self.conn = None;
                    let error = StoreError::from(e);
                    self.outbox.log(
                        LogLevel::Error,
                        format!("Redis refused {} engine operations: {error}", batch.len()),
                    );
                    for op in batch {
                        if let Some(ticket) = ticket_of(&op) {
                            self.outbox.push(Notification::Engine(Reply::Failed {
                                ticket,
                                error: error.to_string(),
                            }));
                        }
                    }
                    return;
                }
            }
        }
    }

    /// One pipeline for the whole batch; one reply per op (an op of
    /// several commands answers with an array of their replies).
    fn try_batch(&mut self, batch: &[Op]) -> redis::RedisResult<Vec<Value>> {
        let now = clock::now_ms();
        let exists_cutoff = self.cutoff(1.6);
        let clients = self.ns_key("/clients");
        let ns = self.ns.clone();
        let mut pipe = redis::pipe();
        let mut shapes = Vec::with_capacity(batch.len());
        for op in batch {
            match op {
                Op::CreateClient { client_id, .. } => {
                    pipe.cmd("ZADD")
                        .arg(&clients)
                        .arg("NX")
                        .arg(now)
                        .arg(client_id);
                    shapes.push(1);
                }
                Op::ClientExists {
                    client_id, take, ..
                } => {
                    if *take {
                        pipe.cmd("EVALSHA")
                            .arg(self.scripts.connect.get_hash())
                            .arg(0)
                            .arg(&ns)
                            .arg(client_id)
                            .arg(exists_cutoff)
                            .arg(now)
                            .arg(GRANTS_TTL_MS);
                    } else {
                        pipe.cmd("ZSCORE").arg(&clients).arg(client_id);
                    }
                    shapes.push(1);
                }
                Op::DestroyClient { client_id, .. } => {
                    pipe.cmd("EVALSHA")
                        .arg(self.scripts.destroy.get_hash())
                        .arg(0)
                        .arg(&ns)
                        .arg(client_id);
                    shapes.push(1);
                }
                Op::Ping { client_id } => {
                    pipe.cmd("ZADD")
                        .arg(&clients)
                        .arg("XX")
                        .arg(now)
                        .arg(client_id);
                    shapes.push(1);
                }
                Op::Subscribe {
                    client_id, channel, ..
                } => {
                    pipe.cmd("SADD")
                        .arg(format!("{ns}/clients/{client_id}/channels"))
                        .arg(channel);
                    pipe.cmd("SADD")
                        .arg(format!("{ns}/channels{channel}"))
                        .arg(client_id);
                    shapes.push(2);
                }
                Op::Unsubscribe {
                    client_id, channel, ..
                } => {
                    pipe.cmd("SREM")
                        .arg(format!("{ns}/clients/{client_id}/channels"))
                        .arg(channel);
                    pipe.cmd("SREM")
                        .arg(format!("{ns}/channels{channel}"))
                        .arg(client_id);
                    shapes.push(2);
                }
                Op::Publish { message, channels } => {
                    pipe.cmd("EVALSHA")
                        .arg(self.scripts.publish.get_hash())
                        .arg(0)
                        .arg(&ns)
                        .arg(message)
                        .arg(exists_cutoff)
                        .arg(channels);
                    shapes.push(1);
                }
                Op::EmptyQueue { client_id } => {
                    pipe.cmd("EVALSHA")
                        .arg(self.scripts.take.get_hash())
                        .arg(0)
                        .arg(&ns)
                        .arg(client_id);
                    shapes.push(1);
                }
                Op::Grant { client_id, grants } => {
                    let key = format!("{ns}/clients/{client_id}/grants");
                    pipe.cmd("SADD").arg(&key).arg(grants);
                    pipe.cmd("PEXPIRE").arg(&key).arg(GRANTS_TTL_MS);
                    shapes.push(2);
                }
                Op::Grants { client_id, .. } => {
                    pipe.cmd("SMEMBERS")
                        .arg(format!("{ns}/clients/{client_id}/grants"));
                    shapes.push(1);
                }
                Op::Enqueue {
                    client_id,
                    messages,
                    front,
                } => {
                    pipe.cmd("EVALSHA")
                        .arg(self.scripts.enqueue.get_hash())
                        .arg(0)
                        .arg(&ns)
                        .arg(client_id)
                        .arg(exists_cutoff)
                        .arg(if *front { "front" } else { "back" })
                        .arg(messages);
                    shapes.push(1);
                }
            }
        }
        let values: Vec<Value> = pipe.query(self.conn()?)?;
        let mut values = values.into_iter();
        Ok(shapes
            .into_iter()
            .map(|n| {
                if n == 1 {
                    values.next().unwrap_or(Value::Nil)
                } else {
                    Value::Array(values.by_ref().take(n).collect())
                }
            })
            .collect())
    }

    fn reply(&self, op: Op, value: Value) {
        let reply = match op {
            Op::CreateClient { ticket, client_id } => Reply::Created {
                ticket,
                client_id,
                added: int(&value) == 1,
            },
            Op::ClientExists {
                ticket,
                client_id,
                take,
            } => {
                let (exists, (messages, grants)) = match value {
                    Value::Array(items) if take && items.len() == 3 => {
                        let mut items = items.into_iter();
                        let exists = items.next().is_some_and(|v| int(&v) == 1);
                        (exists, taken(Value::Array(items.collect())))
                    }
                    other => (
                        !take && score(&other).is_some_and(|s| s > self.cutoff(1.6)),
                        Default::default(),
                    ),
                };
                Reply::Exists {
                    ticket,
                    client_id,
                    exists,
                    messages,
                    grants,
                }
            }
            Op::DestroyClient { ticket, client_id } => {
                let (existed, channels, last_ping) = destroyed(value);
                Reply::Destroyed {
                    ticket,
                    client_id,
                    existed,
                    channels,
                    last_ping,
                }
            }
            Op::Subscribe {
                ticket,
                client_id,
                channel,
            } => Reply::Subscribed {
                ticket,
                client_id,
                channel,
                added: first_int(&value) == 1,
            },
            Op::Unsubscribe {
                ticket,
                client_id,
                channel,
            } => Reply::Unsubscribed {
                ticket,
                client_id,
                channel,
                removed: first_int(&value) == 1,
            },
            Op::EmptyQueue { client_id } => {
                let (messages, grants) = taken(value);
                if messages.is_empty() {
                    return;
                }
                Reply::Messages {
                    client_id,
                    messages,
                    grants,
                }
            }
            Op::Grants { ticket, client_id } => Reply::Grants {
                ticket,
                client_id,
                grants: strings(value),
            },
            Op::Ping { .. } | Op::Publish { .. } | Op::Enqueue { .. } | Op::Grant { .. } => return,
        };
        self.outbox.push(Notification::Engine(reply));
    }

    /// Destroys, under the cluster's lock, every client not seen for twice
    /// the timeout; each is answered as [`Reply::Destroyed`] with ticket 0.
    fn gc(&mut self) -> Result<(), StoreError> {
        let now = clock::now_ms();
        let expiry = now + LOCK_TIMEOUT_MS + 1;
        let cutoff = self.cutoff(2.0);
        let clients_key = self.ns_key("/clients");
        let ns = self.ns.clone();
        let hash = self.scripts.gc_lock.get_hash().to_owned();
        let conn = self.conn()?;
        let taken: i64 = redis::cmd("EVALSHA")
            .arg(&hash)
            .arg(0)
            .arg(&ns)
            .arg(now)
            .arg(expiry)
            .query(conn)?;
        if taken != 1 {
            return Ok(());
        }
        let dead: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&clients_key)
            .arg(0)
            .arg(cutoff)
            .arg("LIMIT")
            .arg(0)
            .arg(10_000)
            .query(conn)?;
        let batch: Vec<Op> = dead
            .into_iter()
            .map(|client_id| Op::DestroyClient {
                ticket: 0,
                client_id,
            })
            .collect();
        if !batch.is_empty() {
            self.run_batch(batch);
        }
        if clock::now_ms() < expiry {
            let conn = self.conn()?;
            let _: () = redis::cmd("DEL")
                .arg(format!("{ns}/locks/gc"))
                .query(conn)?;
        }
        Ok(())
    }

    /// While Redis is away: fails the ops whose callers wait, holds the rest.
    fn shed(&mut self, batch: Vec<Op>) {
        for op in batch {
            if let Some(ticket) = ticket_of(&op) {
                self.outbox.push(Notification::Engine(Reply::Failed {
                    ticket,
                    error: "Redis is unavailable".into(),
                }));
            } else if self.held.len() < MAX_HELD_OPS {
                self.held.push(op);
            } else {
                self.dropped += 1;
                if self.dropped % 10_000 == 1 {
                    self.outbox.log(
                        LogLevel::Error,
                        format!(
                            "Redis is away: dropped {} engine operations so far (publications and pings)",
                            self.dropped
                        ),
                    );
                }
            }
        }
    }

    /// Tries Redis again, at most every [`RECONNECT_EVERY`]; true if back.
    fn reconnect(&mut self) -> bool {
        if self
            .last_attempt
            .is_some_and(|at| at.elapsed() < RECONNECT_EVERY)
        {
            return false;
        }
        self.last_attempt = Some(Instant::now());
        let ok = self
            .conn()
            .and_then(|c| redis::cmd("PING").query::<String>(c))
            .is_ok();
        if ok {
            self.recovered();
        } else {
            self.conn = None;
        }
        ok
    }

    fn failed(&mut self, e: &StoreError) {
        self.conn = None;
        if self.failing_since.is_none() {
            self.failing_since = Some(Instant::now());
            self.down.store(true, Ordering::SeqCst);
            self.outbox.log(
                LogLevel::Warn,
                format!("Faye's engine lost Redis, refusing new work until it is back: {e}"),
            );
        }
    }

    fn recovered(&mut self) {
        if let Some(since) = self.failing_since.take() {
            self.down.store(false, Ordering::SeqCst);
            self.outbox.log(
                LogLevel::Info,
                format!(
                    "Faye's engine has Redis again after {:.1} s",
                    since.elapsed().as_secs_f64()
                ),
            );
        }
    }
}

/// The notification thread: a client connected here that got mail has its
/// queue taken; a destroyed client's connection is closed.
struct Listener {
    client: Client,
    ns: String,
    ops: Sender<Op>,
    queued: Arc<AtomicUsize>,
    connected: Arc<Mutex<HashSet<String>>>,
    outbox: Arc<Outbox>,
    stop: Arc<AtomicBool>,
}

impl Listener {
    fn run(self) {
        let messages = format!("{}/notifications/messages", self.ns);
        let close = format!("{}/notifications/close", self.ns);
        let mut failing = false;
        while !self.stop.load(Ordering::SeqCst) {
            let result = (|| -> redis::RedisResult<()> {
                let mut conn = self
                    .client
                    .get_connection_with_timeout(Duration::from_secs(2))?;
                conn.set_read_timeout(Some(Duration::from_millis(500)))?;
                let mut pubsub = conn.as_pubsub();
                pubsub.subscribe(&messages)?;
                pubsub.subscribe(&close)?;
                // Mail that came while this thread was away is taken now.
                let open: Vec<String> = self.connected.lock().iter().cloned().collect();
                for client_id in open {
                    self.take(client_id);
                }
                failing = false;
                while !self.stop.load(Ordering::SeqCst) {
                    let msg = match pubsub.get_message() {
                        Ok(msg) => msg,
                        Err(e) if e.is_timeout() => continue,
                        Err(e) => return Err(e),
                    };
                    let Ok(client_id) = msg.get_payload::<String>() else {
                        continue;
                    };
                    if msg.get_channel_name() == messages {
                        if self.connected.lock().contains(&client_id) {
                            self.take(client_id);
                        }
                    } else {
                        self.outbox
                            .push(Notification::Engine(Reply::Closed { client_id }));
                    }
                }
                Ok(())
            })();
            if let Err(e) = result {
                if !failing {
                    failing = true;
                    self.outbox.log(
                        LogLevel::Warn,
                        format!("lost Faye's engine notifications, reconnecting: {e}"),
                    );
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }

    fn take(&self, client_id: String) {
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.ops.send(Op::EmptyQueue { client_id }).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Publishes one message (JSON) straight into Faye's engine on Redis for
/// a program that is not a Faye process (a Rails request, a job): the
/// engine's own script queues it for every subscriber of `channels` (the
/// names it matches) in every process, and tells their processes. Waits at
/// most `timeout` for Redis; a connection per URL is kept for the next
/// call. Returns how many clients it was queued for.
pub fn publish_direct(
    redis_url: &str,
    namespace: &str,
    message: &str,
    channels: &[String],
    cutoff_ms: i64,
    timeout: Duration,
) -> Result<i64, StoreError> {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static CONNECTIONS: OnceLock<Mutex<HashMap<String, Connection>>> = OnceLock::new();
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    let script = SCRIPT.get_or_init(|| Script::new(PUBLISH));
    let timeout = timeout.max(Duration::from_millis(10));
    let mut conn = match CONNECTIONS
        .get_or_init(Default::default)
        .lock()
        .remove(redis_url)
    {
        Some(conn) => conn,
        None => Client::open(redis_url)?.get_connection_with_timeout(timeout)?,
    };
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    let queued: i64 = script
        .arg(namespace)
        .arg(message)
        .arg(cutoff_ms)
        .arg(channels)
        .invoke(&mut conn)?;
    CONNECTIONS
        .get_or_init(Default::default)
        .lock()
        .insert(redis_url.to_owned(), conn);
    Ok(queued)
}

fn ticket_of(op: &Op) -> Option<u64> {
    match op {
        Op::CreateClient { ticket, .. }
        | Op::ClientExists { ticket, .. }
        | Op::DestroyClient { ticket, .. }
        | Op::Subscribe { ticket, .. }
        | Op::Unsubscribe { ticket, .. }
        | Op::Grants { ticket, .. } => Some(*ticket).filter(|t| *t != 0),
        _ => None,
    }
}

fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
        || matches!(
            e.kind(),
            redis::ErrorKind::BusyLoadingError
                | redis::ErrorKind::TryAgain
                | redis::ErrorKind::ClusterDown
                | redis::ErrorKind::MasterDown
                | redis::ErrorKind::ReadOnly
        )
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

fn first_int(v: &Value) -> i64 {
    match v {
        Value::Array(items) => items.first().map(int).unwrap_or(0),
        other => int(other),
    }
}

/// A sorted set's score as Redis answers it (text, or a double over RESP3).
fn score(v: &Value) -> Option<i64> {
    match v {
        Value::Nil => None,
        Value::Double(d) => Some(*d as i64),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .map(|d| d as i64),
        Value::Int(n) => Some(*n),
        _ => None,
    }
}

fn strings(v: Value) -> Vec<String> {
    match v {
        Value::Array(items) | Value::Set(items) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::BulkString(b) => String::from_utf8(b).ok(),
                Value::SimpleString(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Keeps, of the takes of one client's queue in a batch, only the last:
/// it takes everything queued before it, and whatever is queued after it
/// (by any process) is announced on `<ns>/notifications/messages`, which
/// brings another take. A wave of publications to the same subscribers
/// then costs one take per subscriber, not one per message.
fn coalesce_takes(batch: &mut Vec<Op>) {
    let mut later: HashSet<&str> = HashSet::new();
    let mut keep = vec![true; batch.len()];
    for (i, op) in batch.iter().enumerate().rev() {
        if let Op::EmptyQueue { client_id } = op {
            keep[i] = later.insert(client_id.as_str());
        }
    }
    if keep.iter().all(|k| *k) {
        return;
    }
    let mut keep = keep.into_iter();
    batch.retain(|_| keep.next().unwrap_or(true));
}

/// What the take script answers: the messages, and the client's grants
/// (read only when there are messages).
fn taken(v: Value) -> (Vec<String>, Vec<String>) {
    match v {
        Value::Array(items) if items.len() == 2 => {
            let mut items = items.into_iter();
            let messages = strings(items.next().unwrap_or(Value::Nil));
            (messages, strings(items.next().unwrap_or(Value::Nil)))
        }
        _ => Default::default(),
    }
}

fn destroyed(v: Value) -> (bool, Vec<String>, Option<i64>) {
    match v {
        Value::Array(items) if items.len() == 3 => {
            let existed = int(&items[0]) == 1;
            let last_ping = score(&items[2]).filter(|_| existed);
            let channels = strings(items.into_iter().nth(1).unwrap_or(Value::Nil));
            (existed, channels, last_ping)
        }
        _ => (false, Vec::new(), None),
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
