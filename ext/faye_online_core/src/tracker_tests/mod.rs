//! The tracker end to end: a gate, a worker and a writer on real stores.
//! The fixtures and the presence path are here; trust, writes and bounds
//! have a file each.

mod bounds;
mod states;
mod trust;
mod writes;

use super::*;
use crate::auth::Auth;
use crate::clock;
use crate::error::BayeuxError;
use crate::ledger::{spended_key, started_key, Record};
use crate::outbox::{EventKind, PresenceEvent};
use crate::test_support::{log_lines, logs_until, test_redis_url, wait_until, TempSqlite};
use serde_json::{json, Value};

struct Fixture {
    tracker: Tracker,
    db: TempSqlite,
}

fn fixture(name: &str) -> Fixture {
    fixture_with(name, json!({}))
}

fn fixture_with(name: &str, extra: Value) -> Fixture {
    fixture_after(name, extra, |_| {})
}

/// A tracker on a fresh SQLite database that `before` has written to.
fn fixture_after(name: &str, extra: Value, before: impl FnOnce(&mut DurableStore)) -> Fixture {
    let db = TempSqlite::new(&format!("tracker_{name}"));
    before(&mut DurableStore::new(&db.url));
    let mut config = json!({"database_url": db.url, "gc_interval_ms": 0});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    let config = Config::from_json(&config.to_string()).unwrap();
    Fixture {
        tracker: Tracker::new(&config).unwrap(),
        db,
    }
}

fn connect(client_id: &str, uid: u64) -> Incoming {
    Incoming {
        channel: "/meta/connect".into(),
        client_id: Some(client_id.into()),
        auth: Some(Ok(
            json!({"room_channel": "/classes/4", "time_channel": "/courses/5/lessons/1",
                            "current_user": {"uid": uid, "uname": format!("u{uid}")}}),
        )),
        subscription: Vec::new(),
        ..Default::default()
    }
}

/// What was published on user_list channels.
fn publications(t: &Tracker) -> Vec<Value> {
    publications_on(t, "/user_list")
}

fn publications_on(t: &Tracker, suffix: &str) -> Vec<Value> {
    t.drain()
        .into_iter()
        .filter_map(|n| match n {
            Notification::Publish { channel, data } if channel.ends_with(suffix) => Some(data),
            _ => None,
        })
        .collect()
}

#[test]
fn big_rooms_can_have_changes_alone() {
    let f = fixture_with("changes", json!({"full_lists": false}));
    let t = &f.tracker;
    t.handshake("tab1");
    t.handshake("tab2");
    t.incoming(&connect("tab1", 9));
    t.incoming(&connect("tab2", 10));
    assert!(t.flush(Duration::from_secs(5)));
    let all = t.drain();
    assert!(
        !all.iter().any(|n| matches!(n, Notification::Publish { channel, .. } if channel.ends_with("/user_list"))),
        "no whole lists"
    );
    let changes: Vec<&Value> = all
        .iter()
        .filter_map(|n| match n {
            Notification::Publish { channel, data } if channel == "/classes/4/user_changes" => {
                Some(data)
            }
            _ => None,
        })
        .collect();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[1]["count"], 2);
    assert_eq!(changes[1]["joined"][0]["uid"], 10);
    assert!(changes[1].get("users").is_none());
    t.subscribed("watcher", "/classes/4/user_changes");
    assert!(t.flush(Duration::from_secs(5)));
    let delivered: Vec<Notification> = t.drain();
    assert!(delivered.iter().any(|n| matches!(n,
        Notification::Deliver { client_id, channel, data }
            if client_id == "watcher" && channel == "/classes/4/user_changes"
                && data["users"].as_array().map(Vec::len) == Some(2) && data["count"] == 2)));
}

#[test]
fn a_full_session_through_the_tracker() {
    let f = fixture("session");
    let t = &f.tracker;
    t.handshake("tab1");
    t.handshake("tab2");
    assert_eq!(t.incoming(&connect("tab1", 9)), Verdict::Pass);
    assert_eq!(t.incoming(&connect("tab1", 9)), Verdict::Pass);
    assert_eq!(t.incoming(&connect("tab2", 9)), Verdict::Pass);
    assert!(t.flush(Duration::from_secs(5)));
    let published = publications(t);
    assert_eq!(published.len(), 1, "only the first tab changes the room");
    assert_eq!(published[0]["count"], 1);
    assert_eq!(published[0]["user_list"], json!([9]));
    assert_eq!(published[0]["channel_name"], "/classes/4");
    assert_eq!(published[0]["joined"][0]["uname"], "u9");
    assert_eq!(t.query().online_users("/classes/4").unwrap().len(), 1);

    let disconnect = |id: &str| Incoming {
        channel: "/meta/disconnect".into(),
        client_id: Some(id.into()),
        auth: None,
        subscription: Vec::new(),
        ..Default::default()
    };
    t.incoming(&disconnect("tab1"));
    t.session_ended("tab1");
    assert!(t.flush(Duration::from_secs(5)));
    assert!(
        publications(t).is_empty(),
        "the user is still online through tab2"
    );
    t.incoming(&disconnect("tab2"));
    assert!(t.flush(Duration::from_secs(5)));
    let published = publications(t);
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["count"], 0);
    assert_eq!(published[0]["left"][0]["uid"], 9);
    assert!(t.query().online_users("/classes/4").unwrap().is_empty());

    let mut durable = DurableStore::new(&f.db.url);
    assert!(durable.online_uids("/classes/4").unwrap().is_empty());
    let times = durable.online_times(9).unwrap();
    assert!(times.contains_key("/courses/5/lessons/1_spended"));
    assert!(!times.contains_key("/courses/5/lessons/1_started_at"));
}

/// The events a session makes, once each and in order: the room's first
/// user occupies it, a second tab of a user changes nothing, the last tab
/// leaving ends the user's time (told once it is in SQL) and empties the
/// room.
#[test]
fn a_session_makes_its_events_once() {
    let f = fixture("events");
    let t = &f.tracker;
    for id in ["tab1", "tab2", "tab3"] {
        t.handshake(id);
    }
    t.incoming(&connect("tab1", 9));
    t.incoming(&connect("tab2", 9));
    t.incoming(&connect("tab3", 10));
    let disconnect = |id: &str| Incoming {
        channel: "/meta/disconnect".into(),
        client_id: Some(id.into()),
        auth: None,
        subscription: Vec::new(),
        ..Default::default()
    };
    for id in ["tab1", "tab3", "tab2"] {
        t.incoming(&disconnect(id));
        t.session_ended(id);
    }
    assert!(t.flush(Duration::from_secs(5)));
    let events: Vec<PresenceEvent> = t
        .drain()
        .into_iter()
        .filter_map(|n| match n {
            Notification::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    // Presence is told at once; a session's time once its row is written,
    // so after what presence told meanwhile, but in the order of leaving.
    let seen = |credited: bool| -> Vec<(&str, u64)> {
        events
            .iter()
            .filter(|e| (e.kind == EventKind::TimeCredited) == credited)
            .map(|e| (e.kind.as_str(), e.user.uid))
            .collect()
    };
    assert_eq!(
        seen(false),
        vec![
            ("occupied", 9),
            ("joined", 9),
            ("joined", 10),
            ("left", 10),
            ("left", 9),
            ("vacated", 9),
        ]
    );
    assert_eq!(
        seen(true),
        vec![("time_credited", 10), ("time_credited", 9)]
    );
    let mut durable = DurableStore::new(&f.db.url);
    assert!(durable
        .online_times(9)
        .unwrap()
        .contains_key(&spended_key("/courses/5/lessons/1")));
    assert!(events
        .iter()
        .all(|e| e.room == "/classes/4" && e.lesson == "/courses/5/lessons/1"));
    let credited = events.last().unwrap();
    let (started, credited_ms) = credited.session.expect("a session");
    assert!(credited_ms >= 0 && started <= credited.at_ms);
}

#[test]
fn a_subscriber_gets_the_current_list() {
    let f = fixture("snapshot");
    let t = &f.tracker;
    t.handshake("tab1");
    t.incoming(&connect("tab1", 9));
    t.subscribed("watcher", "/classes/4/user_list");
    t.subscribed("watcher", "/classes/*/user_list");
    assert!(t.flush(Duration::from_secs(5)));
    let delivered: Vec<_> = t
        .drain()
        .into_iter()
        .filter(|n| matches!(n, Notification::Deliver { .. }))
        .collect();
    assert_eq!(delivered.len(), 1);
    let Notification::Deliver {
        client_id,
        channel,
        data,
    } = &delivered[0]
    else {
        unreachable!()
    };
    assert_eq!(client_id, "watcher");
    assert_eq!(channel, "/classes/4/user_list");
    assert_eq!(data["user_list"], json!([9]));
}

#[test]
fn the_waker_socket_becomes_readable() {
    use std::io::Read;
    let f = fixture("waker");
    let mut fd = f.tracker.take_waker_fd().unwrap();
    assert!(f.tracker.take_waker_fd().is_none());
    fd.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    assert!(
        fd.read(&mut buf).unwrap() >= 1,
        "the start-up log line wakes the host"
    );
}

/// Two processes sharing Redis: a change made through one reaches the
/// user_list subscribers of both, once each.
#[test]
fn publications_reach_every_process_sharing_redis() {
    let Some(url) = test_redis_url() else {
        return;
    };
    let ns = format!("fo_fanout_{}", std::process::id());
    let probe = RedisStore::new(&url, &ns).unwrap();
    probe.clear().unwrap();
    let f = fixture("fanout");
    let config = Config::from_json(
        &json!({"database_url": f.db.url, "redis_url": url, "namespace": ns, "gc_interval_ms": 0})
            .to_string(),
    )
    .unwrap();
    let a = Tracker::new(&config).unwrap();
    let b = Tracker::new(&config).unwrap();
    let wait =
        |what: &str, cond: &mut dyn FnMut() -> bool| wait_until(what, Duration::from_secs(5), cond);
    wait("both listeners", &mut || probe.listeners().unwrap() >= 2);
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    for (uid, id) in [(5, "taba"), (6, "tabb")] {
        a.handshake(id);
        a.incoming(&connect(id, uid));
        wait("the publication in both processes", &mut || {
            got_a.extend(publications(&a));
            got_b.extend(publications(&b));
            got_a.iter().any(|d| d["joined"][0]["uid"] == uid)
                && got_b.iter().any(|d| d["joined"][0]["uid"] == uid)
        });
    }
    // Broadcasts arrive in order: a duplicate of the first change would
    // have come before the second.
    assert_eq!(got_a.len(), 2, "{got_a:?}");
    assert_eq!(got_b.len(), 2, "{got_b:?}");
    assert_eq!(got_b[1]["user_list"], json!([5, 6]));
    a.close(Duration::from_secs(5));
    b.close(Duration::from_secs(5));
    probe.clear().unwrap();
}
