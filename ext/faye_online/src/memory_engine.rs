//! `FayeOnline::Native::MemoryEngine`: the state of faye-online's memory
//! engine (`lib/faye_online/native_engine.rb`), kept in Rust
//! ([`faye_online_core::engine::memory`]). Called on Faye's reactor only;
//! nothing here waits or does I/O. The Ruby side checks that ids and
//! channels are strings before they get here.

use faye_online_core::engine::memory::MemoryEngine;
use magnus::{RArray, Ruby};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

#[magnus::wrap(class = "FayeOnline::Native::MemoryEngine", free_immediately, size)]
pub struct RbMemoryEngine(Mutex<MemoryEngine>);

/// Milliseconds on a clock that never goes back (deadlines are not dates).
fn monotonic_ms() -> i64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_millis() as i64
}

impl RbMemoryEngine {
    pub fn new() -> Self {
        Self(Mutex::new(MemoryEngine::new()))
    }

    /// The state; a panic elsewhere while it was held leaves it as it was.
    fn state(&self) -> MutexGuard<'_, MemoryEngine> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn create(&self, id: String) -> bool {
        self.state().create(&id)
    }

    pub fn exists(&self, id: String) -> bool {
        self.state().exists(&id)
    }

    /// The client times out `timeout_ms` from now unless pinged again.
    pub fn ping(&self, id: String, timeout_ms: i64) -> bool {
        let deadline = monotonic_ms().saturating_add(timeout_ms.max(0));
        self.state().ping(&id, deadline)
    }

    pub fn subscribe(&self, id: String, channel: String) -> bool {
        self.state().subscribe(&id, &channel)
    }

    pub fn unsubscribe(&self, id: String, channel: String) -> bool {
        self.state().unsubscribe(&id, &channel)
    }

    /// The channels the client was subscribed to, or nil if it did not exist.
    pub fn destroy(ruby: &Ruby, rb_self: &Self, id: String) -> Option<RArray> {
        let channels = rb_self.state().destroy(&id)?;
        let out = ruby.ary_new_capa(channels.len());
        for channel in channels {
            let _ = out.push(ruby.str_new(&channel));
        }
        Some(out)
    }

    /// The clientIds a message on `channel` reaches, each once.
    pub fn recipients(ruby: &Ruby, rb_self: &Self, channel: String) -> RArray {
        let out = ruby.ary_new();
        rb_self.state().recipients(&channel, |id| {
            let _ = out.push(ruby.str_new(id));
        });
        out
    }

    pub fn has_subscribers(&self, channel: String) -> bool {
        self.state().has_subscribers(&channel)
    }

    /// The clientIds whose time ran out (the caller destroys them).
    pub fn expired(ruby: &Ruby, rb_self: &Self) -> RArray {
        let ids = rb_self.state().expired(monotonic_ms());
        let out = ruby.ary_new_capa(ids.len());
        for id in ids {
            let _ = out.push(ruby.str_new(&id));
        }
        out
    }

    pub fn size(&self) -> usize {
        self.state().len()
    }

    pub fn clear(&self) {
        self.state().clear()
    }
}
