//! The tracker: wires the gate, the presence worker, the SQL writer and
//! the fan-out listener together, and is the one handle the host holds.
//!
//! ```text
//! reactor ── incoming ──▶ gate ── Event ──▶ presence worker ── Record ──▶ SQL writer
//!    ▲                                        │      │                       │
//!    └──── drain ◀── outbox ◀── publications ─┘      └── hot store ◀── memberships
//! ```
//!
//! [`Tracker::incoming`] runs inside Faye's `incoming` hook and never waits
//! on I/O (see [`crate::gate`]). The worker applies real changes to the hot
//! store (memory or Redis) and turns them into durable records and
//! publications; the writer applies records to SQL, retrying until they
//! land. Publications go to a queue that the host drains on its own
//! thread; a byte written to a socket pair wakes it (see
//! [`Tracker::take_waker_fd`]).

use crate::config::Config;
use crate::durable::DurableStore;
use crate::engine::{Engine, EngineConfig};
use crate::error::StoreError;
use crate::gate::Gate;
use crate::ledger::Memberships;
use crate::memory::MemoryStore;
use crate::message::{Incoming, Verdict};
use crate::outbox::{LogLevel, Notification, Outbox};
use crate::presence::HotStore;
use crate::presence_worker::{event_queue, panic_text, ticker, Event, Worker};
use crate::query::Query;
use crate::redis_store::RedisStore;
use crate::served::Served;
use crate::{fanout, sql, sql_writer};
use parking_lot::Mutex;
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Tracker {
    query: Arc<Query>,
    gate: Gate,
    /// Records waiting for SQL (see [`Stats`]).
    pending: Arc<std::sync::atomic::AtomicUsize>,
    /// Channel ids the writer keeps (see [`Stats`]).
    cached_channel_ids: Arc<std::sync::atomic::AtomicUsize>,
    outbox: Arc<Outbox>,
    waker_fd: Mutex<Option<UnixStream>>,
    stopping: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    engine: Option<Arc<Engine>>,
}

/// How much a tracker holds in memory, each bounded: clientIds served here
/// (until Faye ends them), rooms watched here (while subscribed), events
/// waiting for the worker (up to 100,000), records waiting for SQL (up to
/// `max_pending_records`), channel ids the writer caches (up to 4,096).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub served_clients: usize,
    pub watched_rooms: usize,
    pub queued_events: usize,
    pub pending_records: usize,
    pub cached_channel_ids: usize,
}

/// The hot store as the SQL writer sees it: who is in a room now, and
/// when a running timer started. SQL rows follow it (see
/// [`DurableStore::apply_batch`]).
pub struct HotMemberships(pub Arc<dyn HotStore>);

impl Memberships for HotMemberships {
    fn in_room(&self, room: &str, uid: u64) -> Result<bool, StoreError> {
        self.0.room_has(room, uid)
    }

    fn timer_started_at(&self, uid: u64, time: &str) -> Result<Option<i64>, StoreError> {
        self.0.timer_started_at(uid, time)
    }
}

impl Tracker {
    pub fn new(config: &Config) -> Result<Tracker, StoreError> {
        let redis = match &config.redis_url {
            Some(url) => {
                let store = RedisStore::new(url, &config.namespace)?;
                Some(Arc::new(match &config.faye_engine {
                    Some(engine) => store.with_faye_engine(&config.namespace, engine.timeout_ms),
                    None => store,
                }))
            }
            None => None,
        };
        if let Some(redis) = &redis {
            match redis.check_version() {
                Err(e) if e.is_permanent() => return Err(e),
                // Unreachable now: presence retries until it is back.
                _ => {}
            }
        }
        let hot: Arc<dyn HotStore> = match &redis {
            Some(r) => r.clone(),
            None => Arc::new(MemoryStore::new()),
        };
        let query = Arc::new(Query::with_hot(hot.clone(), &config.database_url));
        let (outbox, wake_read) = Outbox::new()?;
        let outbox = Arc::new(outbox);
        let served = Arc::new(Mutex::new(Served::default()));
        let stopping = Arc::new(AtomicBool::new(false));
        let (events_tx, events_rx) = event_queue();
        // First of all events: nothing a client does can come before it.
        events_tx.send(Event::Repair);

        let mut threads = Vec::new();
        // The writer reads memberships on a connection of its own, so that
        // it never waits on the presence worker's.
        let writer_view: Arc<dyn HotStore> = match &config.redis_url {
            Some(url) => Arc::new(RedisStore::new(url, &config.namespace)?),
            None => hot.clone(),
        };
        let (writes, writer) = sql_writer::writer(
            DurableStore::new(&config.database_url),
            Arc::new(HotMemberships(writer_view)),
            config.max_pending_records,
            outbox.clone(),
            stopping.clone(),
        );
        let writes_pending = writes.pending();
        let cached_channel_ids = writer.cached_channel_ids();
        threads.push(spawn("faye-online-writer", &outbox, move || writer.run())?);
        let worker = Worker::new(
            config,
            hot,
            query.clone(),
            writes,
            outbox.clone(),
            served.clone(),
            stopping.clone(),
        );
        threads.push(spawn("faye-online-presence", &outbox, move || {
            worker.run(events_rx)
        })?);
        let ticker_tx = events_tx.clone();
        let ticker_served = served.clone();
        let ticker_stop = stopping.clone();
        let gc_every = config.gc_interval_ms;
        threads.push(spawn("faye-online-ticker", &outbox, move || {
            ticker(ticker_tx, ticker_served, ticker_stop, gc_every)
        })?);
        let engine = match (&config.faye_engine, &config.redis_url) {
            (Some(settings), Some(url)) => Some(Arc::new(Engine::start(
                &EngineConfig {
                    redis_url: url.clone(),
                    namespace: config.namespace.clone(),
                    timeout_ms: settings.timeout_ms,
                    gc_ms: settings.gc_ms,
                },
                outbox.clone(),
                stopping.clone(),
                |name, f| {
                    threads.push(spawn(name, &outbox, f)?);
                    Ok(())
                },
            )?)),
            _ => None,
        };
        if let Some(redis) = redis {
            let (out, stop, resync) = (outbox.clone(), stopping.clone(), events_tx.clone());
            threads.push(spawn("faye-online-listener", &outbox, move || {
                fanout::listen(redis, out, stop, resync)
            })?);
        }

        let backend = match &config.redis_url {
            Some(url) => format!(
                "Redis {} (namespace {})",
                sql::redact(url),
                config.namespace
            ),
            None => "process memory".to_string(),
        };
        outbox.log(
            LogLevel::Info,
            format!(
                "presence in {backend}, records in {}",
                sql::redact(&config.database_url)
            ),
        );
        if config.secret.is_none() {
            outbox.log(
                LogLevel::Warn,
                "no secret is set: identities are not verified, and any page can claim any uid",
            );
        }
        Ok(Tracker {
            query,
            gate: Gate::new(
                served,
                events_tx,
                config.secret.as_deref(),
                outbox.clone(),
                engine.clone(),
            ),
            engine,
            pending: writes_pending,
            cached_channel_ids,
            outbox,
            waker_fd: Mutex::new(Some(wake_read)),
            stopping,
            threads: Mutex::new(threads),
        })
    }

    pub fn query(&self) -> &Arc<Query> {
        &self.query
    }

    /// Faye's engine on Redis, when configured.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_deref()
    }

    /// The read end of the wake-up socket, handed over once to the host,
    /// which watches it and calls [`Tracker::drain`] when it is readable.
    pub fn take_waker_fd(&self) -> Option<UnixStream> {
        self.waker_fd.lock().take()
    }

    /// Notifications waiting for the host.
    pub fn drain(&self) -> Vec<Notification> {
        self.outbox.drain()
    }

    /// Faye created `client_id` in this process.
    pub fn handshake(&self, client_id: &str) {
        self.gate.handshake(client_id)
    }

    /// Faye ended `client_id`'s session in this process (explicitly or
    /// because it stopped polling): its time ends when it was last seen.
    pub fn session_ended(&self, client_id: &str) {
        self.gate.session_ended(client_id)
    }

    /// Faye's engine on Redis destroyed `client_id` here because it stopped
    /// polling every process: its presence ends at `last_ping_ms`, its last
    /// poll anywhere (the hot store decides whether it was online).
    pub fn client_vanished(&self, client_id: &str, last_ping_ms: i64) {
        self.gate.client_vanished(client_id, last_ping_ms)
    }

    /// Faye's engine on Redis destroyed `client_id` (in any process, which
    /// ended its presence): this process forgets it.
    pub fn forget_client(&self, client_id: &str) {
        self.gate.forget(client_id)
    }

    /// The incoming hook: never blocks, never panics on any input.
    pub fn incoming(&self, msg: &Incoming) -> Verdict {
        self.gate.incoming(msg)
    }

    /// After a successful subscription to a room's user_list (or
    /// user_changes), the subscriber gets the current list.
    pub fn subscribed(&self, client_id: &str, subscription: &str) {
        self.gate.subscribed(client_id, subscription)
    }

    /// Faye's `:unsubscribe` event.
    pub fn unsubscribed(&self, client_id: &str, subscription: &str) {
        self.gate.unsubscribed(client_id, subscription)
    }

    /// How much the tracker holds in memory now.
    pub fn stats(&self) -> Stats {
        let (served_clients, watched_rooms, queued_events) = self.gate.sizes();
        Stats {
            served_clients,
            watched_rooms,
            queued_events,
            pending_records: self.pending.load(Ordering::SeqCst),
            cached_channel_ids: self.cached_channel_ids.load(Ordering::SeqCst),
        }
    }

    /// Whether `client_id` may receive a publication on `channel` (see
    /// the gate's `may_receive`): the host asks before each delivery of a
    /// room's lists. No I/O.
    pub fn may_receive(&self, client_id: &str, channel: &str) -> bool {
        self.gate.may_receive(client_id, channel)
    }

    /// Waits until every event queued so far is applied to the hot store and
    /// written to SQL, or until `timeout`; true if everything landed.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        self.gate.send(Event::Barrier(tx));
        rx.recv_timeout(timeout).is_ok()
    }

    /// Flushes (up to `timeout`) and stops the threads.
    pub fn close(&self, timeout: Duration) -> bool {
        if self.stopping.load(Ordering::SeqCst) {
            return true;
        }
        let flushed = self.flush(timeout);
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(engine) = &self.engine {
            engine.close();
        }
        self.gate.send(Event::Stop);
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

/// Starts one of the tracker's threads. The worker and the writer recover
/// from a bug in one event or batch themselves; should any thread still
/// end in a panic, it says so in the log, never silently.
fn spawn(
    name: &str,
    outbox: &Arc<Outbox>,
    f: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, StoreError> {
    let (thread, outbox) = (name.to_owned(), outbox.clone());
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
                outbox.log(
                    LogLevel::Error,
                    format!(
                        "faye-online's thread {thread} stopped after a bug: {}",
                        panic_text(panic.as_ref())
                    ),
                );
            }
        })
        .map_err(|e| StoreError::other(format!("cannot start thread {name}: {e}")))
}

#[cfg(test)]
#[path = "tracker_tests/mod.rs"]
mod tests;
