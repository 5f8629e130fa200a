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
    /// Page-state reports it may still send (see [`StateBudget`]).
    state_budget: StateBudget,
}

/// Page-state reports a client may still send now, and when that was
/// last worked out: a burst of [`STATE_BURST`], then one every
/// [`STATE_EVERY_MS`].
#[derive(Clone, Copy)]
pub(crate) struct StateBudget(u32, i64);

impl Default for StateBudget {
    fn default() -> StateBudget {
        StateBudget::new(0)
    }
}

impl StateBudget {
    pub(crate) fn new(now: i64) -> StateBudget {
        StateBudget(STATE_BURST, now)
    }

    /// Takes one report from the budget at `now`; false when it is spent.
    pub(crate) fn take(&mut self, now: i64) -> bool {
        let StateBudget(left, since) = *self;
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
            *self = StateBudget(0, since);
            return false;
        }
        *self = StateBudget(left - 1, since);
        true
    }

    /// Whether it is whole again by `now` (nothing to remember).
    fn full_at(&self, now: i64) -> bool {
        self.0 as i64 + (now - self.1).max(0) / STATE_EVERY_MS >= STATE_BURST as i64
    }
}

/// Budgets kept at most for clients of other processes (with Faye's engine
/// on Redis, a client may report through a process it never polled).
pub(crate) const MAX_REMOTE_BUDGETS: usize = 100_000;

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
            state_budget: StateBudget::new(now),
        }
    }

    /// Whether the client may report its page state at `now`: a burst of
    /// [`STATE_BURST`], then one every [`STATE_EVERY_MS`].
    pub(crate) fn may_report_state(&mut self, now: i64) -> bool {
        self.state_budget.take(now)
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
    /// The page-state budgets of clients this process does not serve.
    remote_budgets: HashMap<String, StateBudget>,
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

    /// Whether a client this process does not serve may report its page
    /// state at `now`, on a budget of its own here. The budgets kept are
    /// bounded: past [`MAX_REMOTE_BUDGETS`], those whole again are
    /// forgotten, then (if that is not enough) all of them.
    pub(crate) fn may_report_remote_state(&mut self, client_id: &str, now: i64) -> bool {
        if !self.remote_budgets.contains_key(client_id)
            && self.remote_budgets.len() >= MAX_REMOTE_BUDGETS
        {
            self.remote_budgets.retain(|_, b| !b.full_at(now));
            if self.remote_budgets.len() >= MAX_REMOTE_BUDGETS {
                self.remote_budgets.clear();
            }
        }
        self.remote_budgets
            .entry(client_id.to_owned())
            .or_insert_with(|| StateBudget::new(now))
            .take(now)
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

    #[test]
    fn clients_of_other_processes_have_a_budget_too() {
        let mut served = Served::default();
        for _ in 0..STATE_BURST {
            assert!(served.may_report_remote_state("elsewhere", 10));
        }
        assert!(!served.may_report_remote_state("elsewhere", 11));
        assert!(served.may_report_remote_state("another", 11));
        assert!(served.may_report_remote_state("elsewhere", 10 + STATE_EVERY_MS));
    }
}
