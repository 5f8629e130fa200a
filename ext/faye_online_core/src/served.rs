//! The clientIds this process serves: those Faye handshook here, with the
//! identity each connected with and when it was last seen.
//!
//! The gate reads and writes it on the reactor thread (no I/O, one short
//! lock); the ticker takes the last-seen times from it to write them to
//! the hot store in batches; the presence worker reads it to sweep and to
//! put back what a restarted Redis lost.

use crate::auth::Auth;
use std::collections::{HashMap, HashSet, VecDeque};

/// Rooms one client may watch at most (the latest it showed tokens for).
pub(crate) const MAX_ROOMS_PER_CLIENT: usize = 256;
/// ClientIds that left through this process, remembered at most.
pub(crate) const MAX_GONE: usize = 10_000;

#[derive(Default)]
pub(crate) struct ServedClient {
    /// `None` until the client's first valid `/meta/connect`.
    pub(crate) auth: Option<Auth>,
    pub(crate) last_seen: i64,
    /// With a secret: the rooms whose lists this client may receive, those
    /// it showed a valid token for (in its connect or a subscribe).
    pub(crate) may_watch: Vec<String>,
    /// Page-state reports it may still send now, and when that was last
    /// worked out (see [`ServedClient::may_report_state`]).
    state_budget: (u32, i64),
}

/// Page-state reports a client may send in a burst, and how often one
/// more is allowed after that (ms): the browser client sends only
/// changes, debounced, far fewer.
pub(crate) const STATE_BURST: u32 = 10;
pub(crate) const STATE_EVERY_MS: i64 = 500;

impl ServedClient {
    pub(crate) fn new(now: i64) -> ServedClient {
        ServedClient {
            auth: None,
            last_seen: now,
            may_watch: Vec::new(),
            state_budget: (STATE_BURST, now),
        }
    }

    /// Whether the client may report its page state at `now`: a burst of
    /// [`STATE_BURST`], then one every [`STATE_EVERY_MS`].
    pub(crate) fn may_report_state(&mut self, now: i64) -> bool {
        let (left, since) = self.state_budget;
        let earned = ((now - since).max(0) / STATE_EVERY_MS).min(STATE_BURST as i64) as u32;
        let (left, since) = if earned > 0 {
            (
                (left + earned).min(STATE_BURST),
                since + earned as i64 * STATE_EVERY_MS,
            )
        } else {
            (left, since)
        };
        let since = if left == STATE_BURST { now } else { since };
        if left == 0 {
            self.state_budget = (0, since);
            return false;
        }
        self.state_budget = (left - 1, since);
        true
    }

    /// Notes a room this client showed a valid token for; a client keeps
    /// the latest [`MAX_ROOMS_PER_CLIENT`].
    pub(crate) fn allow_room(&mut self, room: &str) {
        if !self.may_watch.iter().any(|r| r == room) {
            if self.may_watch.len() >= MAX_ROOMS_PER_CLIENT {
                self.may_watch.remove(0);
            }
            self.may_watch.push(room.to_owned());
        }
    }
}

#[derive(Default)]
pub(crate) struct Served {
    pub(crate) clients: HashMap<String, ServedClient>,
    /// Last-seen times not yet written to the hot store.
    pub(crate) seen: HashMap<String, i64>,
    /// Rooms whose user_list clients of this process subscribed to, with
    /// how many subscriptions: a room leaves when its last one ends, so
    /// that the map holds only rooms watched now.
    pub(crate) watched: HashMap<String, usize>,
    /// With Faye's engine on Redis, the latest clientIds that sent
    /// `/meta/disconnect` here (at most [`MAX_GONE`]): a connect that
    /// follows its own disconnect is not taken for a client of another
    /// process before Faye's engine has destroyed it.
    gone: HashSet<String>,
    gone_order: VecDeque<String>,
}

impl Served {
    pub(crate) fn note_gone(&mut self, client_id: &str) {
        if self.gone.insert(client_id.to_owned()) {
            self.gone_order.push_back(client_id.to_owned());
            if self.gone_order.len() > MAX_GONE {
                if let Some(oldest) = self.gone_order.pop_front() {
                    self.gone.remove(&oldest);
                }
            }
        }
    }

    pub(crate) fn is_gone(&self, client_id: &str) -> bool {
        self.gone.contains(client_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_state_reports_are_rate_limited() {
        let mut c = ServedClient::new(0);
        for _ in 0..STATE_BURST {
            assert!(c.may_report_state(10));
        }
        assert!(!c.may_report_state(20), "the burst is spent");
        assert!(!c.may_report_state(20 + STATE_EVERY_MS - 30));
        assert!(
            c.may_report_state(10 + STATE_EVERY_MS),
            "one more each 500 ms"
        );
        assert!(!c.may_report_state(10 + STATE_EVERY_MS + 1));
        // A quiet client gets its whole burst back, no more.
        let later = 1_000_000;
        for _ in 0..STATE_BURST {
            assert!(c.may_report_state(later));
        }
        assert!(!c.may_report_state(later));
    }
}
