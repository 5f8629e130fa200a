//! The bookkeeping behind faye-online, with no Ruby in it.
//!
//! A Faye server hands every Bayeux message to [`Tracker::incoming`]; the
//! tracker decides on the spot (no I/O) whether the message is valid and
//! whether it changes anything, and hands real changes to its own threads,
//! which update the hot store (memory or Redis), write durable rows (SQLite
//! or MySQL) and queue `<room>/user_list` publications for the host to send.

pub mod auth;
pub mod channel;
pub mod clock;
pub mod config;
pub mod durable;
pub mod error;
pub mod memory;
pub mod message;
pub mod presence;
pub mod redis_store;
pub mod sql;
pub mod tracker;

pub use auth::{Auth, User};
pub use config::Config;
pub use error::{BayeuxError, StoreError};
pub use message::{Incoming, Verdict};
pub use presence::{ConnectOutcome, DisconnectOutcome, HotStore};
pub use tracker::{Notification, Query, Tracker};
