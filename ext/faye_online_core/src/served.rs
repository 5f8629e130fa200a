//! The clientIds this process serves: those Faye handshook here, with the
//! identity each connected with and when it was last seen.
//!
//! The gate reads and writes it on the reactor thread (no I/O, one short
//! lock); the ticker takes the last-seen times from it to write them to
//! the hot store in batches; the presence worker reads it to sweep and to
//! put back what a restarted Redis lost.

use crate::auth::Auth;
use std::collections::{HashMap, HashSet};

#[derive(Default)]
pub(crate) struct ServedClient {
    /// `None` until the client's first valid `/meta/connect`.
    pub(crate) auth: Option<Auth>,
    pub(crate) last_seen: i64,
    /// With a secret: the rooms whose lists this client may receive, those
    /// it showed a valid token for (in its connect or a subscribe).
    pub(crate) may_watch: Vec<String>,
}

impl ServedClient {
    pub(crate) fn new(now: i64) -> ServedClient {
        ServedClient {
            auth: None,
            last_seen: now,
            may_watch: Vec::new(),
        }
    }

    /// Notes a room this client showed a valid token for.
    pub(crate) fn allow_room(&mut self, room: &str) {
        if !self.may_watch.iter().any(|r| r == room) {
            self.may_watch.push(room.to_owned());
        }
    }
}

#[derive(Default)]
pub(crate) struct Served {
    pub(crate) clients: HashMap<String, ServedClient>,
    /// Last-seen times not yet written to the hot store.
    pub(crate) seen: HashMap<String, i64>,
    /// Rooms whose user_list a client of this process subscribed to.
    pub(crate) watched: HashSet<String>,
}
