//! The presence state machine's contract, which every hot store keeps.
//!
//! A user is online in a room while at least one of their clientIds is in
//! it, and their lesson timer runs while at least one of their clientIds is
//! in the time channel. Each store applies a connect or a disconnect as one
//! atomic step and reports what changed, so that only real changes cost a
//! durable write or a publication.

use crate::auth::{Auth, User};
use crate::error::StoreError;
use std::collections::HashMap;

/// What a clientId's first valid `/meta/connect` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectOutcome {
    /// The clientId was new: it was recorded.
    Joined {
        /// The user had no clientId in the room before: they came online.
        room_joined: bool,
        /// And nobody else was online in the room: it was empty until now.
        room_occupied: bool,
        /// The user had no clientId in the time channel: their timer started.
        timer_started: bool,
    },
    /// The clientId was already recorded with this same auth.
    AlreadyKnown,
    /// The clientId is recorded for another user or other channels.
    Conflict(Auth),
    /// Faye's engine on Redis does not know the clientId: nothing was
    /// recorded (a store without such an engine never answers this).
    UnknownClient,
}

/// What removing a clientId changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisconnectOutcome {
    pub auth: Auth,
    /// That was the user's last clientId in the room: they went offline.
    pub room_left: bool,
    /// And they were the room's last user: it is empty now.
    pub room_vacated: bool,
    /// That was the user's last clientId in the time channel: the timer,
    /// started at this instant (ms), stopped.
    pub timer_started_at: Option<i64>,
    /// When the timer's session ended: the latest end of any of its
    /// clientIds (a tab that left explicitly after another one was last
    /// seen keeps the session going until it left).
    pub timer_ended_at: i64,
    /// The time to credit for the session that ended (ms): the measure of
    /// the union of its clientIds' intervals, each from its join to its end.
    /// It is less than `timer_ended_at - timer_started_at` when a vanished
    /// tab, last seen long before it was swept, left a gap before a later
    /// tab joined. Zero while the timer runs.
    pub timer_credited_ms: i64,
    /// The session was rebuilt after the hot store lost it (see
    /// [`HotStore::restore`]): it is known only from `timer_started_at`.
    pub timer_restored: bool,
    /// When this clientId joined (ms): its attended interval runs from
    /// then to the disconnect's instant.
    pub joined_ms: i64,
    /// The page state this clientId last reported, and since when (ms);
    /// `None` if it reported none.
    pub page: Option<(PageState, i64)>,
    /// The user's state in the room over the tabs still there (see
    /// [`user_state`]), when the user is still in the room and it changed.
    pub user_state_now: Option<Option<PageState>>,
}

/// What a page reports of itself: in front of a user who uses it
/// (`Active`), shown but untouched for a while (`Idle`), or not shown at
/// all (`Hidden`). Only an active page's time is engaged time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PageState {
    Active,
    Idle,
    Hidden,
}

impl PageState {
    pub fn name(self) -> &'static str {
        match self {
            PageState::Active => "active",
            PageState::Idle => "idle",
            PageState::Hidden => "hidden",
        }
    }

    pub fn parse(name: &str) -> Option<PageState> {
        match name {
            "active" => Some(PageState::Active),
            "idle" => Some(PageState::Idle),
            "hidden" => Some(PageState::Hidden),
            _ => None,
        }
    }

    /// One letter, as the Redis store keeps it.
    pub fn letter(self) -> &'static str {
        &self.name()[..1]
    }

    pub fn from_letter(letter: &str) -> Option<PageState> {
        match letter {
            "a" => Some(PageState::Active),
            "i" => Some(PageState::Idle),
            "h" => Some(PageState::Hidden),
            _ => None,
        }
    }
}

/// A user's state over their tabs: active if any tab is, else idle if any
/// is, else hidden if any reported hidden; `None` when no tab reported.
pub fn user_state(tabs: impl IntoIterator<Item = PageState>) -> Option<PageState> {
    tabs.into_iter().min()
}

/// What a clientId's report of its page state changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateOutcome {
    pub auth: Auth,
    /// The state it reported before, and since when (ms); `None` for its
    /// first report. An engaged interval ends when this was `Active`.
    pub previous: Option<(PageState, i64)>,
    /// The user's state in the room before and after (see [`user_state`]).
    pub user_before: Option<PageState>,
    pub user_after: Option<PageState>,
}

/// Adds `span` to `spans` (sorted, disjoint), merging what overlaps or
/// touches it.
pub fn add_span(spans: &mut Vec<(i64, i64)>, span: (i64, i64)) {
    spans.push(span);
    spans.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for &(s, e) in spans.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    *spans = merged;
}

/// The measure of sorted, disjoint spans.
pub fn spans_len(spans: &[(i64, i64)]) -> i64 {
    spans.iter().map(|(s, e)| e - s).sum()
}

/// A clientId as the hot store holds it (or should, after a restore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: String,
    pub auth: Auth,
    /// When it joined (ms).
    pub joined_ms: i64,
    /// When it was last seen (ms).
    pub last_seen_ms: i64,
}

/// A store of who is connected where: process memory, or Redis shared by
/// several Faye processes.
pub trait HotStore: Send + Sync {
    /// Records `client_id` as `auth`, seen at `now_ms`.
    fn connect(
        &self,
        client_id: &str,
        auth: &Auth,
        now_ms: i64,
    ) -> Result<ConnectOutcome, StoreError>;

    /// Removes `client_id`, if it is recorded; its presence ended at `at_ms`.
    fn disconnect(
        &self,
        client_id: &str,
        at_ms: i64,
    ) -> Result<Option<DisconnectOutcome>, StoreError>;

    /// The users online in `room`, sorted by uid.
    fn room_users(&self, room: &str) -> Result<Vec<User>, StoreError>;

    /// The state of each user in `room` whose pages reported one (see
    /// [`user_state`]).
    fn room_states(&self, room: &str) -> Result<HashMap<u64, PageState>, StoreError>;

    /// How many users are online in `room`.
    fn room_count(&self, room: &str) -> Result<usize, StoreError>;

    /// Whether the user is online in `room`.
    fn room_has(&self, room: &str, uid: u64) -> Result<bool, StoreError>;

    /// When the user's timer in `time` started, if it runs.
    fn timer_started_at(&self, uid: u64, time: &str) -> Result<Option<i64>, StoreError>;

    /// Records that `client_id` reported its page in `state` at `at_ms`.
    /// `None` for a clientId the store does not hold, and for a report
    /// older than the latest one applied (out of order: it changes
    /// nothing); a report of the state it is already in changes nothing
    /// either (`previous` says so).
    fn set_state(
        &self,
        client_id: &str,
        state: PageState,
        at_ms: i64,
    ) -> Result<Option<StateOutcome>, StoreError>;

    /// The page state each of `client_ids` last reported, and since when.
    fn pages(&self, client_ids: &[String]) -> Result<Vec<Option<(PageState, i64)>>, StoreError>;

    /// Records when clientIds were last seen.
    fn touch(&self, seen: &[(String, i64)]) -> Result<(), StoreError>;

    /// When `client_id` was last seen, if it is recorded.
    fn last_seen(&self, client_id: &str) -> Result<Option<i64>, StoreError>;

    /// Every recorded clientId, for status pages and reports.
    fn clients(&self) -> Result<Vec<ClientRecord>, StoreError>;

    /// Up to `limit` recorded clientIds last seen before `before_ms`, oldest
    /// first among those found. The caller ends each one it is given. Redis
    /// hands a clientId to one sweep for a lease: it comes back only if it
    /// is still there once the lease ran out (see `redis_store`).
    fn stale_clients(&self, before_ms: i64, limit: usize)
        -> Result<Vec<(String, i64)>, StoreError>;

    /// Moves what an older version of the store left in another layout
    /// into this one (at start, before anything else); how many clientIds
    /// it moved.
    fn upgrade_layout(&self) -> Result<usize, StoreError> {
        Ok(0)
    }

    /// Whether what the store holds outlives this process (Redis, shared
    /// by the site's processes), rather than dying with it (memory).
    fn outlives_process(&self) -> bool {
        false
    }

    /// Sends a publication to every process sharing this store; `false`
    /// when the store is not shared and the caller delivers it itself.
    fn broadcast(&self, _payload: &str) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Changes whenever the store lost its connection: from then on it may
    /// have lost state (a Redis server restarted empty), and the caller
    /// should [`restore`](HotStore::restore) its clients. Always 0 for a
    /// store that cannot lose state.
    fn generation(&self) -> u64 {
        0
    }

    /// Puts back the clientIds in `clients` that the store no longer holds,
    /// leaving those it holds alone, without counting them as new joins: a
    /// rebuilt timer starts at the earliest join among them and is marked
    /// as restored. Returns the rooms whose online lists changed.
    fn restore(&self, _clients: &[ClientRecord]) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
}

/// The contract every [`HotStore`] must keep, as one suite that the memory
/// store and the Redis store both run.
#[doc(hidden)]
pub mod contract {
    use super::*;

    pub fn auth(room: &str, time: &str, uid: u64, uname: &str) -> Auth {
        Auth {
            room: room.into(),
            time: time.into(),
            user: User {
                uid,
                uname: uname.into(),
            },
        }
    }

    /// A new clientId's outcome; `room_occupied` is true only for the
    /// first user of a room, as every test below states.
    fn joined(room_joined: bool, timer_started: bool) -> ConnectOutcome {
        ConnectOutcome::Joined {
            room_joined,
            room_occupied: false,
            timer_started,
        }
    }

    fn first_in_room(timer_started: bool) -> ConnectOutcome {
        ConnectOutcome::Joined {
            room_joined: true,
            room_occupied: true,
            timer_started,
        }
    }

    pub fn run_all(store: &dyn HotStore) {
        first_tab_joins_room_and_starts_timer(store);
        repeated_connect_changes_nothing(store);
        second_tab_is_the_same_user(store);
        last_tab_leaving_takes_the_user_offline(store);
        a_clientid_cannot_claim_another_user(store);
        unknown_disconnect_is_harmless(store);
        two_users_in_one_room(store);
        rooms_and_lessons_are_independent(store);
        last_seen_and_stale_clients(store);
        a_session_ends_with_its_latest_tab(store);
        a_gap_after_a_swept_tab_is_not_credited(store);
        lists_its_clients(store);
        page_states_and_the_users_state(store);
        a_disconnect_ends_the_page_state(store);
    }

    fn page_states_and_the_users_state(s: &dyn HotStore) {
        use PageState::*;
        let a = auth("/c13/room", "/c13/time", 13, "max");
        assert_eq!(s.set_state("c13a", Active, 500).unwrap(), None, "unknown");
        assert_eq!(s.pages(&["c13a".into()]).unwrap(), vec![None]);
        s.connect("c13a", &a, 1_000).unwrap();
        s.connect("c13b", &a, 1_000).unwrap();
        let first = s.set_state("c13a", Active, 1_100).unwrap().unwrap();
        assert_eq!(first.auth, a);
        assert_eq!(first.previous, None);
        assert_eq!((first.user_before, first.user_after), (None, Some(Active)));
        let out = s.set_state("c13b", Hidden, 1_200).unwrap().unwrap();
        assert_eq!(
            (out.user_before, out.user_after),
            (Some(Active), Some(Active))
        );
        let same = s.set_state("c13a", Active, 1_300).unwrap().unwrap();
        assert_eq!(
            same.previous,
            Some((Active, 1_100)),
            "unchanged, since 1.1 s"
        );
        let out = s.set_state("c13a", Idle, 2_000).unwrap().unwrap();
        assert_eq!(out.previous, Some((Active, 1_100)));
        assert_eq!(
            (out.user_before, out.user_after),
            (Some(Active), Some(Idle))
        );
        assert_eq!(
            s.pages(&["c13b".into(), "c13a".into(), "c13z".into()])
                .unwrap(),
            vec![Some((Hidden, 1_200)), Some((Idle, 2_000)), None]
        );
        assert_eq!(
            s.room_states("/c13/room").unwrap(),
            HashMap::from([(13, Idle)]),
            "c13b is hidden, c13a idle: the user is idle"
        );
        assert!(s.room_states("/c13/nowhere").unwrap().is_empty());
        assert_eq!(
            s.set_state("c13a", Active, 1_900).unwrap(),
            None,
            "a report older than the state held is stale"
        );
        // The same state reported again moves the latest report on: an
        // older report of another state is stale too.
        s.set_state("c13a", Idle, 2_500).unwrap().unwrap();
        assert_eq!(s.set_state("c13a", Active, 2_200).unwrap(), None);
        assert_eq!(
            s.pages(&["c13a".into()]).unwrap(),
            vec![Some((Idle, 2_000))]
        );
        let out = s.set_state("c13a", Hidden, 3_000).unwrap().unwrap();
        assert_eq!(out.previous, Some((Idle, 2_000)));
        assert_eq!(
            (out.user_before, out.user_after),
            (Some(Idle), Some(Hidden))
        );
        s.disconnect("c13a", 4_000).unwrap();
        s.disconnect("c13b", 4_000).unwrap();
        assert_eq!(s.set_state("c13a", Active, 5_000).unwrap(), None, "gone");
        assert_eq!(s.pages(&["c13a".into()]).unwrap(), vec![None], "forgotten");
    }

    fn a_disconnect_ends_the_page_state(s: &dyn HotStore) {
        use PageState::*;
        let a = auth("/c14/room", "/c14/time", 14, "noa");
        s.connect("c14a", &a, 1_000).unwrap();
        s.connect("c14b", &a, 2_000).unwrap();
        s.connect("c14c", &a, 2_500).unwrap();
        s.set_state("c14a", Active, 1_000).unwrap();
        s.set_state("c14b", Hidden, 2_000).unwrap();
        let out = s.disconnect("c14a", 5_000).unwrap().unwrap();
        assert_eq!(out.joined_ms, 1_000);
        assert_eq!(out.page, Some((Active, 1_000)));
        assert_eq!(
            out.user_state_now,
            Some(Some(Hidden)),
            "the hidden tab is left"
        );
        let out = s.disconnect("c14c", 6_000).unwrap().unwrap();
        assert_eq!((out.joined_ms, out.page), (2_500, None));
        assert_eq!(out.user_state_now, None, "unchanged");
        let out = s.disconnect("c14b", 7_000).unwrap().unwrap();
        assert_eq!(out.page, Some((Hidden, 2_000)));
        assert!(out.room_left);
        assert_eq!(out.user_state_now, None, "the user left the room");
        // Another user's state is theirs alone.
        let b = auth("/c14/room", "/c14/time", 15, "oli");
        s.connect("c15a", &b, 8_000).unwrap();
        let out = s.set_state("c15a", Idle, 8_100).unwrap().unwrap();
        assert_eq!((out.user_before, out.user_after), (None, Some(Idle)));
        s.disconnect("c15a", 9_000).unwrap();
    }

    fn lists_its_clients(s: &dyn HotStore) {
        // A name may hold anything, the store's separators included.
        let a = auth("/c12/room", "/c12/time", 12, "lou|léa 2nd");
        s.connect("c12a", &a, 1_000).unwrap();
        s.touch(&[("c12a".into(), 1_500)]).unwrap();
        let listed = s.clients().unwrap();
        let mine: Vec<_> = listed.iter().filter(|c| c.client_id == "c12a").collect();
        assert_eq!(
            mine,
            vec![&ClientRecord {
                client_id: "c12a".into(),
                auth: a,
                joined_ms: 1_000,
                last_seen_ms: 1_500,
            }]
        );
        s.disconnect("c12a", 2_000).unwrap();
        assert!(!s.clients().unwrap().iter().any(|c| c.client_id == "c12a"));
    }

    fn first_tab_joins_room_and_starts_timer(s: &dyn HotStore) {
        let a = auth("/c1/room", "/c1/time", 1, "ann");
        assert_eq!(s.connect("c1a", &a, 1_000).unwrap(), first_in_room(true));
        assert_eq!(s.room_users("/c1/room").unwrap(), vec![a.user.clone()]);
        assert_eq!(s.timer_started_at(1, "/c1/time").unwrap(), Some(1_000));
        assert_eq!(s.last_seen("c1a").unwrap(), Some(1_000));
    }

    fn repeated_connect_changes_nothing(s: &dyn HotStore) {
        let a = auth("/c2/room", "/c2/time", 2, "bob");
        s.connect("c2a", &a, 1_000).unwrap();
        assert_eq!(
            s.connect("c2a", &a, 2_000).unwrap(),
            ConnectOutcome::AlreadyKnown
        );
        assert_eq!(s.timer_started_at(2, "/c2/time").unwrap(), Some(1_000));
        assert_eq!(s.room_users("/c2/room").unwrap().len(), 1);
    }

    fn second_tab_is_the_same_user(s: &dyn HotStore) {
        let a = auth("/c3/room", "/c3/time", 3, "cy");
        assert_eq!(s.connect("c3a", &a, 1_000).unwrap(), first_in_room(true));
        assert_eq!(s.connect("c3b", &a, 5_000).unwrap(), joined(false, false));
        assert_eq!(s.room_users("/c3/room").unwrap().len(), 1);
        let out = s.disconnect("c3a", 10_000).unwrap().unwrap();
        assert!(!out.room_left);
        assert!(!out.room_vacated);
        assert_eq!(out.timer_started_at, None);
        assert_eq!(s.room_users("/c3/room").unwrap().len(), 1);
        assert_eq!(s.timer_started_at(3, "/c3/time").unwrap(), Some(1_000));
    }

    fn last_tab_leaving_takes_the_user_offline(s: &dyn HotStore) {
        let a = auth("/c4/room", "/c4/time", 4, "di");
        s.connect("c4a", &a, 1_000).unwrap();
        s.connect("c4b", &a, 2_000).unwrap();
        s.disconnect("c4a", 10_000).unwrap();
        let out = s.disconnect("c4b", 10_000).unwrap().unwrap();
        assert_eq!(out.auth, a);
        assert!(out.room_left);
        assert!(out.room_vacated, "the room's last user left");
        assert_eq!(out.timer_started_at, Some(1_000));
        assert!(s.room_users("/c4/room").unwrap().is_empty());
        assert_eq!(s.timer_started_at(4, "/c4/time").unwrap(), None);
        assert_eq!(
            s.disconnect("c4b", 10_000).unwrap(),
            None,
            "a second leave is a no-op"
        );
        assert_eq!(s.last_seen("c4b").unwrap(), None);
        // Coming back starts a new session.
        assert_eq!(s.connect("c4c", &a, 9_000).unwrap(), first_in_room(true));
        assert_eq!(s.timer_started_at(4, "/c4/time").unwrap(), Some(9_000));
    }

    fn a_clientid_cannot_claim_another_user(s: &dyn HotStore) {
        let a = auth("/c5/room", "/c5/time", 5, "ed|5");
        let b = auth("/c5/room", "/c5/time", 55, "eve");
        s.connect("c5a", &a, 1_000).unwrap();
        assert_eq!(
            s.connect("c5a", &a, 1_500).unwrap(),
            ConnectOutcome::AlreadyKnown
        );
        assert_eq!(
            s.connect("c5a", &auth("/c5/room", "/c5/time", 5, "ed"), 1_500)
                .unwrap(),
            ConnectOutcome::Conflict(a.clone())
        );
        assert_eq!(
            s.connect("c5a", &b, 2_000).unwrap(),
            ConnectOutcome::Conflict(a.clone())
        );
        let other_room = auth("/c5/other", "/c5/time", 5, "ed|5");
        assert_eq!(
            s.connect("c5a", &other_room, 2_000).unwrap(),
            ConnectOutcome::Conflict(a.clone())
        );
        assert_eq!(s.room_users("/c5/room").unwrap(), vec![a.user.clone()]);
        assert!(s.room_users("/c5/other").unwrap().is_empty());
    }

    fn unknown_disconnect_is_harmless(s: &dyn HotStore) {
        assert_eq!(s.disconnect("never-seen", 10_000).unwrap(), None);
    }

    fn two_users_in_one_room(s: &dyn HotStore) {
        let a = auth("/c7/room", "/c7/time", 71, "fay");
        let b = auth("/c7/room", "/c7/time", 70, "gus");
        s.connect("c7a", &a, 1_000).unwrap();
        assert_eq!(s.connect("c7b", &b, 1_000).unwrap(), joined(true, true));
        let users = s.room_users("/c7/room").unwrap();
        assert_eq!(users, vec![b.user.clone(), a.user.clone()], "sorted by uid");
        assert_eq!(s.room_count("/c7/room").unwrap(), 2);
        assert_eq!(s.room_count("/c7/nobody").unwrap(), 0);
        assert!(s.room_has("/c7/room", 71).unwrap());
        assert!(!s.room_has("/c7/room", 72).unwrap());
        assert!(!s.room_has("/c7/nobody", 71).unwrap());
        let out = s.disconnect("c7a", 10_000).unwrap().unwrap();
        assert!(out.room_left);
        assert!(!out.room_vacated, "gus is still there");
        assert_eq!(s.room_users("/c7/room").unwrap(), vec![b.user.clone()]);
        let out = s.disconnect("c7b", 11_000).unwrap().unwrap();
        assert!(out.room_left && out.room_vacated);
    }

    fn rooms_and_lessons_are_independent(s: &dyn HotStore) {
        // The same user in two rooms, sharing one lesson.
        let r1 = auth("/c8/r1", "/c8/time", 8, "hal");
        let r2 = auth("/c8/r2", "/c8/time", 8, "hal");
        assert_eq!(s.connect("c8a", &r1, 1_000).unwrap(), first_in_room(true));
        assert_eq!(s.connect("c8b", &r2, 2_000).unwrap(), first_in_room(false));
        let out = s.disconnect("c8a", 10_000).unwrap().unwrap();
        assert!(out.room_left && out.room_vacated);
        assert_eq!(out.timer_started_at, None, "still timed through c8b");
        let out = s.disconnect("c8b", 10_000).unwrap().unwrap();
        assert_eq!(out.timer_started_at, Some(1_000));
    }

    fn a_session_ends_with_its_latest_tab(s: &dyn HotStore) {
        let a = auth("/c10/room", "/c10/time", 10, "jo");
        s.connect("c10a", &a, 1_000).unwrap();
        s.connect("c10b", &a, 3_000).unwrap();
        // c10b leaves explicitly at 4 s; c10a, last seen at 1 s, is swept later.
        assert_eq!(
            s.disconnect("c10b", 4_000)
                .unwrap()
                .unwrap()
                .timer_started_at,
            None
        );
        let out = s.disconnect("c10a", 1_000).unwrap().unwrap();
        assert_eq!(out.timer_started_at, Some(1_000));
        assert_eq!(out.timer_ended_at, 4_000);
        assert_eq!(out.timer_credited_ms, 1_000, "c10a was seen only at 1 s");
        // The next session starts afresh.
        s.connect("c10c", &a, 9_000).unwrap();
        let out = s.disconnect("c10c", 9_500).unwrap().unwrap();
        assert_eq!(
            (out.timer_started_at, out.timer_ended_at),
            (Some(9_000), 9_500)
        );
    }

    fn a_gap_after_a_swept_tab_is_not_credited(s: &dyn HotStore) {
        let a = auth("/c11/room", "/c11/time", 11, "kim");
        s.connect("c11a", &a, 1_000).unwrap();
        s.connect("c11b", &a, 2_000).unwrap();
        // c11b leaves at 5 s; c11a was last seen at 3 s; c11c joins at 8 s,
        // before c11a is swept; c11c leaves at 10 s.
        s.disconnect("c11b", 5_000).unwrap();
        s.connect("c11c", &a, 8_000).unwrap();
        let out = s.disconnect("c11a", 3_000).unwrap().unwrap();
        assert_eq!((out.timer_started_at, out.timer_credited_ms), (None, 0));
        let out = s.disconnect("c11c", 10_000).unwrap().unwrap();
        assert_eq!(out.timer_started_at, Some(1_000));
        assert_eq!(out.timer_ended_at, 10_000);
        assert_eq!(out.timer_credited_ms, 4_000 + 2_000, "1–5 s and 8–10 s");
        assert!(!out.timer_restored);
    }

    fn last_seen_and_stale_clients(s: &dyn HotStore) {
        let a = auth("/c9/room", "/c9/time", 9, "ivy");
        s.connect("c9a", &a, 100).unwrap();
        s.connect("c9b", &a, 200).unwrap();
        s.touch(&[("c9b".into(), 50_000), ("unknown-client".into(), 10)])
            .unwrap();
        assert_eq!(s.last_seen("c9b").unwrap(), Some(50_000));
        assert_eq!(
            s.last_seen("unknown-client").unwrap(),
            None,
            "touch records no new client"
        );
        let stale = s.stale_clients(1_000, 100).unwrap();
        assert!(stale.contains(&("c9a".to_string(), 100)));
        assert!(!stale.iter().any(|(c, _)| c == "c9b"));
        s.disconnect("c9a", 10_000).unwrap();
        s.disconnect("c9b", 10_000).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_merge_what_overlaps_or_touches() {
        let mut spans = Vec::new();
        add_span(&mut spans, (5, 7));
        add_span(&mut spans, (1, 2));
        add_span(&mut spans, (2, 3));
        assert_eq!(spans, vec![(1, 3), (5, 7)]);
        add_span(&mut spans, (3, 6));
        assert_eq!(spans, vec![(1, 7)]);
        assert_eq!(spans_len(&spans), 6);
        add_span(&mut spans, (9, 9));
        assert_eq!(spans_len(&spans), 6);
    }
}
