//! `FayeOnline::Native::Tracker`: the extension Faye calls. Every Ruby
//! exception and Rust panic is kept out of Faye's `incoming` hook.

use crate::convert::{config_from, incoming_from, json_to_ruby, scrub_broken, SCRUB_DEPTH};
use crate::errors::{configuration_error, store_error};
use crate::gvl::without_gvl;
use crate::notifications;
use crate::query::RbQuery;
use faye_online_core::engine::Op;
use faye_online_core::{BayeuxError, Tracker, Verdict};
use magnus::{prelude::*, Error, RArray, RHash, Ruby, Value};
use std::os::fd::IntoRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// A wait of `seconds`: negative is none, more than an hour an hour, and
/// what is not a number an ArgumentError.
fn timeout(ruby: &Ruby, seconds: f64) -> Result<Duration, Error> {
    if seconds.is_nan() {
        return Err(Error::new(
            ruby.exception_arg_error(),
            "the timeout must be a number of seconds",
        ));
    }
    Ok(Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)))
}

#[magnus::wrap(class = "FayeOnline::Native::Tracker", free_immediately, size)]
pub struct RbTracker(Tracker);

impl RbTracker {
    pub fn new(ruby: &Ruby, config: RHash) -> Result<Self, Error> {
        let config = config_from(config).map_err(|e| configuration_error(ruby, e))?;
        Tracker::new(&config)
            .map(RbTracker)
            .map_err(|e| store_error(ruby, e))
    }

    /// Faye's extension hook. Whatever happens, `callback` is called once
    /// with the message, which carries `error` if it was refused.
    pub fn incoming(
        ruby: &Ruby,
        rb_self: &Self,
        message: Value,
        callback: Value,
    ) -> Result<Value, Error> {
        if let Some(hash) = RHash::from_value(message) {
            // Strings that are not UTF-8 first: Faye itself would fail on them.
            let scrubbed = catch_unwind(AssertUnwindSafe(|| {
                scrub_broken(hash.as_value(), SCRUB_DEPTH)
            }))
            .unwrap_or(true);
            if scrubbed {
                let _ = hash.aset(
                    "error",
                    BayeuxError::bad_request(
                        "",
                        "the message holds a string that is not valid UTF-8",
                    )
                    .to_string(),
                );
                return callback.funcall("call", (message,));
            }
            let verdict = catch_unwind(AssertUnwindSafe(|| {
                let msg = incoming_from(ruby, hash);
                rb_self.0.incoming(&msg)
            }))
            .unwrap_or_else(|_| {
                Verdict::Refuse(BayeuxError::internal(
                    "faye-online could not process this message",
                ))
            });
            if let Verdict::Refuse(e) = verdict {
                let _ = hash.aset("error", e.to_string());
            }
        }
        callback.funcall("call", (message,))
    }

    /// Faye's `:subscribe` event: a new subscriber of a room's user_list
    /// (or user_changes) gets the current list. (An event rather than an
    /// outgoing hook: Faye then runs no extension on outgoing messages.)
    pub fn subscribed(&self, client_id: String, channel: String) {
        let _ = catch_unwind(AssertUnwindSafe(|| self.0.subscribed(&client_id, &channel)));
    }

    /// Faye's `:unsubscribe` event.
    pub fn unsubscribed(&self, client_id: String, channel: String) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.0.unsubscribed(&client_id, &channel)
        }));
    }

    /// What the tracker holds in memory: `{"served_clients" => n, ...}`.
    pub fn stats(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        let stats = serde_json::to_value(rb_self.0.stats()).map_err(|e| store_error(ruby, e))?;
        json_to_ruby(ruby, &stats)
    }

    pub fn handshake(&self, client_id: String) {
        let _ = catch_unwind(AssertUnwindSafe(|| self.0.handshake(&client_id)));
    }

    pub fn session_ended(&self, client_id: String) {
        let _ = catch_unwind(AssertUnwindSafe(|| self.0.session_ended(&client_id)));
    }

    pub fn client_vanished(&self, client_id: String, last_ping_ms: i64) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.0.client_vanished(&client_id, last_ping_ms)
        }));
    }

    pub fn forget_client(&self, client_id: String) {
        let _ = catch_unwind(AssertUnwindSafe(|| self.0.forget_client(&client_id)));
    }

    /// Whether `client_id` may receive a publication on `channel` (with a
    /// secret, a room's lists go only to holders of a token for the room).
    pub fn may_receive(&self, client_id: String, channel: String) -> bool {
        catch_unwind(AssertUnwindSafe(|| {
            self.0.may_receive(&client_id, &channel)
        }))
        .unwrap_or(false)
    }

    /// What the tracker queued for the host, oldest first: `Publication`s,
    /// `Delivery`s and `LogLine`s.
    pub fn drain(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        let items = rb_self.0.drain();
        let out = ruby.ary_new_capa(items.len());
        for n in items {
            out.push(notifications::to_ruby(ruby, n))?;
        }
        Ok(out)
    }

    /// The file descriptor that becomes readable when `drain` has work;
    /// handed out once.
    pub fn waker_fd(&self) -> Option<i32> {
        self.0.take_waker_fd().map(|s| s.into_raw_fd())
    }

    /// Waits (without Ruby's global lock, so the reactor and other
    /// threads run meanwhile) until everything queued is stored, or
    /// `seconds` pass.
    pub fn flush(ruby: &Ruby, rb_self: &Self, seconds: f64) -> Result<bool, Error> {
        let timeout = timeout(ruby, seconds)?;
        without_gvl(|| rb_self.0.flush(timeout)).map_err(|e| store_error(ruby, e))
    }

    /// Flushes (up to `seconds`) and stops the threads, without Ruby's
    /// global lock.
    pub fn close(ruby: &Ruby, rb_self: &Self, seconds: f64) -> Result<bool, Error> {
        let timeout = timeout(ruby, seconds)?;
        without_gvl(|| rb_self.0.close(timeout)).map_err(|e| store_error(ruby, e))
    }

    /// Queues an op for Faye's engine on Redis; false without one, or if
    /// it cannot take more now.
    fn engine_op(&self, op: Op) -> bool {
        catch_unwind(AssertUnwindSafe(|| {
            self.0.engine().is_some_and(|engine| engine.submit(op))
        }))
        .unwrap_or(false)
    }

    pub fn engine(&self) -> bool {
        self.0.engine().is_some()
    }

    pub fn engine_down(&self) -> bool {
        self.0.engine().is_some_and(|e| e.is_down())
    }

    pub fn engine_create_client(&self, ticket: u64, client_id: String) -> bool {
        self.engine_op(Op::CreateClient { ticket, client_id })
    }

    /// With `take`, the answer also carries the client's queue.
    pub fn engine_client_exists(&self, ticket: u64, client_id: String, take: bool) -> bool {
        self.engine_op(Op::ClientExists {
            ticket,
            client_id,
            take,
        })
    }

    pub fn engine_destroy_client(&self, ticket: u64, client_id: String) -> bool {
        self.engine_op(Op::DestroyClient { ticket, client_id })
    }

    pub fn engine_ping(&self, client_id: String) -> bool {
        self.engine_op(Op::Ping { client_id })
    }

    pub fn engine_subscribe(&self, ticket: u64, client_id: String, channel: String) -> bool {
        self.engine_op(Op::Subscribe {
            ticket,
            client_id,
            channel,
        })
    }

    pub fn engine_unsubscribe(&self, ticket: u64, client_id: String, channel: String) -> bool {
        self.engine_op(Op::Unsubscribe {
            ticket,
            client_id,
            channel,
        })
    }

    /// `message` is the message as JSON; `channels` the subscriptions it
    /// reaches (Faye's `Channel.expand`). With a ticket, a `:published`
    /// reply says when it is in Redis.
    pub fn engine_publish(&self, ticket: u64, message: String, channels: Vec<String>) -> bool {
        self.engine_op(Op::Publish {
            ticket,
            message,
            channels,
        })
    }

    pub fn engine_empty_queue(&self, client_id: String) -> bool {
        self.engine_op(Op::EmptyQueue { client_id })
    }

    /// Queues messages (each as JSON) for one client, wherever it polls.
    pub fn engine_enqueue(&self, client_id: String, messages: Vec<String>) -> bool {
        self.engine_op(Op::Enqueue {
            client_id,
            messages,
            front: false,
        })
    }

    /// Puts messages taken for a client that is no longer connected here
    /// back at the front of its queue.
    pub fn engine_requeue(&self, reply: &notifications::EngineReply) -> bool {
        match reply.raw_messages() {
            Some((client_id, messages)) => self.engine_op(Op::Enqueue {
                client_id,
                messages,
                front: true,
            }),
            None => false,
        }
    }

    /// Records, for every process, what the client showed a valid token
    /// for (`channel:<name>`, `uid:<uid>`, `dashboard`).
    pub fn engine_grant(&self, client_id: String, grants: Vec<String>) -> bool {
        self.engine_op(Op::Grant { client_id, grants })
    }

    /// Asks for the client's grants (answered as a `:grants` reply).
    pub fn engine_grants(&self, ticket: u64, client_id: String) -> bool {
        self.engine_op(Op::Grants { ticket, client_id })
    }

    pub fn engine_connection(&self, client_id: String, open: bool) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            if let Some(engine) = self.0.engine() {
                engine.connection(&client_id, open)
            }
        }));
    }

    /// The read API on this tracker's stores.
    pub fn query(&self) -> RbQuery {
        RbQuery(self.0.query().clone())
    }
}
