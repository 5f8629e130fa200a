//! What the core hands the host: publications, deliveries and log lines,
//! queued by the core's threads and drained by the host on its own thread.
//!
//! The host (Faye's reactor) must never wait on the core, so the queue is
//! paired with a socket: the first notification pushed into an empty queue
//! writes one byte, the host watches the other end and drains when it
//! becomes readable.

use crate::error::StoreError;
use parking_lot::Mutex;
use serde_json::Value;
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
