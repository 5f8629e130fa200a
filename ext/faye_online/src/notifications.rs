//! What `Tracker#_drain` hands Ruby: one small object per kind of
//! notification. A publication's data is converted to Ruby objects only
//! when asked for, since most publications have no subscriber in a given
//! process and are skipped unread.

use crate::convert::json_to_ruby;
use faye_online_core::{LogLevel, Notification, PresenceEvent};
use magnus::{Error, IntoValue, Ruby, Symbol, Value};
use serde_json::Value as Json;

/// `FayeOnline::Native::Publication`: publish `data` on `channel`.
#[magnus::wrap(class = "FayeOnline::Native::Publication", free_immediately, size)]
pub struct Publication {
    channel: String,
    data: Json,
}

impl Publication {
    pub fn channel(&self) -> String {
        self.channel.clone()
    }

    pub fn data(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        json_to_ruby(ruby, &rb_self.data)
    }
}

/// `FayeOnline::Native::Delivery`: send `data` on `channel` to one client.
#[magnus::wrap(class = "FayeOnline::Native::Delivery", free_immediately, size)]
pub struct Delivery {
    client_id: String,
    channel: String,
    data: Json,
}

impl Delivery {
    pub fn client_id(&self) -> String {
        self.client_id.clone()
    }

    pub fn channel(&self) -> String {
        self.channel.clone()
    }

    pub fn data(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        json_to_ruby(ruby, &rb_self.data)
    }
}

/// `FayeOnline::Native::LogLine`: a line for the host's logger, whose
/// `level` (`:info`, `:warn` or `:error`) is the logger's method.
#[magnus::wrap(class = "FayeOnline::Native::LogLine", free_immediately, size)]
pub struct LogLine {
    level: LogLevel,
    text: String,
}

impl LogLine {
    pub fn level(ruby: &Ruby, rb_self: &Self) -> Symbol {
        ruby.to_symbol(rb_self.level.as_str())
    }

    pub fn text(&self) -> String {
        self.text.clone()
    }
}

/// `FayeOnline::Native::Event`: a change of presence (`kind`, a Symbol
/// such as `:joined`), and the whole event as a Hash (`data`) for the
/// app's callbacks and webhooks.
#[magnus::wrap(class = "FayeOnline::Native::Event", free_immediately, size)]
pub struct Event {
    event: PresenceEvent,
}

impl Event {
    pub fn kind(ruby: &Ruby, rb_self: &Self) -> Symbol {
        ruby.to_symbol(rb_self.event.kind.as_str())
    }

    pub fn data(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        json_to_ruby(ruby, &rb_self.event.to_json())
    }
}

/// A notification as its Ruby object.
pub fn to_ruby(ruby: &Ruby, n: Notification) -> Value {
    match n {
        Notification::Publish { channel, data } => {
            Publication { channel, data }.into_value_with(ruby)
        }
        Notification::Deliver {
            client_id,
            channel,
            data,
        } => Delivery {
            client_id,
            channel,
            data,
        }
        .into_value_with(ruby),
        Notification::Log { level, text } => LogLine { level, text }.into_value_with(ruby),
        Notification::Event(event) => Event { event }.into_value_with(ruby),
    }
}
