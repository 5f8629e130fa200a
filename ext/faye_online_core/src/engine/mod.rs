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

const DESTROY: &str = include_str!("../lua/engine/destroy.lua");
const PUBLISH: &str = include_str!("../lua/engine/publish.lua");
const ENQUEUE: &str = include_str!("../lua/engine/enqueue.lua");
const TAKE: &str = include_str!("../lua/engine/take.lua");
const CONNECT: &str = include_str!("../lua/engine/connect.lua");
const GC_LOCK: &str = include_str!("../lua/engine/gc_lock.lua");

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
    /// and its wildcard patterns). With a ticket, [`Reply::Published`]
    /// says when it is in Redis: the host holds the publisher's answer
    /// until then, so that a publisher whose next request reaches another
    /// process finds its earlier messages queued first.
    Publish {
        ticket: u64,
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
    /// A publication with a ticket is in Redis.
    Published { ticket: u64 },
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

mod direct;
mod listener;
pub mod memory;
mod runner;

pub use direct::publish_direct;
use listener::Listener;
use runner::Runner;

fn ticket_of(op: &Op) -> Option<u64> {
    match op {
        Op::CreateClient { ticket, .. }
        | Op::ClientExists { ticket, .. }
        | Op::DestroyClient { ticket, .. }
        | Op::Subscribe { ticket, .. }
        | Op::Unsubscribe { ticket, .. }
        | Op::Grants { ticket, .. }
        | Op::Publish { ticket, .. } => Some(*ticket).filter(|t| *t != 0),
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
mod tests;
