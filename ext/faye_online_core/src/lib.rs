//! The bookkeeping behind faye-online, with no Ruby in it.
//!
//! A Faye server hands every Bayeux message to [`Tracker::incoming`]; the
//! [`gate`] decides on the spot (no I/O) whether the message is valid and
//! whether it changes anything, and hands real changes to the core's own
//! threads: the [`presence_worker`] updates the hot store (memory or
//! Redis), the [`sql_writer`] writes durable rows (SQLite or MySQL), and
//! publications for `<room>/user_list` wait in the [`outbox`] for the host
//! to send. `docs/ARCHITECTURE.md` follows one message through them all.

// What the host calls.
pub mod config;
pub mod query;
pub mod tracker;

// Decided on the reactor thread, without I/O.
pub mod auth;
pub mod channel;
mod gate;
pub mod message;
mod served;

// The core's threads.
mod fanout;
mod presence_worker;
mod retry;
mod sql_writer;

// What they hand the host.
pub mod lists;
pub mod outbox;

// Presence: the state machine and its stores.
pub mod engine;
pub mod memory;
pub mod presence;
pub mod redis_store;

// Durable records: the old gem's formats, and SQL.
pub mod durable;
pub mod ledger;
pub mod sql;

pub mod clock;
pub mod error;

#[doc(hidden)]
pub mod test_support;

pub use auth::{Auth, User};
pub use config::Config;
pub use error::{BayeuxError, StoreError};
pub use message::{Incoming, Verdict};
pub use outbox::{EventKind, LogLevel, Notification, PresenceEvent};
pub use presence::{ConnectOutcome, DisconnectOutcome, HotStore};
pub use query::Query;
pub use tracker::Tracker;
