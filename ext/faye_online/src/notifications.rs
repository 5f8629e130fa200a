//! What `Tracker#_drain` hands Ruby: one small object per kind of
//! notification. A publication's data is converted to Ruby objects only
//! when asked for, since most publications have no subscriber in a given
//! process and are skipped unread.

use crate::convert::json_to_ruby;
use faye_online_core::engine::Reply;
use faye_online_core::{LogLevel, Notification, PresenceEvent};
use magnus::{Error, IntoValue, RArray, Ruby, Symbol, Value};
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

/// `FayeOnline::Native::EngineReply`: an answer of Faye's engine on
/// Redis. `kind` is one of `:created`, `:exists`, `:destroyed`,
/// `:subscribed`, `:unsubscribed`, `:messages`, `:grants`, `:published`,
/// `:closed`, `:failed`;
/// `flag` is its yes or no (added, exists, existed, removed).
#[magnus::wrap(class = "FayeOnline::Native::EngineReply", free_immediately, size)]
pub struct EngineReply {
    reply: Reply,
}

impl EngineReply {
    pub fn kind(ruby: &Ruby, rb_self: &Self) -> Symbol {
        ruby.to_symbol(match rb_self.reply {
            Reply::Created { .. } => "created",
            Reply::Exists { .. } => "exists",
            Reply::Destroyed { .. } => "destroyed",
            Reply::Subscribed { .. } => "subscribed",
            Reply::Unsubscribed { .. } => "unsubscribed",
            Reply::Messages { .. } => "messages",
            Reply::Grants { .. } => "grants",
            Reply::Published { .. } => "published",
            Reply::Closed { .. } => "closed",
            Reply::Failed { .. } => "failed",
        })
    }

    pub fn ticket(&self) -> u64 {
        match &self.reply {
            Reply::Created { ticket, .. }
            | Reply::Exists { ticket, .. }
            | Reply::Destroyed { ticket, .. }
            | Reply::Subscribed { ticket, .. }
            | Reply::Unsubscribed { ticket, .. }
            | Reply::Grants { ticket, .. }
            | Reply::Published { ticket }
            | Reply::Failed { ticket, .. } => *ticket,
            _ => 0,
        }
    }

    pub fn client_id(&self) -> Option<String> {
        match &self.reply {
            Reply::Created { client_id, .. }
            | Reply::Exists { client_id, .. }
            | Reply::Destroyed { client_id, .. }
            | Reply::Subscribed { client_id, .. }
            | Reply::Unsubscribed { client_id, .. }
            | Reply::Messages { client_id, .. }
            | Reply::Grants { client_id, .. }
            | Reply::Closed { client_id } => Some(client_id.clone()),
            _ => None,
        }
    }

    pub fn channel(&self) -> Option<String> {
        match &self.reply {
            Reply::Subscribed { channel, .. } | Reply::Unsubscribed { channel, .. } => {
                Some(channel.clone())
            }
            _ => None,
        }
    }

    pub fn flag(&self) -> bool {
        match &self.reply {
            Reply::Created { added, .. } | Reply::Subscribed { added, .. } => *added,
            Reply::Exists { exists, .. } => *exists,
            Reply::Destroyed { existed, .. } => *existed,
            Reply::Unsubscribed { removed, .. } => *removed,
            _ => false,
        }
    }

    pub fn channels(&self) -> Vec<String> {
        match &self.reply {
            Reply::Destroyed { channels, .. } => channels.clone(),
            _ => Vec::new(),
        }
    }

    /// The messages taken for a client, as Ruby objects; one that is not a
    /// JSON object (written by something else into Redis) is left out.
    pub fn messages(ruby: &Ruby, rb_self: &Self) -> Result<RArray, Error> {
        let out = ruby.ary_new();
        if let Reply::Messages { messages, .. } | Reply::Exists { messages, .. } = &rb_self.reply {
            for text in messages {
                if let Ok(value @ Json::Object(_)) = serde_json::from_str::<Json>(text) {
                    out.push(json_to_ruby(ruby, &value)?)?;
                }
            }
        }
        Ok(out)
    }

    /// What the client showed a valid token for, in any process (with its
    /// messages, or asked for): `room:<room>`, `channel:<channel>`,
    /// `uid:<uid>`, `dashboard`.
    pub fn grants(&self) -> Vec<String> {
        match &self.reply {
            Reply::Messages { grants, .. }
            | Reply::Exists { grants, .. }
            | Reply::Grants { grants, .. } => grants.clone(),
            _ => Vec::new(),
        }
    }

    /// A destroyed client's last ping (ms since the epoch), if it existed.
    pub fn last_ping(&self) -> Option<i64> {
        match &self.reply {
            Reply::Destroyed { last_ping, .. } => *last_ping,
            _ => None,
        }
    }

    pub fn error(&self) -> Option<String> {
        match &self.reply {
            Reply::Failed { error, .. } => Some(error.clone()),
            _ => None,
        }
    }

    /// The client and its messages as Redis held them.
    pub fn raw_messages(&self) -> Option<(String, Vec<String>)> {
        match &self.reply {
            Reply::Messages {
                client_id,
                messages,
                ..
            }
            | Reply::Exists {
                client_id,
                messages,
                ..
            } => Some((client_id.clone(), messages.clone())),
            _ => None,
        }
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
        Notification::Engine(reply) => EngineReply { reply }.into_value_with(ruby),
    }
}
