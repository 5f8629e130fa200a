//! The worker's part of the two clocks: a page's reported state, the
//! interval ledger's rows of a clientId that leaves, the user's state on
//! `<room>/user_changes`, and what a store that dies with this process
//! writes at stop.

use super::{Ending, Worker};
use crate::auth::User;
use crate::channel;
use crate::clock;
use crate::ledger::{IntervalKind, Record};
use crate::lists::user_changes_message;
use crate::presence::{DisconnectOutcome, PageState};
use serde_json::{json, Value};

impl Worker {
    /// A room's whole list for `<room>/user_changes`: each user with their
    /// state over their tabs, when their pages report one.
    pub(super) fn changes_snapshot(&self, room: &str, users: &[User]) -> Value {
        let states = self
            .with_hot("read a room's states", || self.hot.room_states(room))
            .unwrap_or_default();
        let mut data = user_changes_message(room, users.len(), Some(users), None);
        if let Some(Value::Array(listed)) = data.get_mut("users") {
            for user in listed.iter_mut() {
                let state = user["uid"].as_u64().and_then(|uid| states.get(&uid));
                if let Some(state) = state {
                    user["state"] = json!(state.name());
                }
            }
        }
        data
    }

    /// The durable records of a clientId that left at `at`: its intervals,
    /// its logout row, its user's timer stop (true when that was queued)
    /// and room leave.
    pub(super) fn write_leave(
        &self,
        client_id: &str,
        out: &DisconnectOutcome,
        at: i64,
        why: Ending,
    ) -> bool {
        let auth = &out.auth;
        self.write_intervals(client_id, out, at, why);
        self.write(Record::Login {
            status: 0,
            uid: auth.user.uid,
            at_ms: at,
            time: auth.time.clone(),
            client_id: client_id.to_owned(),
        });
        let timer_queued = match out.timer_started_at {
            Some(started) => self.write(Record::TimerStop {
                uid: auth.user.uid,
                time: auth.time.clone(),
                started_ms: started,
                credited_ms: out.timer_credited_ms,
                restored: out.timer_restored,
            }),
            None => false,
        };
        if out.room_left {
            self.write(Record::RoomLeave {
                room: auth.room.clone(),
                uid: auth.user.uid,
            });
        }
        timer_queued
    }

    /// The ledger's intervals of a clientId that left at `at`: its
    /// attended time, and its engaged time if its page was active.
    pub(super) fn write_intervals(
        &self,
        client_id: &str,
        out: &DisconnectOutcome,
        at: i64,
        why: Ending,
    ) {
        let interval = |measure, started_ms: i64| Record::Interval {
            uid: out.auth.user.uid,
            time: out.auth.time.clone(),
            client_id: client_id.to_owned(),
            measure,
            started_ms,
            ended_ms: at.max(started_ms),
            ended_by: why.name().to_owned(),
        };
        self.write(interval(IntervalKind::Attended, out.joined_ms));
        if let Some((PageState::Active, since)) = out.page {
            self.write(interval(IntervalKind::Engaged, since));
        }
    }

    /// A page reported its state: an active page that stops being so ends
    /// an engaged interval, and a change of the user's state (over their
    /// tabs) is published on the room's user_changes.
    pub(super) fn page_state(&self, client_id: &str, state: PageState, at: i64) {
        let Some(Some(out)) = self.with_hot("record a page state", || {
            self.hot.set_state(client_id, state, at)
        }) else {
            return;
        };
        if let Some((PageState::Active, since)) = out.previous {
            if state != PageState::Active {
                self.write(Record::Interval {
                    uid: out.auth.user.uid,
                    time: out.auth.time.clone(),
                    client_id: client_id.to_owned(),
                    measure: IntervalKind::Engaged,
                    started_ms: since,
                    ended_ms: at.max(since),
                    ended_by: state.name().to_owned(),
                });
            }
        }
        if out.user_after != out.user_before {
            self.publish_state(&out.auth.room, &out.auth.user, out.user_after);
        }
    }

    /// Publishes a user's new state on the room's user_changes (never on
    /// user_list, whose messages stay as the old gem made them).
    pub(super) fn publish_state(&self, room: &str, user: &User, state: Option<PageState>) {
        let Some(count) = self.with_hot("count a room", || self.hot.room_count(room)) else {
            return;
        };
        let mut data = user_changes_message(room, count, None, None);
        data["state"] = json!([{
            "uid": user.uid,
            "uname": user.uname,
            "state": state.map(PageState::name),
        }]);
        self.send_out(channel::user_changes_channel(room), data);
    }

    /// At stop, with a store that dies with this process: every clientId
    /// it holds ends now, so its time is credited and its intervals are
    /// written before the process exits. (A shared store keeps them for
    /// the other processes, whose sweep ends them if they stop polling.)
    pub(super) fn end_at_stop(&self) {
        if self.hot.outlives_process() {
            return;
        }
        let now = clock::now_ms();
        // A long poll lasts at most Faye's timeout, which the session
        // timeout is twice of, plus 5 s: a client silent for longer than
        // one poll (and a second) had stopped polling, and its time ends
        // at its last message, as if it had been swept.
        let one_poll_ms = (self.session_timeout_ms - 5_000) / 2 + 1_000;
        let held: Vec<String> = self.held.borrow().keys().cloned().collect();
        for client_id in held {
            let last_seen = self
                .served
                .lock()
                .clients
                .get(&client_id)
                .map(|c| c.last_seen);
            let end = match last_seen {
                Some(seen) if now - seen > one_poll_ms => seen,
                _ => now,
            };
            if let Ok(Some(out)) = self.hot.disconnect(&client_id, end) {
                self.write_leave(&client_id, &out, end, Ending::Stopped);
            }
        }
        self.held.borrow_mut().clear();
    }
}
