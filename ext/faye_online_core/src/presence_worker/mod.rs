//! The presence worker: applies what the gate decided to the hot store,
//! on a thread of its own, and turns what really changed into durable
//! records (for the SQL writer) and publications (for the host).
//!
//! It is the only code that writes presence to the hot store for this
//! process, so it also keeps what it would need to put back if the store
//! lost its state (a Redis server restarted empty). A ticker thread beside
//! it batches last-seen times and asks for sweeps.

use crate::auth::{Auth, User};
use crate::channel;
use crate::clock;
use crate::config::Config;
use crate::error::StoreError;
use crate::ledger::Record;
use crate::lists::{user_changes_message, user_list_message};
use crate::outbox::{EventKind, LogLevel, Notification, Outbox, PresenceEvent};
use crate::presence::{ClientRecord, ConnectOutcome, HotStore, PageState};
use crate::query::Query;
use crate::retry::retry_until_ok;
use crate::served::Served;
use crate::sql_writer::WriteQueue;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

mod states;

/// What the gate, the ticker and the listener ask of the worker, in order.
pub(crate) enum Event {
    Connect {
        client_id: String,
        auth: Auth,
        at: i64,
    },
    Disconnect {
        client_id: String,
        at: i64,
        why: Ending,
    },
    /// A clientId reported its page's state.
    State {
        client_id: String,
        state: PageState,
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

/// Why a clientId's time ended, as the interval ledger says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// It sent `/meta/disconnect`.
    Left,
    /// Its page went away (the browser client's leave on `pagehide`).
    Closed,
    /// It stopped polling; its time ends at its last poll.
    Vanished,
    /// The server stopped while it was there (a store that dies with
    /// the process).
    Stopped,
}

impl Ending {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ending::Left => "left",
            Ending::Closed => "closed",
            Ending::Vanished => "vanished",
            Ending::Stopped => "stopped",
        }
    }
}

/// Events waiting for the worker at most: past it the gate refuses new
/// connects (the client retries a moment later) and skips snapshots, so
/// that a worker that cannot keep up (a hot store that is away) does not
/// grow the queue without bound. Leaves, last-seen times and sweeps still
/// queue: there are no more of them than clients admitted.
pub(crate) const MAX_QUEUED_EVENTS: usize = 100_000;

/// The sending end of the worker's queue, which counts what waits in it.
#[derive(Clone)]
pub(crate) struct EventSender {
    tx: Sender<Event>,
    queued: Arc<AtomicUsize>,
}

impl EventSender {
    /// Queues `event`; false once the worker has stopped.
    pub(crate) fn send(&self, event: Event) -> bool {
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(event).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// How many events wait for the worker.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }
}

/// The worker's end of its queue.
pub(crate) struct EventReceiver {
    rx: Receiver<Event>,
    queued: Arc<AtomicUsize>,
}

impl EventReceiver {
    fn recv(&self) -> Option<Event> {
        let event = self.rx.recv().ok()?;
        self.queued.fetch_sub(1, Ordering::SeqCst);
        Some(event)
    }
}

/// The worker's queue.
pub(crate) fn event_queue() -> (EventSender, EventReceiver) {
    let (tx, rx) = std::sync::mpsc::channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        EventSender {
            tx,
            queued: queued.clone(),
        },
        EventReceiver { rx, queued },
    )
}

impl Event {
    /// What the event is, for logs.
    fn kind(&self) -> &'static str {
        match self {
            Event::Connect { .. } => "a connect",
            Event::Disconnect { .. } => "a disconnect",
            Event::State { .. } => "a page state",
            Event::Snapshot { .. } => "a snapshot",
            Event::Touch(_) => "last-seen times",
            Event::Sweep => "a sweep",
            Event::Repair => "the repair at start",
            Event::Resync => "a resync",
            Event::Barrier(_) => "a flush",
            Event::Stop => "the stop",
        }
    }
}

/// The message a panic carried, for the log.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// Writes last-seen times to the hot store every second and asks for a
/// sweep every `gc_every_ms`.
pub(crate) fn ticker(
    events: EventSender,
    served: Arc<Mutex<Served>>,
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
            let seen: Vec<(String, i64)> = served.lock().seen.drain().collect();
            if !seen.is_empty() && !events.send(Event::Touch(seen)) {
                return;
            }
        }
        if gc_every_ms > 0 && since_gc >= Duration::from_millis(gc_every_ms as u64) {
            since_gc = Duration::ZERO;
            if !events.send(Event::Sweep) {
                return;
            }
        }
    }
}

pub(crate) struct Worker {
    hot: Arc<dyn HotStore>,
    writes: WriteQueue,
    outbox: Arc<Outbox>,
    served: Arc<Mutex<Served>>,
    stopping: Arc<AtomicBool>,
    session_timeout_ms: i64,
    full_lists: bool,
    /// Faye's engine is shared through Redis: a publication handed to this
    /// process's Faye reaches every process's subscribers.
    shared_engine: bool,
    /// The clientIds of this process that the hot store holds (as far as
    /// this worker applied them), with their auth and join time: what to
    /// put back if the store loses its state.
    held: RefCell<HashMap<String, (Auth, i64)>>,
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
    pub(crate) fn new(
        config: &Config,
        hot: Arc<dyn HotStore>,
        query: Arc<Query>,
        writes: WriteQueue,
        outbox: Arc<Outbox>,
        served: Arc<Mutex<Served>>,
        stopping: Arc<AtomicBool>,
    ) -> Worker {
        Worker {
            hot,
            writes,
            outbox,
            served,
            stopping,
            session_timeout_ms: config.session_timeout_ms,
            full_lists: config.full_lists,
            shared_engine: config.faye_engine.is_some(),
            held: RefCell::new(HashMap::new()),
            restored_generation: Cell::new(0),
            resync: Cell::new(false),
            snapshots_due: RefCell::new(Vec::new()),
            query,
        }
    }

    /// Handles events until `Stop`. A bug that panics while handling one
    /// event is logged, and the worker goes on with the next: presence
    /// never stops silently.
    pub(crate) fn run(self, events: EventReceiver) {
        while let Some(event) = events.recv() {
            let kind = event.kind();
            match catch_unwind(AssertUnwindSafe(|| self.handle(event))) {
                Ok(true) => {}
                Ok(false) => return,
                Err(panic) => self.outbox.log(
                    LogLevel::Error,
                    format!(
                        "the presence worker hit a bug handling {kind} ({}); it goes on with the next event",
                        panic_text(panic.as_ref())
                    ),
                ),
            }
        }
    }

    /// Applies one event; false after `Stop`.
    fn handle(&self, event: Event) -> bool {
        match event {
            Event::Connect {
                client_id,
                auth,
                at,
            } => self.connect(&client_id, &auth, at),
            Event::Disconnect { client_id, at, why } => {
                self.disconnect(&client_id, at, why);
            }
            Event::State {
                client_id,
                state,
                at,
            } => self.page_state(&client_id, state, at),
            Event::Snapshot {
                client_id,
                room,
                changes,
            } => {
                if let Some(users) = self.with_hot("read a room", || self.hot.room_users(&room)) {
                    let (channel, data) = if changes {
                        (
                            channel::user_changes_channel(&room),
                            self.changes_snapshot(&room, &users),
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
                let watched: Vec<String> = self.served.lock().watched.keys().cloned().collect();
                for room in watched {
                    self.snapshot_here(&room);
                }
            }
            Event::Barrier(ack) => {
                self.writes.barrier(ack);
            }
            Event::Stop => {
                self.end_at_stop();
                self.writes.stop();
                return false;
            }
        }
        true
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
        let clients: Vec<ClientRecord> = {
            let served = self.served.lock();
            let now = clock::now_ms();
            self.held
                .borrow()
                .iter()
                .map(|(id, (auth, joined))| ClientRecord {
                    client_id: id.clone(),
                    auth: auth.clone(),
                    joined_ms: *joined,
                    last_seen_ms: served.clients.get(id).map_or(now, |c| c.last_seen),
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

    /// Queues a record for SQL; false when it was dropped past the bound.
    fn write(&self, record: Record) -> bool {
        self.writes.push(record, &self.outbox)
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
    /// (or if that fails) to this process's subscribers. With Faye's engine
    /// on Redis, this process's Faye reaches every subscriber itself.
    fn send_out(&self, channel: String, data: Value) {
        if self.shared_engine {
            self.outbox.push(Notification::Publish { channel, data });
            return;
        }
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
            self.changes_snapshot(room, &users),
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
                data: self.changes_snapshot(room, &users),
            });
        }
    }

    fn connect(&self, client_id: &str, auth: &Auth, at: i64) {
        let Some(outcome) =
            self.with_hot("record a connect", || self.hot.connect(client_id, auth, at))
        else {
            return;
        };
        if !matches!(
            outcome,
            ConnectOutcome::Conflict(_) | ConnectOutcome::UnknownClient
        ) {
            self.held
                .borrow_mut()
                .entry(client_id.to_owned())
                .or_insert_with(|| (auth.clone(), at));
        }
        match outcome {
            ConnectOutcome::Joined {
                room_joined,
                room_occupied,
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
                    if room_occupied {
                        self.event(EventKind::Occupied, auth, at);
                    }
                    self.event(EventKind::Joined, auth, at);
                }
            }
            ConnectOutcome::AlreadyKnown => {}
            // A clientId Faye's engine does not know (made up, or already
            // gone): Faye refuses its connect; this process forgets it.
            ConnectOutcome::UnknownClient => {
                let mut served = self.served.lock();
                served.clients.remove(client_id);
                served.seen.remove(client_id);
            }
            ConnectOutcome::Conflict(known) => self.outbox.log(
                LogLevel::Warn,
                format!(
                    "clientId {client_id} is already recorded for user {} in {}; ignored a claim for user {} in {}",
                    known.user.uid, known.room, auth.user.uid, auth.room
                ),
            ),
        }
    }

    fn disconnect(&self, client_id: &str, at: i64, why: Ending) {
        let outcome = self.with_hot("record a disconnect", || self.hot.disconnect(client_id, at));
        self.held.borrow_mut().remove(client_id);
        let Some(Some(out)) = outcome else {
            return;
        };
        let auth = &out.auth;
        if let Some(now) = out.user_state_now {
            self.publish_state(&auth.room, &auth.user, now);
        }
        let timer_queued = self.write_leave(client_id, &out, at, why);
        if out.room_left {
            self.publish(&auth.room, ("left", &auth.user));
            self.event(EventKind::Left, auth, at);
            if out.room_vacated {
                self.event(EventKind::Vacated, auth, at);
            }
        }
        // Told once its row is written, so that a listener reading SQL
        // finds the time there (not at all when the row was dropped past
        // the bound, which is logged).
        if let (true, Some(started)) = (timer_queued, out.timer_started_at) {
            self.writes.notify_after(PresenceEvent {
                kind: EventKind::TimeCredited,
                room: auth.room.clone(),
                lesson: auth.time.clone(),
                user: auth.user.clone(),
                at_ms: out.timer_ended_at,
                session: Some((started, out.timer_credited_ms)),
            });
        }
    }

    /// Tells the host's listeners (callbacks, webhooks) of a change.
    fn event(&self, kind: EventKind, auth: &Auth, at_ms: i64) {
        self.outbox.push(Notification::Event(PresenceEvent {
            kind,
            room: auth.room.clone(),
            lesson: auth.time.clone(),
            user: auth.user.clone(),
            at_ms,
            session: None,
        }));
    }

    /// Prunes users from the SQL online lists whom the hot store does not
    /// have online: with process memory nobody is online at start; with
    /// Redis, the processes that share it know who is.
    fn repair(&self) {
        if let Some(moved) = self.with_hot("move clientIds to this version's layout", || {
            self.hot.upgrade_layout()
        }) {
            if moved > 0 {
                self.outbox.log(
                    LogLevel::Info,
                    format!("moved {moved} clientIds from the hot store's older layout"),
                );
            }
        }
        // One try: presence must not wait on SQL.
        let lists = match self.query.recorded_online_lists() {
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
                let served = self.served.lock();
                served
                    .clients
                    .get(&client_id)
                    .is_some_and(|c| c.last_seen >= before)
            };
            if fresh {
                continue;
            }
            self.served.lock().clients.remove(&client_id);
            self.disconnect(&client_id, last_seen, Ending::Vanished);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use crate::presence::contract::auth;
    use crate::presence::{ClientRecord, DisconnectOutcome};
    use crate::sql_writer;
    use crate::test_support::{log_lines, TempSqlite};
    use crate::tracker::HotMemberships;
    use std::sync::mpsc;

    /// The memory store, with a bug: it panics for uid 666.
    struct Buggy(MemoryStore);

    impl HotStore for Buggy {
        fn connect(&self, id: &str, a: &Auth, now: i64) -> Result<ConnectOutcome, StoreError> {
            assert_ne!(a.user.uid, 666, "a bug in the store");
            self.0.connect(id, a, now)
        }
        fn disconnect(&self, id: &str, at: i64) -> Result<Option<DisconnectOutcome>, StoreError> {
            self.0.disconnect(id, at)
        }
        fn room_users(&self, room: &str) -> Result<Vec<User>, StoreError> {
            self.0.room_users(room)
        }
        fn room_count(&self, room: &str) -> Result<usize, StoreError> {
            self.0.room_count(room)
        }
        fn room_states(
            &self,
            room: &str,
        ) -> Result<std::collections::HashMap<u64, PageState>, StoreError> {
            self.0.room_states(room)
        }
        fn room_has(&self, room: &str, uid: u64) -> Result<bool, StoreError> {
            self.0.room_has(room, uid)
        }
        fn timer_started_at(&self, uid: u64, time: &str) -> Result<Option<i64>, StoreError> {
            self.0.timer_started_at(uid, time)
        }
        fn touch(&self, seen: &[(String, i64)]) -> Result<(), StoreError> {
            self.0.touch(seen)
        }
        fn pages(&self, ids: &[String]) -> Result<Vec<Option<(PageState, i64)>>, StoreError> {
            self.0.pages(ids)
        }
        fn set_state(
            &self,
            id: &str,
            state: PageState,
            at: i64,
        ) -> Result<Option<crate::presence::StateOutcome>, StoreError> {
            self.0.set_state(id, state, at)
        }
        fn last_seen(&self, id: &str) -> Result<Option<i64>, StoreError> {
            self.0.last_seen(id)
        }
        fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
            self.0.clients()
        }
        fn stale_clients(&self, before: i64, n: usize) -> Result<Vec<(String, i64)>, StoreError> {
            self.0.stale_clients(before, n)
        }
    }

    #[test]
    fn a_bug_in_one_event_is_logged_and_the_worker_goes_on() {
        let db = TempSqlite::new("worker_panic");
        let config =
            Config::from_json(&serde_json::json!({"database_url": db.url}).to_string()).unwrap();
        let hot: Arc<dyn HotStore> = Arc::new(Buggy(MemoryStore::new()));
        let (outbox, _wake) = Outbox::new().unwrap();
        let outbox = Arc::new(outbox);
        let stopping = Arc::new(AtomicBool::new(false));
        let (writes, writer) = sql_writer::writer(
            crate::durable::DurableStore::new(&db.url),
            Arc::new(HotMemberships(hot.clone())),
            1000,
            outbox.clone(),
            stopping.clone(),
        );
        let writer = std::thread::spawn(move || writer.run());
        let query = Arc::new(Query::with_hot(hot.clone(), &db.url));
        let worker = Worker::new(
            &config,
            hot.clone(),
            query,
            writes,
            outbox.clone(),
            Arc::new(Mutex::new(Served::default())),
            stopping,
        );
        let (tx, rx) = event_queue();
        let worker = std::thread::spawn(move || worker.run(rx));
        let connect = |id: &str, uid| Event::Connect {
            client_id: id.into(),
            auth: auth("/classes/4", "/courses/5/lessons/1", uid, "u"),
            at: 1_000,
        };
        assert!(tx.send(connect("bad", 666)));
        assert!(tx.send(connect("good", 7)));
        let (ack, acked) = mpsc::channel();
        assert!(tx.send(Event::Barrier(ack)));
        acked.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(hot.room_users("/classes/4").unwrap().len(), 1);
        let logs: Vec<String> = log_lines(outbox.drain());
        assert!(
            logs.iter()
                .any(|l| l.contains("hit a bug handling a connect")
                    && l.contains("a bug in the store")),
            "{logs:?}"
        );
        assert!(tx.send(Event::Stop));
        worker.join().unwrap();
        assert_eq!(tx.queued(), 0);
        writer.join().unwrap();
    }
}
