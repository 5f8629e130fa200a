//! Values across the boundary: Ruby to Rust at the way in (a Bayeux
//! message, the configuration), Rust to Ruby at the way out (lists,
//! status, sessions, publication data), each converted once.

use faye_online_core::channel::PAGE_STATE_CHANNEL;
use faye_online_core::error::BayeuxError;
use faye_online_core::{Config, Incoming, User};
use magnus::value::{Lazy, ReprValue};
use magnus::{
    r_hash::ForEach, Error, Float, Integer, IntoValue, RArray, RHash, RString, Ruby, Symbol, Value,
};
use serde_json::{Map, Number, Value as Json};

/// How much of a Ruby value [`to_json`] reads before refusing it.
pub struct Limits {
    pub depth: usize,
    pub entries: usize,
    pub string_bytes: usize,
    /// Values in all.
    pub budget: usize,
}

/// What a valid `auth` holds at most: deeper, longer or bigger is refused.
pub const AUTH_LIMITS: Limits = Limits {
    depth: 4,
    entries: 32,
    string_bytes: 1024,
    budget: 64,
};

/// The configuration: a flat hash of settings.
const CONFIG_LIMITS: Limits = Limits {
    depth: 2,
    entries: 64,
    string_bytes: 64 * 1024,
    budget: 256,
};

/// Converts a Ruby value (from a parsed Bayeux message) to JSON, refusing
/// what no valid `auth` contains.
pub fn to_json(
    ruby: &Ruby,
    v: Value,
    limits: &Limits,
    depth: usize,
    budget: &mut usize,
) -> Result<Json, BayeuxError> {
    let too_big = || BayeuxError::bad_request("auth", "is too large or too deeply nested");
    if depth > limits.depth || *budget == 0 {
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
        if s.len() > limits.string_bytes {
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
        if a.len() > limits.entries {
            return Err(too_big());
        }
        let mut out = Vec::with_capacity(a.len());
        for item in a.into_iter() {
            out.push(to_json(ruby, item, limits, depth + 1, budget)?);
        }
        return Ok(Json::Array(out));
    }
    if let Some(h) = RHash::from_value(v) {
        if h.len() > limits.entries {
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
            match key
                .and_then(|key| to_json(ruby, val, limits, depth + 1, budget).map(|v| (key, v)))
            {
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

/// The keys `incoming` reads, as frozen interned strings made once: a
/// lookup with a Rust `&str` would allocate a Ruby string for the key on
/// every message (work for Ruby's collector, on the reactor).
macro_rules! keys {
    ($($name:ident = $text:literal;)*) => {
        $(static $name: Lazy<RString> = Lazy::new(|ruby| ruby.str_new($text).to_interned_str());)*
    };
}

keys! {
    KEY_AUTH = "auth";
    KEY_SUBSCRIPTION = "subscription";
    KEY_CHANNEL = "channel";
    KEY_CLIENT_ID = "clientId";
    KEY_DATA = "data";
    KEY_STATE = "state";
    KEY_EXT = "ext";
    KEY_LEAVE = "faye_online_leave";
}

fn string_field(ruby: &Ruby, hash: RHash, key: &Lazy<RString>) -> Option<String> {
    let s = RString::from_value(hash.get(ruby.get_inner(key))?)?;
    if s.len() > 512 {
        return None;
    }
    rstring_utf8(s).ok()
}

pub fn incoming_from(ruby: &Ruby, message: RHash) -> Incoming {
    let auth = message
        .get(ruby.get_inner(&KEY_AUTH))
        .filter(|v| !v.is_nil())
        .map(|v| {
            let mut budget = AUTH_LIMITS.budget;
            to_json(ruby, v, &AUTH_LIMITS, 0, &mut budget)
        });
    let subscription = match message.get(ruby.get_inner(&KEY_SUBSCRIPTION)) {
        Some(v) => match RArray::from_value(v) {
            Some(list) => list
                .into_iter()
                // Every entry: one left unread is one left unchecked.
                .filter_map(|i| RString::from_value(i).and_then(|s| rstring_utf8(s).ok()))
                .collect(),
            None => RString::from_value(v)
                .and_then(|s| rstring_utf8(s).ok())
                .into_iter()
                .collect(),
        },
        None => Vec::new(),
    };
    let channel = string_field(ruby, message, &KEY_CHANNEL).unwrap_or_default();
    // Read only on the two channels that use them.
    let page_state = (channel == PAGE_STATE_CHANNEL)
        .then(|| {
            message
                .get(ruby.get_inner(&KEY_DATA))
                .and_then(RHash::from_value)
        })
        .flatten()
        .and_then(|data| string_field(ruby, data, &KEY_STATE));
    let closing = channel == "/meta/disconnect"
        && message
            .get(ruby.get_inner(&KEY_EXT))
            .and_then(RHash::from_value)
            .and_then(|ext| ext.get(ruby.get_inner(&KEY_LEAVE)))
            .is_some_and(|v| v.is_kind_of(ruby.class_true_class()));
    Incoming {
        channel,
        client_id: string_field(ruby, message, &KEY_CLIENT_ID),
        auth,
        subscription,
        page_state,
        closing,
    }
}

pub fn users_to_ruby(ruby: &Ruby, users: &[User]) -> Result<RArray, Error> {
    let out = ruby.ary_new_capa(users.len());
    for u in users {
        let h = ruby.hash_new();
        h.aset("uid", u.uid)?;
        h.aset("uname", u.uname.as_str())?;
        out.push(h)?;
    }
    Ok(out)
}

/// The tracker's settings from the hash `Configuration#native_options`
/// builds; the core validates them.
pub fn config_from(hash: RHash) -> Result<Config, String> {
    let ruby = Ruby::get_with(hash);
    let mut budget = CONFIG_LIMITS.budget;
    let value = to_json(&ruby, hash.as_value(), &CONFIG_LIMITS, 0, &mut budget)
        .map_err(|e| format!("invalid configuration: {}", e.text))?;
    Config::from_value(value)
}

/// A JSON value as Ruby objects: hashes with string keys, arrays,
/// integers, floats, strings, true, false and nil.
pub fn json_to_ruby(ruby: &Ruby, v: &Json) -> Result<Value, Error> {
    Ok(match v {
        Json::Null => ruby.qnil().as_value(),
        Json::Bool(b) => b.into_value_with(ruby),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_value_with(ruby),
            (None, Some(u)) => u.into_value_with(ruby),
            _ => n.as_f64().unwrap_or(f64::NAN).into_value_with(ruby),
        },
        Json::String(s) => ruby.str_new(s).as_value(),
        Json::Array(items) => {
            let out = ruby.ary_new_capa(items.len());
            for item in items {
                out.push(json_to_ruby(ruby, item)?)?;
            }
            out.as_value()
        }
        Json::Object(map) => {
            let out = ruby.hash_new();
            for (k, item) in map {
                out.aset(ruby.str_new(k), json_to_ruby(ruby, item)?)?;
            }
            out.as_value()
        }
    })
}

/// How deep [`scrub_broken`] looks into a message (the JSON parser Faye
/// uses stops at 100 levels; what is deeper is left as it is).
pub const SCRUB_DEPTH: usize = 100;

/// Replaces, in place, every string of `value` (a message: hashes and
/// arrays, `depth` levels down) that is not valid in its encoding with a
/// copy whose bad bytes are U+FFFD, keys included. True if there was one.
///
/// JSON may carry a lone surrogate (`"\udc80"`), which the json gem turns
/// into bytes that are not UTF-8. Faye echoes a message's id, clientId,
/// channel and subscription in its answer, and matches channel names with
/// regular expressions: either raises on such a string, out of the
/// reactor, and stops the server. So the message is refused (by the
/// caller) and what Faye reads of it is made valid first.
pub fn scrub_broken(value: Value, depth: usize) -> bool {
    use magnus::encoding::Coderange;
    fn broken(v: Value) -> Option<RString> {
        RString::from_value(v).filter(|s| s.enc_coderange_scan() == Coderange::Broken)
    }
    fn clean(s: RString) -> Value {
        match s.scrub(None) {
            Ok(Some(fixed)) => fixed.as_value(),
            _ => s.as_value(),
        }
    }
    if depth == 0 {
        return false;
    }
    if let Some(hash) = RHash::from_value(value) {
        let mut found = false;
        // The broken strings, still held by the hash: each clean copy is
        // made right before it goes in, so that no new Ruby string waits in
        // Rust memory, where Ruby's collector cannot see it.
        let mut values: Vec<(Value, RString)> = Vec::new();
        let mut keys: Vec<(Value, RString)> = Vec::new();
        let mut nested: Vec<Value> = Vec::new();
        let _ = hash.foreach(|k: Value, v: Value| {
            if let Some(s) = broken(k) {
                keys.push((k, s));
            }
            match broken(v) {
                Some(s) => values.push((k, s)),
                None => {
                    if RHash::from_value(v).is_some() || RArray::from_value(v).is_some() {
                        nested.push(v);
                    }
                }
            }
            Ok(ForEach::Continue)
        });
        for v in nested {
            found |= scrub_broken(v, depth - 1);
        }
        found |= !values.is_empty() || !keys.is_empty();
        for (k, s) in values {
            let _ = hash.aset(k, clean(s));
        }
        for (k, s) in keys {
            if let Ok(v) = hash.delete::<Value, Value>(k) {
                let _ = hash.aset(clean(s), v);
            }
        }
        return found;
    }
    if let Some(array) = RArray::from_value(value) {
        let mut found = false;
        for i in 0..array.len() {
            let Ok(v) = array.entry::<Value>(i as isize) else {
                continue;
            };
            match broken(v) {
                Some(s) => {
                    let _ = array.store(i as isize, clean(s));
                    found = true;
                }
                None => found |= scrub_broken(v, depth - 1),
            }
        }
        return found;
    }
    false
}
