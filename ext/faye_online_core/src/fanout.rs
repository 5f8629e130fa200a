//! Fan-out between processes: with Redis, every change a process publishes
//! goes through one Redis pub/sub channel, and each process's listener
//! hands what arrives to its host, so that subscribers of every process get
//! it once.

use crate::error::StoreError;
use crate::outbox::{LogLevel, Notification, Outbox};
use crate::presence_worker::{Event, EventSender};
use crate::redis_store::RedisStore;
use serde_json::Value;
use std::cell::Cell;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Listens on the broadcast channel until `stop` is set. After Redis was
/// away, asks the presence worker to put back what it may have lost.
pub(crate) fn listen(
    redis: Arc<RedisStore>,
    outbox: Arc<Outbox>,
    stop: Arc<AtomicBool>,
    resync: EventSender,
) {
    let failing = Cell::new(false);
    let mut subscriptions = 0u64;
    redis.listen(
        &stop,
        || {
            // After the first subscription, a new one means that Redis was
            // away: it may have restarted empty, and publications were
            // missed meanwhile.
            subscriptions += 1;
            if subscriptions > 1 {
                outbox.log(LogLevel::Info, "Redis is back: restoring presence");
                resync.send(Event::Resync);
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
        |e: &StoreError| {
            if !failing.replace(true) {
                outbox.log(
                    LogLevel::Warn,
                    format!("lost the Redis subscription, reconnecting: {e}"),
                );
            }
        },
    );
}
