//! The hot store in process memory: the embedded default, for one process.

use crate::auth::{Auth, User};
use crate::error::StoreError;
use crate::presence::{
    add_span, spans_len, user_state, ClientRecord, ConnectOutcome, DisconnectOutcome, HotStore,
    PageState, StateOutcome,
};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// A running lesson timer: when it started, the intervals of the clientIds
/// that already left it (merged), and the clientIds still in it with when
/// each joined.
#[derive(Default)]
struct Timer {
    started: i64,
    spans: Vec<(i64, i64)>,
    ids: HashMap<String, i64>,
}

#[derive(Default)]
struct State {
    clients: HashMap<String, (Auth, i64)>,
    /// room → uid → (uname, clientIds)
    rooms: HashMap<String, BTreeMap<u64, (String, HashSet<String>)>>,
    /// time channel → uid → timer
    timers: HashMap<String, HashMap<u64, Timer>>,
    /// (last seen, clientId), for finding stale clients oldest first.
    by_last_seen: BTreeSet<(i64, String)>,
    /// clientId → the page state it last reported, since when, and when
    /// its latest report came.
    pages: HashMap<String, (PageState, i64, i64)>,
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl State {
    fn set_seen(&mut self, client_id: &str, at: i64) {
        if let Some((_, seen)) = self.clients.get_mut(client_id) {
            let old = *seen;
            if at > old {
                *seen = at;
                self.by_last_seen.remove(&(old, client_id.to_owned()));
                self.by_last_seen.insert((at, client_id.to_owned()));
            }
        }
    }
}

impl State {
    /// The user's state in `room` over their tabs there (see [`user_state`]).
    fn user_state(&self, room: &str, uid: u64) -> Option<PageState> {
        let ids = self.rooms.get(room).and_then(|r| r.get(&uid))?;
        user_state(
            ids.1
                .iter()
                .filter_map(|id| self.pages.get(id).map(|p| p.0)),
        )
    }
}

impl HotStore for MemoryStore {
    fn set_state(
        &self,
        client_id: &str,
        state: PageState,
        at_ms: i64,
    ) -> Result<Option<StateOutcome>, StoreError> {
        let mut st = self.state.lock();
        let Some((auth, _)) = st.clients.get(client_id) else {
            return Ok(None);
        };
        let auth = auth.clone();
        let held = st.pages.get(client_id).copied();
        if held.is_some_and(|(_, _, latest)| latest > at_ms) {
            // Older than the latest report applied: another process's
            // later report was applied first.
            return Ok(None);
        }
        let previous = held.map(|(state, since, _)| (state, since));
        let user_before = st.user_state(&auth.room, auth.user.uid);
        if previous.is_none_or(|(p, _)| p != state) {
            st.pages.insert(client_id.to_owned(), (state, at_ms, at_ms));
        } else if let Some(page) = st.pages.get_mut(client_id) {
            page.2 = at_ms;
        }
        let user_after = st.user_state(&auth.room, auth.user.uid);
        Ok(Some(StateOutcome {
            auth,
            previous,
            user_before,
            user_after,
        }))
    }

    fn connect(
        &self,
        client_id: &str,
        auth: &Auth,
        now_ms: i64,
    ) -> Result<ConnectOutcome, StoreError> {
        let mut st = self.state.lock();
        if let Some((known, _)) = st.clients.get(client_id) {
            if known == auth {
                st.set_seen(client_id, now_ms);
                return Ok(ConnectOutcome::AlreadyKnown);
            }
            return Ok(ConnectOutcome::Conflict(known.clone()));
        }
        st.clients
            .insert(client_id.to_owned(), (auth.clone(), now_ms));
        st.by_last_seen.insert((now_ms, client_id.to_owned()));

        let room = st.rooms.entry(auth.room.clone()).or_default();
        let (uname, ids) = room
            .entry(auth.user.uid)
            .or_insert_with(|| (auth.user.uname.clone(), HashSet::new()));
        *uname = auth.user.uname.clone();
        let room_joined = ids.is_empty();
        ids.insert(client_id.to_owned());
        let room_occupied = room_joined && room.len() == 1;

        let timers = st.timers.entry(auth.time.clone()).or_default();
        let timer = timers.entry(auth.user.uid).or_insert_with(|| Timer {
            started: now_ms,
            ..Timer::default()
        });
        let timer_started = timer.ids.is_empty();
        timer.ids.insert(client_id.to_owned(), now_ms);

        Ok(ConnectOutcome::Joined {
            room_joined,
            room_occupied,
            timer_started,
        })
    }

    fn disconnect(
        &self,
        client_id: &str,
        at_ms: i64,
    ) -> Result<Option<DisconnectOutcome>, StoreError> {
        let mut st = self.state.lock();
        let Some((auth, seen)) = st.clients.remove(client_id) else {
            return Ok(None);
        };
        st.by_last_seen.remove(&(seen, client_id.to_owned()));
        let uid = auth.user.uid;
        let user_before = st.user_state(&auth.room, uid);
        let page = st
            .pages
            .remove(client_id)
            .map(|(state, since, _)| (state, since));

        let mut room_left = false;
        let mut room_vacated = false;
        if let Some(room) = st.rooms.get_mut(&auth.room) {
            if let Some((_, ids)) = room.get_mut(&uid) {
                ids.remove(client_id);
                if ids.is_empty() {
                    room.remove(&uid);
                    room_left = true;
                }
            }
            if room.is_empty() {
                room_vacated = room_left;
                st.rooms.remove(&auth.room);
            }
        }

        let user_after = st.user_state(&auth.room, uid);
        let user_state_now = (!room_left && user_after != user_before).then_some(user_after);
        let mut timer_started_at = None;
        let mut timer_ended_at = at_ms;
        let mut timer_credited_ms = 0;
        let mut joined_ms = at_ms;
        if let Some(timers) = st.timers.get_mut(&auth.time) {
            if let Some(timer) = timers.get_mut(&uid) {
                let joined = timer.ids.remove(client_id).unwrap_or(at_ms);
                joined_ms = joined;
                add_span(&mut timer.spans, (joined, at_ms.max(joined)));
                if timer.ids.is_empty() {
                    timer_started_at = Some(timer.started);
                    timer_ended_at = timer.spans.last().map_or(at_ms, |s| s.1);
                    timer_credited_ms = spans_len(&timer.spans);
                    timers.remove(&uid);
                }
            }
            if timers.is_empty() {
                st.timers.remove(&auth.time);
            }
        }

        Ok(Some(DisconnectOutcome {
            auth,
            room_left,
            room_vacated,
            timer_started_at,
            timer_ended_at,
            timer_credited_ms,
            timer_restored: false,
            joined_ms,
            page,
            user_state_now,
        }))
    }

    fn pages(&self, client_ids: &[String]) -> Result<Vec<Option<(PageState, i64)>>, StoreError> {
        let st = self.state.lock();
        Ok(client_ids
            .iter()
            .map(|id| st.pages.get(id).map(|&(state, since, _)| (state, since)))
            .collect())
    }

    fn room_users(&self, room: &str) -> Result<Vec<User>, StoreError> {
        let st = self.state.lock();
        Ok(st
            .rooms
            .get(room)
            .map(|users| {
                users
                    .iter()
                    .map(|(uid, (uname, _))| User {
                        uid: *uid,
                        uname: uname.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn room_states(&self, room: &str) -> Result<HashMap<u64, PageState>, StoreError> {
        let st = self.state.lock();
        let Some(users) = st.rooms.get(room) else {
            return Ok(HashMap::new());
        };
        Ok(users
            .keys()
            .filter_map(|uid| st.user_state(room, *uid).map(|s| (*uid, s)))
            .collect())
    }

    fn room_count(&self, room: &str) -> Result<usize, StoreError> {
        Ok(self.state.lock().rooms.get(room).map_or(0, |r| r.len()))
    }

    fn room_has(&self, room: &str, uid: u64) -> Result<bool, StoreError> {
        Ok(self
            .state
            .lock()
            .rooms
            .get(room)
            .is_some_and(|r| r.contains_key(&uid)))
    }

    fn timer_started_at(&self, uid: u64, time: &str) -> Result<Option<i64>, StoreError> {
        let st = self.state.lock();
        Ok(st
            .timers
            .get(time)
            .and_then(|t| t.get(&uid))
            .map(|t| t.started))
    }

    fn touch(&self, seen: &[(String, i64)]) -> Result<(), StoreError> {
        let mut st = self.state.lock();
        for (client_id, at) in seen {
            st.set_seen(client_id, *at);
        }
        Ok(())
    }

    fn last_seen(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.state.lock().clients.get(client_id).map(|(_, s)| *s))
    }

    fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let st = self.state.lock();
        Ok(st
            .clients
            .iter()
            .map(|(id, (auth, seen))| ClientRecord {
                client_id: id.clone(),
                joined_ms: st
                    .timers
                    .get(&auth.time)
                    .and_then(|t| t.get(&auth.user.uid))
                    .and_then(|t| t.ids.get(id).copied())
                    .unwrap_or(*seen),
                auth: auth.clone(),
                last_seen_ms: *seen,
            })
            .collect())
    }

    fn stale_clients(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let st = self.state.lock();
        Ok(st
            .by_last_seen
            .iter()
            .take_while(|(seen, _)| *seen < before_ms)
            .take(limit)
            .map(|(seen, id)| (id.clone(), *seen))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_hot_store_contract() {
        crate::presence::contract::run_all(&MemoryStore::new());
    }
}
