//! Property tests of the presence state machine over random sequences of
//! connects, repeated polls, disconnects and sweeps, against a plain model:
//!
//! - a user is online in a room iff they have a live clientId there;
//! - the time credited to a user in a lesson equals the measure of the union
//!   of their clientIds' intervals in it (overlapping tabs count once), each
//!   from its join to its leave, or to when it was last seen for a tab that
//!   was swept: a gap between a swept tab's last poll and a later tab's
//!   join is not counted;
//! - each clientId joins once and leaves at most once.

use faye_online_core::auth::{Auth, User};
use faye_online_core::memory::MemoryStore;
use faye_online_core::presence::{ConnectOutcome, HotStore};
use faye_online_core::redis_store::RedisStore;
use faye_online_core::test_support::test_redis_url;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone)]
enum Op {
    /// clientId index, user index, room index, lesson index
    Connect(u8, u8, u8, u8),
    Disconnect(u8),
    /// sweep clientIds unseen for this many steps
    Sweep(u8),
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..12, 0u8..4, 0u8..2, 0u8..2).prop_map(|(c, u, r, t)| Op::Connect(c, u, r, t)),
        3 => (0u8..12).prop_map(Op::Disconnect),
        1 => (1u8..5).prop_map(Op::Sweep),
        2 => Just(Op::Tick),
    ]
}

fn auth(u: u8, r: u8, t: u8) -> Auth {
    Auth {
        room: format!("/rooms/{r}"),
        time: format!("/lessons/{t}"),
        user: User {
            uid: u as u64 + 1,
            uname: format!("user{u}"),
        },
    }
}

/// Measure of the union of intervals.
fn union_len(mut spans: Vec<(i64, i64)>) -> i64 {
    spans.sort();
    let mut total = 0;
    let mut current: Option<(i64, i64)> = None;
    for (s, e) in spans {
        match current {
            Some((cs, ce)) if s <= ce => current = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                current = Some((s, e));
            }
            None => current = Some((s, e)),
        }
    }
    if let Some((cs, ce)) = current {
        total += ce - cs;
    }
    total
}

fn run(store: &dyn HotStore, prefix: &str, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut now = 1_000i64;
    // model: clientId → (auth, joined at, last seen)
    let mut live: HashMap<String, (Auth, i64, i64)> = HashMap::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut spans: BTreeMap<(u64, String), Vec<(i64, i64)>> = BTreeMap::new();
    let mut credited: BTreeMap<(u64, String), i64> = BTreeMap::new();
    let mut leaves: HashMap<String, u32> = HashMap::new();

    let mut end = |store: &dyn HotStore,
                   live: &mut HashMap<String, (Auth, i64, i64)>,
                   id: &str,
                   at: i64|
     -> Result<(), TestCaseError> {
        let out = store.disconnect(id, at).unwrap();
        match live.remove(id) {
            Some((a, joined, _)) => {
                let out = out.expect("a live clientId is removed");
                prop_assert_eq!(&out.auth, &a);
                *leaves.entry(id.to_string()).or_default() += 1;
                spans
                    .entry((a.user.uid, a.time.clone()))
                    .or_default()
                    .push((joined, at));
                if out.timer_started_at.is_some() {
                    *credited.entry((a.user.uid, a.time.clone())).or_default() +=
                        out.timer_credited_ms;
                } else {
                    prop_assert_eq!(out.timer_credited_ms, 0);
                }
            }
            None => prop_assert!(out.is_none(), "an unknown clientId changes nothing"),
        }
        Ok(())
    };

    for op in ops {
        match op {
            Op::Tick => now += 10,
            Op::Connect(c, u, r, t) => {
                let id = format!("{prefix}c{c}");
                let a = auth(*u, *r, *t);
                let out = store.connect(&id, &a, now).unwrap();
                match live.get_mut(&id) {
                    Some((known, _, seen)) if *known == a => {
                        prop_assert_eq!(out, ConnectOutcome::AlreadyKnown);
                        *seen = now;
                    }
                    Some((known, _, _)) => {
                        prop_assert_eq!(out, ConnectOutcome::Conflict(known.clone()))
                    }
                    None if used.contains(&id) => {
                        // A clientId never comes back after it left: Faye
                        // issues new ones. Treat it as a fresh one anyway.
                        let joined = matches!(out, ConnectOutcome::Joined { .. });
                        prop_assert!(joined, "a new clientId joins");
                        live.insert(id.clone(), (a, now, now));
                    }
                    None => {
                        let joined = matches!(out, ConnectOutcome::Joined { .. });
                        prop_assert!(joined, "a new clientId joins");
                        used.insert(id.clone());
                        live.insert(id.clone(), (a, now, now));
                    }
                }
            }
            Op::Disconnect(c) => {
                let id = format!("{prefix}c{c}");
                end(store, &mut live, &id, now)?;
            }
            Op::Sweep(age) => {
                let before = now - *age as i64 * 10;
                for (id, seen) in store.stale_clients(before, 1000).unwrap() {
                    prop_assert!(
                        live.get(&id).map(|l| l.2) == Some(seen),
                        "stale {} is live and seen then",
                        id
                    );
                    end(store, &mut live, &id, seen)?;
                }
                for (id, (_, _, seen)) in &live {
                    prop_assert!(*seen >= before, "{} is stale but was not swept", id);
                }
            }
        }
        // Online iff a live clientId is in the room.
        for r in 0..2u8 {
            let room = format!("/rooms/{r}");
            let expected: BTreeSet<u64> = live
                .values()
                .filter(|(a, _, _)| a.room == room)
                .map(|(a, _, _)| a.user.uid)
                .collect();
            let got: BTreeSet<u64> = store
                .room_users(&room)
                .unwrap()
                .into_iter()
                .map(|u| u.uid)
                .collect();
            prop_assert_eq!(got, expected, "room {}", room);
        }
    }
    // Everyone leaves: credited time is the union of each user's intervals.
    let ids: Vec<String> = live.keys().cloned().collect();
    for id in ids {
        end(store, &mut live, &id, now)?;
    }
    for (key, s) in spans {
        let credited = credited.get(&key).copied().unwrap_or(0);
        prop_assert_eq!(credited, union_len(s), "time of {:?}", key);
    }
    prop_assert!(leaves.values().all(|n| *n >= 1));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn memory_store_keeps_the_invariants(ops in prop::collection::vec(op(), 1..120)) {
        run(&MemoryStore::new(), "", &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn redis_store_keeps_the_invariants(ops in prop::collection::vec(op(), 1..80)) {
        let Some(url) = test_redis_url() else {
            return Ok(());
        };
        let ns = format!("fo_prop_{}", std::process::id());
        let store = RedisStore::new(&url, &ns).unwrap();
        store.clear().unwrap();
        let result = run(&store, "", &ops);
        store.clear().unwrap();
        result?;
    }
}
