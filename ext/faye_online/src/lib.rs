//! The Ruby face of faye_online_core, one file per Ruby class:
//!
//! - `FayeOnline::Native::Tracker` ([`tracker`]): the Faye extension;
//! - `FayeOnline::Native::Query` ([`query`]): the read API;
//! - `FayeOnline::Native::MemoryEngine` ([`memory_engine`]): the memory
//!   engine's state;
//! - `Publication`, `Delivery`, `LogLine` and `Event` ([`notifications`]): what the
//!   tracker hands the host;
//!
//! and beside them the conversions at the boundary ([`convert`]), running
//! without Ruby's global lock ([`gvl`]) and the errors raised ([`errors`]).
//! The methods whose names start with `_` are called by the Ruby facade
//! in `lib/faye_online/` only.

mod convert;
mod errors;
mod gvl;
mod memory_engine;
mod notifications;
mod query;
mod tracker;

use magnus::{function, method, prelude::*, Error, Ruby};
use memory_engine::RbMemoryEngine;
use notifications::{Delivery, EngineReply, Event, LogLine, Publication};
use query::RbQuery;
use tracker::RbTracker;

/// `FayeOnline::Native.sign(secret, uid, uname, room, time, expires)`: the
/// token for a page, after checking the claim as the server will.
fn sign(
    ruby: &Ruby,
    secret: String,
    uid: u64,
    uname: String,
    room: String,
    time: String,
    expires: i64,
) -> Result<String, Error> {
    let claim = serde_json::json!({"room_channel": room, "time_channel": time,
                                   "current_user": {"uid": uid, "uname": uname}});
    let auth = faye_online_core::Auth::from_value(&claim).map_err(|e| {
        Error::new(
            ruby.exception_arg_error(),
            format!("{}: {}", e.args, e.text),
        )
    })?;
    Ok(faye_online_core::auth::sign(
        secret.as_bytes(),
        &auth,
        expires,
    ))
}

#[magnus::init]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("FayeOnline")?;
    let native = module.define_module("Native")?;

    native.define_module_function("sign", function!(sign, 6))?;
    native.define_module_function("_engine_publish", function!(engine_publish, 6))?;

    let tracker = native.define_class("Tracker", ruby.class_object())?;
    tracker.define_singleton_method("new", function!(RbTracker::new, 1))?;
    tracker.define_method("incoming", method!(RbTracker::incoming, 2))?;
    tracker.define_method("_subscribed", method!(RbTracker::subscribed, 2))?;
    tracker.define_method("_unsubscribed", method!(RbTracker::unsubscribed, 2))?;
    tracker.define_method("_stats", method!(RbTracker::stats, 0))?;
    tracker.define_method("_handshake", method!(RbTracker::handshake, 1))?;
    tracker.define_method("_session_ended", method!(RbTracker::session_ended, 1))?;
    tracker.define_method("_client_vanished", method!(RbTracker::client_vanished, 2))?;
    tracker.define_method("_forget_client", method!(RbTracker::forget_client, 1))?;
    tracker.define_method("_may_receive", method!(RbTracker::may_receive, 2))?;
    tracker.define_method("_drain", method!(RbTracker::drain, 0))?;
    tracker.define_method("_waker_fd", method!(RbTracker::waker_fd, 0))?;
    tracker.define_method("_flush", method!(RbTracker::flush, 1))?;
    tracker.define_method("_close", method!(RbTracker::close, 1))?;
    tracker.define_method("_query", method!(RbTracker::query, 0))?;
    tracker.define_method("_engine?", method!(RbTracker::engine, 0))?;
    tracker.define_method("_engine_down?", method!(RbTracker::engine_down, 0))?;
    tracker.define_method(
        "_engine_create_client",
        method!(RbTracker::engine_create_client, 2),
    )?;
    tracker.define_method(
        "_engine_client_exists",
        method!(RbTracker::engine_client_exists, 3),
    )?;
    tracker.define_method(
        "_engine_destroy_client",
        method!(RbTracker::engine_destroy_client, 2),
    )?;
    tracker.define_method("_engine_ping", method!(RbTracker::engine_ping, 1))?;
    tracker.define_method("_engine_subscribe", method!(RbTracker::engine_subscribe, 3))?;
    tracker.define_method(
        "_engine_unsubscribe",
        method!(RbTracker::engine_unsubscribe, 3),
    )?;
    tracker.define_method("_engine_publish", method!(RbTracker::engine_publish, 3))?;
    tracker.define_method(
        "_engine_empty_queue",
        method!(RbTracker::engine_empty_queue, 1),
    )?;
    tracker.define_method("_engine_enqueue", method!(RbTracker::engine_enqueue, 2))?;
    tracker.define_method("_engine_requeue", method!(RbTracker::engine_requeue, 1))?;
    tracker.define_method("_engine_grant", method!(RbTracker::engine_grant, 2))?;
    tracker.define_method("_engine_grants", method!(RbTracker::engine_grants, 2))?;
    tracker.define_method(
        "_engine_connection",
        method!(RbTracker::engine_connection, 2),
    )?;

    let engine = native.define_class("MemoryEngine", ruby.class_object())?;
    engine.define_singleton_method("new", function!(RbMemoryEngine::new, 0))?;
    engine.define_method("create", method!(RbMemoryEngine::create, 1))?;
    engine.define_method("exists?", method!(RbMemoryEngine::exists, 1))?;
    engine.define_method("ping", method!(RbMemoryEngine::ping, 2))?;
    engine.define_method("subscribe", method!(RbMemoryEngine::subscribe, 2))?;
    engine.define_method("unsubscribe", method!(RbMemoryEngine::unsubscribe, 2))?;
    engine.define_method("destroy", method!(RbMemoryEngine::destroy, 1))?;
    engine.define_method("recipients", method!(RbMemoryEngine::recipients, 1))?;
    engine.define_method("subscribers?", method!(RbMemoryEngine::has_subscribers, 1))?;
    engine.define_method("expired", method!(RbMemoryEngine::expired, 0))?;
    engine.define_method("size", method!(RbMemoryEngine::size, 0))?;
    engine.define_method("clear", method!(RbMemoryEngine::clear, 0))?;

    let query = native.define_class("Query", ruby.class_object())?;
    query.define_singleton_method("new", function!(RbQuery::new, 1))?;
    query.define_method("_online_users", method!(RbQuery::online_users, 1))?;
    query.define_method("_online_time", method!(RbQuery::online_time, 2))?;
    query.define_method("_lesson_time", method!(RbQuery::lesson_time, 4))?;
    query.define_method("_intervals", method!(RbQuery::intervals, 2))?;
    query.define_method("_lesson_times", method!(RbQuery::lesson_times, 3))?;
    query.define_method("_lessons_times", method!(RbQuery::lessons_times, 1))?;
    query.define_method("_schedule", method!(RbQuery::schedule, 3))?;
    query.define_method("_scheduled", method!(RbQuery::scheduled, 1))?;
    query.define_method("_schedules", method!(RbQuery::schedules, 2))?;
    query.define_method("_status", method!(RbQuery::status, 0))?;
    query.define_method("_sessions", method!(RbQuery::sessions, 3))?;
    query.define_method("_failed_records", method!(RbQuery::failed_records, 0))?;
    query.define_method("_replay_failed", method!(RbQuery::replay_failed, 0))?;

    let publication = native.define_class("Publication", ruby.class_object())?;
    publication.define_method("channel", method!(Publication::channel, 0))?;
    publication.define_method("data", method!(Publication::data, 0))?;
    let delivery = native.define_class("Delivery", ruby.class_object())?;
    delivery.define_method("client_id", method!(Delivery::client_id, 0))?;
    delivery.define_method("channel", method!(Delivery::channel, 0))?;
    delivery.define_method("data", method!(Delivery::data, 0))?;
    let log_line = native.define_class("LogLine", ruby.class_object())?;
    log_line.define_method("level", method!(LogLine::level, 0))?;
    log_line.define_method("text", method!(LogLine::text, 0))?;
    let event = native.define_class("Event", ruby.class_object())?;
    event.define_method("kind", method!(Event::kind, 0))?;
    event.define_method("data", method!(Event::data, 0))?;
    let reply = native.define_class("EngineReply", ruby.class_object())?;
    reply.define_method("kind", method!(EngineReply::kind, 0))?;
    reply.define_method("ticket", method!(EngineReply::ticket, 0))?;
    reply.define_method("client_id", method!(EngineReply::client_id, 0))?;
    reply.define_method("channel", method!(EngineReply::channel, 0))?;
    reply.define_method("flag", method!(EngineReply::flag, 0))?;
    reply.define_method("channels", method!(EngineReply::channels, 0))?;
    reply.define_method("messages", method!(EngineReply::messages, 0))?;
    reply.define_method("error", method!(EngineReply::error, 0))?;
    reply.define_method("last_ping", method!(EngineReply::last_ping, 0))?;
    reply.define_method("grants", method!(EngineReply::grants, 0))?;
    Ok(())
}

/// `FayeOnline::Native._engine_publish(redis_url, namespace, message_json,
/// channels, cutoff_ms, timeout_seconds)`: a publication straight into
/// Faye's engine on Redis (see `engine::publish_direct`), without Ruby's
/// global lock; the number of clients it was queued for, or a StoreError.
fn engine_publish(
    ruby: &Ruby,
    redis_url: String,
    namespace: String,
    message: String,
    channels: Vec<String>,
    cutoff_ms: i64,
    timeout: f64,
) -> Result<i64, Error> {
    if timeout.is_nan() {
        return Err(Error::new(
            ruby.exception_arg_error(),
            "the timeout must be a number of seconds",
        ));
    }
    let timeout = std::time::Duration::from_secs_f64(timeout.clamp(0.01, 60.0));
    gvl::without_gvl(|| {
        faye_online_core::engine::publish_direct(
            &redis_url, &namespace, &message, &channels, cutoff_ms, timeout,
        )
    })
    .map_err(|e| errors::store_error(ruby, e))?
    .map_err(|e| errors::store_error(ruby, e))
}
