//! What the core hands the host: publications, deliveries and log lines,
//! queued by the core's threads and drained by the host on its own thread.
//!
//! The host (Faye's reactor) must never wait on the core, so the queue is
//! paired with a socket: the first notification pushed into an empty queue
//! writes one byte, the host watches the other end and drains when it
//! becomes readable.

use crate::auth::User;
use crate::error::StoreError;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::io::Write;
use std::os::unix::net::UnixStream;

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
    /// A change of presence for the host's listeners (callbacks, webhooks).
    Event(PresenceEvent),
    /// An answer of Faye's engine on Redis (see [`crate::engine`]).
    Engine(crate::engine::Reply),
}

/// What happened, as the host's listeners are told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A user came online in a room (their first clientId there).
    Joined,
    /// A user went offline in a room (their last clientId left or vanished).
    Left,
    /// A room's first user came: it was empty.
    Occupied,
    /// A room's last user left: it is empty.
    Vacated,
    /// A user's session in a lesson ended and its time was credited.
    TimeCredited,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Joined => "joined",
            EventKind::Left => "left",
            EventKind::Occupied => "occupied",
            EventKind::Vacated => "vacated",
            EventKind::TimeCredited => "time_credited",
        }
    }
}

/// One change of presence. Each is made once, by the process whose
/// presence worker applied the change to the hot store (the store decides
/// atomically who was first and last), so several processes never report
/// one change twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceEvent {
    pub kind: EventKind,
    pub room: String,
    pub lesson: String,
    pub user: User,
    /// When it happened (ms): the connect, the leave, or a vanished
    /// client's last poll.
    pub at_ms: i64,
    /// For `TimeCredited`: when the session began (ms) and the time
    /// credited for it (ms, the union of the user's tabs' intervals).
    pub session: Option<(i64, i64)>,
}

impl PresenceEvent {
    /// The event as JSON: `{"event", "room", "lesson", "user": {"uid",
    /// "uname"}, "at" (ISO 8601, UTC, ms), "at_ms"}`, and for
    /// `time_credited` also `"started_at"`, `"started_ms"` and `"seconds"`.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "event": self.kind.as_str(),
            "room": self.room,
            "lesson": self.lesson,
            "user": {"uid": self.user.uid, "uname": self.user.uname},
            "at": iso8601(self.at_ms),
            "at_ms": self.at_ms,
        });
        if let (Some((started_ms, credited_ms)), Value::Object(map)) = (self.session, &mut v) {
            map.insert("started_at".into(), json!(iso8601(started_ms)));
            map.insert("started_ms".into(), json!(started_ms));
            map.insert("seconds".into(), json!(credited_ms as f64 / 1000.0));
        }
        v
    }
}

fn iso8601(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
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

/// The host's queue of notifications and the socket that wakes it.
pub(crate) struct Outbox {
    queue: Mutex<Vec<Notification>>,
    waker: Mutex<Option<UnixStream>>,
}

impl Outbox {
    /// An outbox, and the read end of its wake-up socket for the host.
    pub(crate) fn new() -> Result<(Outbox, UnixStream), StoreError> {
        let (wake_read, wake_write) =
            UnixStream::pair().map_err(|e| StoreError::other(format!("socket pair: {e}")))?;
        wake_write
            .set_nonblocking(true)
            .map_err(|e| StoreError::other(format!("socket pair: {e}")))?;
        let outbox = Outbox {
            queue: Mutex::new(Vec::new()),
            waker: Mutex::new(Some(wake_write)),
        };
        Ok((outbox, wake_read))
    }

    pub(crate) fn push(&self, n: Notification) {
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

    pub(crate) fn log(&self, level: LogLevel, text: impl Into<String>) {
        self.push(Notification::Log {
            level,
            text: text.into(),
        });
    }

    /// Everything queued so far, oldest first.
    pub(crate) fn drain(&self) -> Vec<Notification> {
        std::mem::take(&mut *self.queue.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_as_json() {
        let user = User {
            uid: 7,
            uname: "Ann \"A\"".into(),
        };
        let joined = PresenceEvent {
            kind: EventKind::Joined,
            room: "/classes/4".into(),
            lesson: "/courses/5/lessons/1".into(),
            user: user.clone(),
            at_ms: 1_764_518_400_123,
            session: None,
        };
        assert_eq!(
            joined.to_json(),
            json!({"event": "joined", "room": "/classes/4", "lesson": "/courses/5/lessons/1",
                   "user": {"uid": 7, "uname": "Ann \"A\""},
                   "at": "2025-11-30T16:00:00.123Z", "at_ms": 1_764_518_400_123_i64})
        );
        let credited = PresenceEvent {
            kind: EventKind::TimeCredited,
            session: Some((1_764_518_000_000, 399_500)),
            ..joined
        };
        let v = credited.to_json();
        assert_eq!(v["event"], "time_credited");
        assert_eq!(v["started_at"], "2025-11-30T15:53:20.000Z");
        assert_eq!(v["seconds"], 399.5);
    }
}
