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
use crate::outbox::{LogLevel, Notification, Outbox};
use crate::presence::{ClientRecord, ConnectOutcome, HotStore};
use crate::query::Query;
use crate::retry::retry_until_ok;
use crate::served::Served;
use crate::sql_writer::WriteQueue;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

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

/// Writes last-seen times to the hot store every second and asks for a
/// sweep every `gc_every_ms`.
pub(crate) fn ticker(
    events: Sender<Event>,
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

pub(crate) struct Worker {
    hot: Arc<dyn HotStore>,
    writes: WriteQueue,
    outbox: Arc<Outbox>,
    served: Arc<Mutex<Served>>,
    stopping: Arc<AtomicBool>,
    session_timeout_ms: i64,
    full_lists: bool,
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
            held: RefCell::new(HashMap::new()),
            restored_generation: Cell::new(0),
            resync: Cell::new(false),
            snapshots_due: RefCell::new(Vec::new()),
            query,
        }
    }

    pub(crate) fn run(self, events: Receiver<Event>) {
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
                    let watched: Vec<String> = self.served.lock().watched.iter().cloned().collect();
                    for room in watched {
                        self.snapshot_here(&room);
                    }
                }
                Event::Barrier(ack) => {
                    self.writes.barrier(ack);
                }
                Event::Stop => {
                    self.writes.stop();
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

    fn write(&self, record: Record) {
        self.writes.push(record, &self.outbox);
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
            self.held
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
        self.held.borrow_mut().remove(client_id);
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
            self.disconnect(&client_id, last_seen);
        }
    }
}
