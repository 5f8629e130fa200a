//! The Ruby face of faye_online_core: converts Ruby values to owned Rust
//! values at the boundary and back, and keeps every Ruby exception and Rust
//! panic out of Faye's `incoming` hook.

use faye_online_core::error::BayeuxError;
use faye_online_core::Notification;
use faye_online_core::{Config, Incoming, Query, Tracker, User, Verdict};
use magnus::value::ReprValue;
use magnus::{
    function, method, prelude::*, r_hash::ForEach, Error, ExceptionClass, Float, Integer, RArray,
    RHash, RModule, RString, Ruby, Symbol, Value,
};
use serde_json::{Map, Number, Value as Json};
use std::os::fd::IntoRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// Limits on a converted `auth`: deeper, longer or bigger is refused.
const MAX_DEPTH: usize = 4;
const MAX_ENTRIES: usize = 32;
const MAX_STRING_BYTES: usize = 1024;

fn error_class(ruby: &Ruby, name: &str) -> ExceptionClass {
    ruby.class_object()
        .const_get::<_, RModule>("FayeOnline")
        .and_then(|m| m.const_get::<_, ExceptionClass>(name))
        .unwrap_or_else(|_| ruby.exception_runtime_error())
}

fn config_from(ruby: &Ruby, json: String) -> Result<Config, Error> {
    Config::from_json(&json).map_err(|e| Error::new(error_class(ruby, "ConfigurationError"), e))
}

fn store_error(ruby: &Ruby, e: impl std::fmt::Display) -> Error {
    Error::new(error_class(ruby, "StoreError"), e.to_string())
}

/// Converts a Ruby value (from a parsed Bayeux message) to JSON, refusing
/// what no valid `auth` contains.
fn to_json(ruby: &Ruby, v: Value, depth: usize, budget: &mut usize) -> Result<Json, BayeuxError> {
    let too_big = || BayeuxError::bad_request("auth", "is too large or too deeply nested");
    if depth > MAX_DEPTH || *budget == 0 {
        return Err(too_big());
    }
    *budget -= 1;
    if v.is_nil() {
        return Ok(Json::Null);
    }
    if v.is_kind_of(ruby.class_true_class()) {
        return Ok(Json::Bool(true));
    }
    if v.is_kind_of(ruby.class_false_class()) {
        return Ok(Json::Bool(false));
    }
    if let Some(s) = RString::from_value(v) {
        if s.len() > MAX_STRING_BYTES {
            return Err(too_big());
        }
        return rstring_utf8(s).map(Json::String);
    }
    if let Some(s) = Symbol::from_value(v) {
        return s
            .name()
            .map(|n| Json::String(n.into_owned()))
            .map_err(|_| BayeuxError::bad_request("auth", "holds an unreadable symbol"));
    }
    if let Some(i) = Integer::from_value(v) {
        return match i.to_i64() {
            Ok(n) => Ok(Json::Number(n.into())),
            Err(_) => Err(BayeuxError::bad_request(
                "auth",
                "holds an integer out of range",
            )),
        };
    }
    if let Some(f) = Float::from_value(v) {
        return Number::from_f64(f.to_f64())
            .map(Json::Number)
            .ok_or_else(|| BayeuxError::bad_request("auth", "holds a number that is not finite"));
    }
    if let Some(a) = RArray::from_value(v) {
        if a.len() > MAX_ENTRIES {
            return Err(too_big());
        }
        let mut out = Vec::with_capacity(a.len());
        for item in a.into_iter() {
            out.push(to_json(ruby, item, depth + 1, budget)?);
        }
        return Ok(Json::Array(out));
    }
    if let Some(h) = RHash::from_value(v) {
        if h.len() > MAX_ENTRIES {
            return Err(too_big());
        }
        let mut map = Map::new();
        let mut failure = None;
        let walked = h.foreach(|k: Value, val: Value| {
            let key = if let Some(s) = RString::from_value(k) {
                rstring_utf8(s)
            } else if let Some(s) = Symbol::from_value(k) {
                s.name()
                    .map(|n| n.into_owned())
                    .map_err(|_| BayeuxError::bad_request("auth", "holds an unreadable key"))
            } else {
                Err(BayeuxError::bad_request("auth", "keys must be strings"))
            };
            match key.and_then(|key| to_json(ruby, val, depth + 1, budget).map(|v| (key, v))) {
                Ok((key, v)) => {
                    map.insert(key, v);
                    Ok(ForEach::Continue)
                }
                Err(e) => {
                    failure = Some(e);
                    Ok(ForEach::Stop)
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        walked.map_err(|_| BayeuxError::bad_request("auth", "could not be read"))?;
        return Ok(Json::Object(map));
    }
    Err(BayeuxError::bad_request(
        "auth",
        "holds a value that is not JSON",
    ))
}

fn rstring_utf8(s: RString) -> Result<String, BayeuxError> {
    // SAFETY: the bytes are copied before any other Ruby call.
    let bytes = unsafe { s.as_slice() }.to_vec();
    String::from_utf8(bytes)
        .map_err(|_| BayeuxError::bad_request("auth", "holds a string that is not UTF-8"))
}

fn string_field(hash: RHash, key: &str) -> Option<String> {
    let s = RString::from_value(hash.get(key)?)?;
    if s.len() > 512 {
        return None;
    }
    rstring_utf8(s).ok()
}

fn incoming_from(ruby: &Ruby, message: RHash) -> Incoming {
    let auth = message.get("auth").filter(|v| !v.is_nil()).map(|v| {
        let mut budget = 64;
        to_json(ruby, v, 0, &mut budget)
    });
    let subscription = match message.get("subscription") {
        Some(v) => match RArray::from_value(v) {
            Some(list) => list
                .into_iter()
                .take(100)
                .filter_map(|i| RString::from_value(i).and_then(|s| rstring_utf8(s).ok()))
                .collect(),
            None => RString::from_value(v)
                .and_then(|s| rstring_utf8(s).ok())
                .into_iter()
                .collect(),
        },
        None => Vec::new(),
    };
    Incoming {
        channel: string_field(message, "channel").unwrap_or_default(),
        client_id: string_field(message, "clientId"),
        auth,
        subscription,
    }
}

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

fn users_to_ruby(ruby: &Ruby, users: &[User]) -> Result<RArray, Error> {
    let out = ruby.ary_new_capa(users.len());
    for u in users {
        let h = ruby.hash_new();
        h.aset("uid", u.uid)?;
        h.aset("uname", u.uname.as_str())?;
        out.push(h)?;
    }
    Ok(out)
}

#[magnus::wrap(class = "FayeOnline::Native::Tracker", free_immediately, size)]
struct RbTracker(Tracker);

impl RbTracker {
    fn new(ruby: &Ruby, config_json: String) -> Result<Self, Error> {
        let config = config_from(ruby, config_json)?;
        Tracker::new(&config)
            .map(RbTracker)
            .map_err(|e| store_error(ruby, e))
    }

    /// Faye's extension hook. Whatever happens, `callback` is called once
    /// with the message, which carries `error` if it was refused.
    fn incoming(
        ruby: &Ruby,
        rb_self: &Self,
        message: Value,
        callback: Value,
    ) -> Result<Value, Error> {
        if let Some(hash) = RHash::from_value(message) {
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
    fn subscribed(&self, client_id: String, channel: String) {
        let _ = catch_unwind(AssertUnwindSafe(|| self.0.subscribed(&client_id, &channel)));
    }

    fn handshake(&self, client_id: String) {
        let _ = catch_unwind(AssertUnwindSafe(|| self.0.handshake(&client_id)));
    }

    fn session_ended(&self, client_id: String) {
        let _ = catch_unwind(AssertUnwindSafe(|| self.0.session_ended(&client_id)));
    }

    /// `[[kind, target, data_json], …]`: kind is "publish" (target: channel),
    /// "deliver" (target: "clientId channel") or a log level (target: text).
    fn drain(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        let items = rb_self.0.drain();
        let out = ruby.ary_new_capa(items.len());
        for n in items {
            let row = match n {
                Notification::Publish { channel, data } => {
                    ruby.ary_from_vec(vec!["publish".to_string(), channel, data.to_string()])
                }
                Notification::Deliver {
                    client_id,
                    channel,
                    data,
                } => ruby.ary_from_vec(vec![
                    "deliver".to_string(),
                    format!("{client_id} {channel}"),
                    data.to_string(),
                ]),
                Notification::Log { level, text } => {
                    ruby.ary_from_vec(vec![level.as_str().to_string(), text, String::new()])
                }
            };
            out.push(row)?;
        }
        Ok(out)
    }

    /// The file descriptor that becomes readable when `drain` has work;
    /// handed out once.
    fn waker_fd(&self) -> Option<i32> {
        self.0.take_waker_fd().map(|s| s.into_raw_fd())
    }

    fn flush(&self, seconds: f64) -> bool {
        self.0
            .flush(Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)))
    }

    fn close(&self, seconds: f64) -> bool {
        self.0
            .close(Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)))
    }

    fn online_users(ruby: &Ruby, rb_self: &Self, room: String) -> Result<RArray, Error> {
        online_users(ruby, rb_self.0.query(), room)
    }

    fn online_time(ruby: &Ruby, rb_self: &Self, uid: u64, time: String) -> Result<i64, Error> {
        online_time(ruby, rb_self.0.query(), uid, time)
    }

    fn status_json(ruby: &Ruby, rb_self: &Self) -> Result<String, Error> {
        status_json(ruby, rb_self.0.query())
    }

    fn sessions_json(
        ruby: &Ruby,
        rb_self: &Self,
        uid: u64,
        after_ms: i64,
        before_ms: i64,
    ) -> Result<String, Error> {
        sessions_json(ruby, rb_self.0.query(), uid, after_ms, before_ms)
    }
}

/// Runs `f` with Ruby's global lock released, so that other Ruby threads
/// (the EventMachine reactor above all) run while `f` waits on Redis or
/// SQL. `f` must not touch Ruby objects; a panic in it comes back as `Err`.
fn without_gvl<R, F: FnOnce() -> R>(f: F) -> Result<R, String> {
    struct Call<F, R> {
        f: Option<F>,
        result: Option<std::thread::Result<R>>,
    }
    unsafe extern "C" fn trampoline<F: FnOnce() -> R, R>(
        data: *mut std::ffi::c_void,
    ) -> *mut std::ffi::c_void {
        // SAFETY: `data` is the `Call` below, alive for this whole call.
        let call = unsafe { &mut *(data as *mut Call<F, R>) };
        if let Some(f) = call.f.take() {
            call.result = Some(catch_unwind(AssertUnwindSafe(f)));
        }
        std::ptr::null_mut()
    }
    let mut call = Call {
        f: Some(f),
        result: None,
    };
    // SAFETY: the trampoline only runs the Rust closure, which touches no
    // Ruby object; Ruby calls it once, on this thread, before returning.
    unsafe {
        rb_sys::rb_thread_call_without_gvl(
            Some(trampoline::<F, R>),
            &mut call as *mut Call<F, R> as *mut std::ffi::c_void,
            None,
            std::ptr::null_mut(),
        );
    }
    match call.result {
        Some(Ok(r)) => Ok(r),
        _ => Err("faye-online: a query failed unexpectedly".to_string()),
    }
}

/// Runs a store query without the GVL; its error becomes a StoreError.
fn query<T, E: std::fmt::Display>(
    ruby: &Ruby,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, Error> {
    match without_gvl(|| f().map_err(|e| e.to_string())) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) | Err(e) => Err(store_error(ruby, e)),
    }
}

fn online_users(ruby: &Ruby, q: &Query, room: String) -> Result<RArray, Error> {
    let users = query(ruby, || q.online_users(&room))?;
    users_to_ruby(ruby, &users)
}

fn online_time(ruby: &Ruby, q: &Query, uid: u64, time: String) -> Result<i64, Error> {
    query(ruby, || q.online_time(uid, &time))
}

/// `FayeOnline.status` as JSON text.
fn status_json(ruby: &Ruby, q: &Query) -> Result<String, Error> {
    query(ruby, || q.status().map(|v| v.to_string()))
}

/// The sessions of `uid` (0: everyone) between two instants (ms), as JSON.
fn sessions_json(
    ruby: &Ruby,
    q: &Query,
    uid: u64,
    after_ms: i64,
    before_ms: i64,
) -> Result<String, Error> {
    query(ruby, || {
        q.sessions((uid > 0).then_some(uid), after_ms, before_ms)
            .map_err(|e| e.to_string())
            .and_then(|s| serde_json::to_string(&s).map_err(|e| e.to_string()))
    })
}

#[magnus::wrap(class = "FayeOnline::Native::Query", free_immediately, size)]
struct RbQuery(Query);

impl RbQuery {
    fn new(ruby: &Ruby, config_json: String) -> Result<Self, Error> {
        let config = config_from(ruby, config_json)?;
        Query::new(&config)
            .map(RbQuery)
            .map_err(|e| store_error(ruby, e))
    }

    fn online_users(ruby: &Ruby, rb_self: &Self, room: String) -> Result<RArray, Error> {
        online_users(ruby, &rb_self.0, room)
    }

    fn online_time(ruby: &Ruby, rb_self: &Self, uid: u64, time: String) -> Result<i64, Error> {
        online_time(ruby, &rb_self.0, uid, time)
    }

    fn status_json(ruby: &Ruby, rb_self: &Self) -> Result<String, Error> {
        status_json(ruby, &rb_self.0)
    }

    fn sessions_json(
        ruby: &Ruby,
        rb_self: &Self,
        uid: u64,
        after_ms: i64,
        before_ms: i64,
    ) -> Result<String, Error> {
        sessions_json(ruby, &rb_self.0, uid, after_ms, before_ms)
    }
}

#[magnus::init]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let module = ruby.define_module("FayeOnline")?;
    let native = module.define_module("Native")?;

    native.define_module_function("sign", function!(sign, 6))?;

    let tracker = native.define_class("Tracker", ruby.class_object())?;
    tracker.define_singleton_method("new", function!(RbTracker::new, 1))?;
    tracker.define_method("incoming", method!(RbTracker::incoming, 2))?;
    tracker.define_method("_subscribed", method!(RbTracker::subscribed, 2))?;
    tracker.define_method("_handshake", method!(RbTracker::handshake, 1))?;
    tracker.define_method("_session_ended", method!(RbTracker::session_ended, 1))?;
    tracker.define_method("_drain", method!(RbTracker::drain, 0))?;
    tracker.define_method("_waker_fd", method!(RbTracker::waker_fd, 0))?;
    tracker.define_method("_flush", method!(RbTracker::flush, 1))?;
    tracker.define_method("_close", method!(RbTracker::close, 1))?;
    tracker.define_method("_online_users", method!(RbTracker::online_users, 1))?;
    tracker.define_method("_online_time", method!(RbTracker::online_time, 2))?;
    tracker.define_method("_status_json", method!(RbTracker::status_json, 0))?;
    tracker.define_method("_sessions_json", method!(RbTracker::sessions_json, 3))?;

    let query = native.define_class("Query", ruby.class_object())?;
    query.define_singleton_method("new", function!(RbQuery::new, 1))?;
    query.define_method("_online_users", method!(RbQuery::online_users, 1))?;
    query.define_method("_online_time", method!(RbQuery::online_time, 2))?;
    query.define_method("_status_json", method!(RbQuery::status_json, 0))?;
    query.define_method("_sessions_json", method!(RbQuery::sessions_json, 3))?;
    Ok(())
}
