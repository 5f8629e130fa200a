//! The gate: what the reactor thread decides about each Bayeux message,
//! on the spot and without I/O.
//!
//! Faye's `incoming` hook runs on the one thread that serves every client,
//! so the gate only checks the message against the table of this
//! process's clientIds ([`Served`]) and, when something really changed,
//! queues an event for the presence worker. It never blocks and never
//! panics on any input.

use crate::auth::Auth;
use crate::channel;
use crate::clock;
use crate::engine::{Engine, Op};
use crate::error::BayeuxError;
use crate::message::{valid_client_id, Incoming, Verdict};
use crate::outbox::{LogLevel, Outbox};
use crate::presence::PageState;
use crate::presence_worker::{Ending, Event, EventSender, MAX_QUEUED_EVENTS};
use crate::served::{Served, ServedClient};
use parking_lot::Mutex;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub(crate) struct Gate {
    served: Arc<Mutex<Served>>,
    events: EventSender,
    outbox: Arc<Outbox>,
    /// Snapshots skipped because the worker was behind (for the log).
    skipped_snapshots: AtomicUsize,
    /// With a secret, every identity must carry a token the app signed.
    secret: Option<Vec<u8>>,
    /// Faye's engine on Redis, when it is on: its state (Redis away), and
    /// where the rooms a client showed a token for are recorded for every
    /// process.
    engine: Option<Arc<Engine>>,
}

impl Gate {
    pub(crate) fn new(
        served: Arc<Mutex<Served>>,
        events: EventSender,
        secret: Option<&str>,
        outbox: Arc<Outbox>,
        engine: Option<Arc<Engine>>,
    ) -> Gate {
        Gate {
            served,
            events,
            outbox,
            skipped_snapshots: Default::default(),
            secret: secret.map(|s| s.as_bytes().to_vec()),
            engine,
        }
    }

    /// Queues an event for the presence worker.
    pub(crate) fn send(&self, event: Event) {
        // The worker lives as long as the tracker; a send can only fail
        // after `close`, when dropping the event is right.
        self.events.send(event);
    }

    /// Faye created `client_id` in this process.
    pub(crate) fn handshake(&self, client_id: &str) {
        if !valid_client_id(client_id) {
            return;
        }
        let now = clock::now_ms();
        self.served
            .lock()
            .clients
            .insert(client_id.to_owned(), ServedClient::new(now));
    }

    /// Faye ended `client_id`'s session in this process (explicitly or
    /// because it stopped polling): its time ends when it was last seen.
    pub(crate) fn session_ended(&self, client_id: &str) {
        let gone = {
            let mut served = self.served.lock();
            served.seen.remove(client_id);
            served.clients.remove(client_id)
        };
        if let Some(ServedClient {
            auth: Some(_),
            last_seen,
            ..
        }) = gone
        {
            self.send(Event::Disconnect {
                client_id: client_id.to_owned(),
                at: last_seen,
                why: Ending::Vanished,
            });
        }
    }

    /// See [`crate::Tracker::client_vanished`].
    pub(crate) fn client_vanished(&self, client_id: &str, last_ping_ms: i64) {
        if !valid_client_id(client_id) {
            return;
        }
        self.forget(client_id);
        self.send(Event::Disconnect {
            client_id: client_id.to_owned(),
            at: last_ping_ms,
            why: Ending::Vanished,
        });
    }

    /// Drops `client_id` from this process's table, telling nobody.
    pub(crate) fn forget(&self, client_id: &str) {
        let mut served = self.served.lock();
        served.seen.remove(client_id);
        served.clients.remove(client_id);
    }

    /// The incoming hook: never blocks, never panics on any input.
    pub(crate) fn incoming(&self, msg: &Incoming) -> Verdict {
        let now = clock::now_ms();
        let client_id = msg.client_id.as_deref().filter(|c| valid_client_id(c));
        // Faye's engine cannot answer without Redis: a prompt refusal (the
        // client tries again) rather than a request held until Redis returns.
        if msg.channel != "/meta/disconnect" && self.engine.as_ref().is_some_and(|e| e.is_down()) {
            return Verdict::Refuse(BayeuxError::unavailable(
                "Redis is unavailable; try again in a moment",
            ));
        }
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
                if msg
                    .subscription
                    .iter()
                    .any(|s| s == channel::PAGE_STATE_CHANNEL)
                {
                    return Verdict::Refuse(BayeuxError::forbidden(
                        channel::PAGE_STATE_CHANNEL,
                        "page states go to the server only",
                    ));
                }
                self.check_subscription(msg, now)
            }
            "/meta/disconnect" => {
                if let Some(client_id) = client_id {
                    let known = {
                        let mut served = self.served.lock();
                        served.seen.remove(client_id);
                        if self.engine.is_some() {
                            served.note_gone(client_id);
                        }
                        served.clients.remove(client_id)
                    };
                    // Not ours (or never authenticated): the store decides.
                    // With Faye's engine on Redis, a client this process
                    // made may have shown its identity to another one.
                    if self.engine.is_some()
                        || !matches!(known, Some(ServedClient { auth: None, .. }))
                    {
                        self.send(Event::Disconnect {
                            client_id: client_id.to_owned(),
                            at: now,
                            why: if msg.closing {
                                Ending::Closed
                            } else {
                                Ending::Left
                            },
                        });
                    }
                }
                Verdict::Pass
            }
            "/meta/handshake" | "/meta/unsubscribe" => {
                if let Some(client_id) = client_id {
                    self.seen(client_id, now);
                }
                Verdict::Pass
            }
            // Bayeux has no other meta channel. Faye before 1.2.5 handled
            // some others (`/meta/subscribe/x`) as its own without running
            // extensions' checks; none is let through to any version.
            ch if ch == "/meta" || ch.starts_with("/meta/") => {
                Verdict::Refuse(BayeuxError::bad_request(ch, "is not a Bayeux meta channel"))
            }
            channel::PAGE_STATE_CHANNEL => self.page_state(msg, client_id, now),
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

    /// A page reports its state (`data.state`: active, idle or hidden).
    /// Only a client that showed its identity may, at a bounded rate; the
    /// report is handled here and delivered to nobody.
    fn page_state(&self, msg: &Incoming, client_id: Option<&str>, now: i64) -> Verdict {
        let Some(client_id) = client_id else {
            return Verdict::Refuse(BayeuxError::bad_request(
                "clientId",
                "a page state needs the client's clientId",
            ));
        };
        let Some(state) = msg.page_state.as_deref().and_then(PageState::parse) else {
            return Verdict::Refuse(BayeuxError::bad_request(
                "data.state",
                "must be \"active\", \"idle\" or \"hidden\"",
            ));
        };
        {
            let mut served = self.served.lock();
            let gone = served.is_gone(client_id);
            match served.clients.get_mut(client_id) {
                Some(client) if client.auth.is_none() => {
                    return Verdict::Refuse(BayeuxError::forbidden(
                        "clientId",
                        "has not shown its identity (auth) in a /meta/connect",
                    ))
                }
                Some(client) => {
                    if !client.may_report_state(now) {
                        return Verdict::Refuse(BayeuxError::unavailable(
                            "too many page states from this client; send only changes",
                        ));
                    }
                }
                // With Faye's engine on Redis, a client of another process:
                // the hot store knows whether it showed an identity. It
                // has a budget here all the same.
                None if self.engine.is_some() && !gone => {
                    if !served.may_report_remote_state(client_id, now) {
                        return Verdict::Refuse(BayeuxError::unavailable(
                            "too many page states from this client; send only changes",
                        ));
                    }
                }
                None => {
                    return Verdict::Refuse(BayeuxError::forbidden(
                        "clientId",
                        "is not connected here",
                    ))
                }
            }
        }
        if self.busy() {
            return Verdict::Refuse(BayeuxError::unavailable(
                "faye-online is behind with its work; send the state again in a moment",
            ));
        }
        self.seen(client_id, now);
        self.send(Event::State {
            client_id: client_id.to_owned(),
            state,
            at: now,
        });
        Verdict::Pass
    }

    fn seen(&self, client_id: &str, now: i64) {
        let mut served = self.served.lock();
        if let Some(c) = served.clients.get_mut(client_id) {
            c.last_seen = now;
            if c.auth.is_some() {
                // Most messages come from a client already seen this second:
                // update in place, without allocating its id again.
                match served.seen.get_mut(client_id) {
                    Some(at) => *at = now,
                    None => {
                        served.seen.insert(client_id.to_owned(), now);
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
            if let Some(client_id) = msg.client_id.as_deref().filter(|c| valid_client_id(c)) {
                if let Some(client) = self.served.lock().clients.get_mut(client_id) {
                    client.allow_room(room);
                }
                // The lists may reach the client through another process.
                self.grant(client_id, room);
            }
        }
        Verdict::Pass
    }

    /// Whether `client_id` may receive a publication on `channel`: with a
    /// secret, a room's lists go only to the clients that showed a valid
    /// token for that room, however they subscribed (a wildcard, a long
    /// subscription list); everything else goes to every subscriber.
    pub(crate) fn may_receive(&self, client_id: &str, channel: &str) -> bool {
        if self.secret.is_none() {
            return true;
        }
        let Some((room, _)) = channel::room_of_list_channel(channel) else {
            return !channel::is_server_only(channel);
        };
        self.served
            .lock()
            .clients
            .get(client_id)
            .is_some_and(|c| c.may_watch.iter().any(|r| r == room))
    }

    fn connect(&self, client_id: &str, auth: Auth, value: &Value, now: i64) -> Verdict {
        let mut served = self.served.lock();
        if !served.clients.contains_key(client_id) {
            if self.engine.is_none() || served.is_gone(client_id) {
                // Not a clientId of this process: Faye answers 401 itself.
                return Verdict::Pass;
            }
            // With Faye's engine on Redis, any process may have made it:
            // the hot store records it only if the engine knows it.
            served
                .clients
                .insert(client_id.to_owned(), ServedClient::new(now));
        }
        let Some(client) = served.clients.get_mut(client_id) else {
            return Verdict::Pass;
        };
        client.last_seen = now;
        match &client.auth {
            Some(known) if *known == auth => {
                served.seen.insert(client_id.to_owned(), now);
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
            None if self.busy() => Verdict::Refuse(BayeuxError::unavailable(
                "faye-online is behind with its work; connect again in a moment",
            )),
            None => {
                // A token is checked once, when the clientId first connects:
                // a page left open past its token's expiry stays online.
                if let Some(secret) = &self.secret {
                    if let Err(e) = auth.verify(secret, value, now / 1000) {
                        return Verdict::Refuse(e);
                    }
                    client.allow_room(&auth.room);
                }
                client.auth = Some(auth.clone());
                drop(served);
                if self.secret.is_some() {
                    self.grant(client_id, &auth.room);
                }
                self.send(Event::Connect {
                    client_id: client_id.to_owned(),
                    auth,
                    at: now,
                });
                Verdict::Pass
            }
        }
    }

    /// With Faye's engine on Redis, records that `client_id` may receive
    /// `room`'s lists, for whichever process delivers them (it is written
    /// before the subscription that follows, as ops run in order).
    fn grant(&self, client_id: &str, room: &str) {
        if let Some(engine) = &self.engine {
            if !engine.submit(Op::Grant {
                client_id: client_id.to_owned(),
                grants: vec![format!("room:{room}")],
            }) {
                self.outbox.log(
                    LogLevel::Warn,
                    "Faye's engine is behind or stopped: a room token was not recorded for other processes",
                );
            }
        }
    }

    /// Whether the worker's queue is full (see [`MAX_QUEUED_EVENTS`]).
    fn busy(&self) -> bool {
        self.events.queued() >= MAX_QUEUED_EVENTS
    }

    /// Faye's `:subscribe` event: after a successful subscription to a
    /// room's user_list (or user_changes), the subscriber gets the current
    /// list; a room's user_list subscriptions are counted while they last.
    pub(crate) fn subscribed(&self, client_id: &str, subscription: &str) {
        if !valid_client_id(client_id) {
            return;
        }
        if let Some((room, changes)) = channel::room_of_list_channel(subscription) {
            if !changes {
                *self
                    .served
                    .lock()
                    .watched
                    .entry(room.to_owned())
                    .or_insert(0) += 1;
            }
            if self.busy() {
                let skipped = self.skipped_snapshots.fetch_add(1, Ordering::SeqCst);
                if skipped.is_multiple_of(1000) {
                    self.outbox.log(
                        LogLevel::Warn,
                        format!(
                            "the presence worker is behind: skipped {} snapshots for new subscribers so far",
                            skipped + 1
                        ),
                    );
                }
                return;
            }
            self.send(Event::Snapshot {
                client_id: client_id.to_owned(),
                room: room.to_owned(),
                changes,
            });
        }
    }

    /// Faye's `:unsubscribe` event (also sent for each subscription of a
    /// client that goes away).
    pub(crate) fn unsubscribed(&self, _client_id: &str, subscription: &str) {
        if let Some((room, false)) = channel::room_of_list_channel(subscription) {
            let mut served = self.served.lock();
            if let Some(count) = served.watched.get_mut(room) {
                *count -= 1;
                if *count == 0 {
                    served.watched.remove(room);
                }
            }
        }
    }

    /// Sizes of what the gate keeps, for [`crate::tracker::Stats`].
    pub(crate) fn sizes(&self) -> (usize, usize, usize) {
        let served = self.served.lock();
        (
            served.clients.len(),
            served.watched.len(),
            self.events.queued(),
        )
    }
}
