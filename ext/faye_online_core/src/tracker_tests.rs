//! The tracker end to end: a gate, a worker and a writer on real stores.

use super::*;
use crate::auth::Auth;
use crate::clock;
use crate::error::BayeuxError;
use crate::ledger::{spended_key, started_key, Record};
use crate::test_support::{log_lines, test_redis_url, wait_until, TempSqlite};
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
fn users_left_online_by_a_crash_are_removed_at_start() {
    let f = fixture_after("repair", json!({}), |durable| {
        for uid in [7, 8] {
            durable
                .apply(&Record::RoomJoin {
                    room: "/classes/4".into(),
                    uid,
                    uname: format!("u{uid}"),
                })
                .unwrap();
        }
    });
    let t = &f.tracker;
    t.handshake("tab1");
    t.incoming(&connect("tab1", 9));
    assert!(t.flush(Duration::from_secs(5)));
    let mut durable = DurableStore::new(&f.db.url);
    assert_eq!(durable.online_uids("/classes/4").unwrap(), vec![9]);
    let logs: Vec<String> = log_lines(t.drain());
    assert!(
        logs.iter().any(|l| l.contains("removed 2 users")),
        "{logs:?}"
    );
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

#[test]
fn refuses_bad_input_and_stores_nothing() {
    let f = fixture("bad");
    let t = &f.tracker;
    t.handshake("tab1");
    let mut bad = connect("tab1", 9);
    bad.auth = Some(Ok(json!({"room_channel": "/classes/*"})));
    assert!(matches!(t.incoming(&bad), Verdict::Refuse(e) if e.code == 400));
    bad.auth = Some(Err(BayeuxError::bad_request("auth", "too big")));
    assert!(matches!(t.incoming(&bad), Verdict::Refuse(e) if e.code == 400));
    assert_eq!(t.incoming(&connect("tab1", 9)), Verdict::Pass);
    assert!(matches!(t.incoming(&connect("tab1", 10)), Verdict::Refuse(e) if e.code == 403));
    let publish = Incoming {
        channel: "/classes/4/user_list".into(),
        client_id: Some("tab1".into()),
        auth: None,
        subscription: Vec::new(),
    };
    assert!(matches!(t.incoming(&publish), Verdict::Refuse(e) if e.code == 403));
    // A clientId this process never handshook is left to Faye (401).
    assert_eq!(t.incoming(&connect("stranger", 11)), Verdict::Pass);
    assert!(t.flush(Duration::from_secs(5)));
    let users = t.query().online_users("/classes/4").unwrap();
    assert_eq!(users.iter().map(|u| u.uid).collect::<Vec<_>>(), vec![9]);
}

#[test]
fn with_a_secret_only_signed_claims_count() {
    let secret = "a-secret-of-sixteen+";
    let f = fixture_with("secret", json!({"secret": secret}));
    let t = &f.tracker;
    let now = clock::now_ms() / 1000;
    let signed = |uid: u64, room: &str, expires: i64| {
        let mut msg = connect("x", uid);
        let Some(Ok(value)) = &mut msg.auth else {
            unreachable!()
        };
        value["room_channel"] = json!(room);
        let auth = Auth::from_value(value).unwrap();
        value["expires"] = json!(expires);
        value["token"] = json!(crate::auth::sign(secret.as_bytes(), &auth, expires));
        value.clone()
    };
    let refused = |v: Verdict| matches!(v, Verdict::Refuse(e) if e.code == 403);
    t.handshake("tab1");
    assert!(refused(t.incoming(&connect("tab1", 9))), "no token");
    let mut forged = connect("tab1", 10);
    forged.auth = Some(Ok({
        let mut v = signed(9, "/classes/4", now + 60);
        v["current_user"]["uid"] = json!(10);
        v
    }));
    assert!(refused(t.incoming(&forged)), "a token for another uid");
    let mut expired = connect("tab1", 9);
    expired.auth = Some(Ok(signed(9, "/classes/4", now - 1)));
    assert!(refused(t.incoming(&expired)), "expired");
    let mut good = connect("tab1", 9);
    good.auth = Some(Ok(signed(9, "/classes/4", now + 60)));
    assert_eq!(t.incoming(&good), Verdict::Pass);
    assert_eq!(t.incoming(&good), Verdict::Pass, "polls again");

    let subscribe = |auth: Option<Value>| Incoming {
        channel: "/meta/subscribe".into(),
        client_id: Some("tab1".into()),
        auth: auth.map(Ok),
        subscription: vec!["/classes/4/user_list".into()],
    };
    assert!(refused(t.incoming(&subscribe(None))));
    assert!(refused(t.incoming(&subscribe(Some(signed(
        9,
        "/classes/5",
        now + 60
    ))))));
    assert_eq!(
        t.incoming(&subscribe(Some(signed(9, "/classes/4", now + 60)))),
        Verdict::Pass
    );
    assert!(t.flush(Duration::from_secs(5)));
    let users = t.query().online_users("/classes/4").unwrap();
    assert_eq!(users.iter().map(|u| u.uid).collect::<Vec<_>>(), vec![9]);
}

#[test]
fn past_the_bound_records_are_dropped_and_logged() {
    let url = "sqlite:///nonexistent-dir-of-faye-online/x.sqlite3";
    let config = Config::from_json(
        &json!({"database_url": url, "gc_interval_ms": 0, "max_pending_records": 2}).to_string(),
    )
    .unwrap();
    let t = Tracker::new(&config).unwrap();
    for i in 0..4 {
        let id = format!("tab{i}");
        t.handshake(&id);
        t.incoming(&connect(&id, 20 + i));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut logs = Vec::new();
    let logged = |logs: &[String], what: &str| logs.iter().any(|l| l.contains(what));
    while !(logged(&logs, "dropped") && logged(&logs, "cannot write")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no drop or no write failure was logged: {logs:?}"
        );
        logs.extend(log_lines(t.drain()));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !t.close(Duration::from_millis(200)),
        "nothing could be written"
    );
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

/// Two processes record a user's leave and the user's return; the
/// leave reaches SQL last. The rows still say what the hot store says.
#[test]
fn memberships_follow_the_hot_store_whatever_order_records_arrive_in() {
    use crate::presence::contract::auth;
    let db = TempSqlite::new("order");
    let mut store = DurableStore::new(&db.url);
    let hot = Arc::new(MemoryStore::new());
    let view = HotMemberships(hot.clone());
    let (room, time) = ("/classes/9", "/courses/9/lessons/1");
    let t0 = 1_700_000_000_000;
    let join = Record::RoomJoin {
        room: room.into(),
        uid: 5,
        uname: "five".into(),
    };
    let start = |at_ms| Record::TimerStart {
        uid: 5,
        time: time.into(),
        at_ms,
    };

    // The first tab joins, in the first process.
    hot.connect("a", &auth(room, time, 5, "five"), t0).unwrap();
    for r in [join.clone(), start(t0)] {
        store
            .apply_batch(std::slice::from_ref(&r), Some(&view))
            .unwrap();
    }
    // It leaves; a tab in the second process joins 20 s later, and the
    // second process writes first.
    let left = hot.disconnect("a", t0 + 10_000).unwrap().unwrap();
    assert!(left.room_left);
    hot.connect("b", &auth(room, time, 5, "five"), t0 + 20_000)
        .unwrap();
    let late = [
        Record::RoomLeave {
            room: room.into(),
            uid: 5,
        },
        Record::TimerStop {
            uid: 5,
            time: time.into(),
            started_ms: t0,
            credited_ms: 10_000,
            restored: false,
        },
    ];
    for r in [join.clone(), start(t0 + 20_000)].iter().chain(&late) {
        store
            .apply_batch(std::slice::from_ref(r), Some(&view))
            .unwrap();
    }
    assert_eq!(store.online_uids(room).unwrap(), vec![5]);
    let times = store.online_times(5).unwrap();
    assert_eq!(
        times[&started_key(time)],
        Value::String(clock::compact_local(t0 + 20_000))
    );
    assert_eq!(times[&spended_key(time)], Value::from(10));

    // A prune at start of a user who is online again keeps them.
    store
        .apply_batch(
            &[Record::RoomPrune {
                room: room.into(),
                uids: vec![5],
            }],
            Some(&view),
        )
        .unwrap();
    assert_eq!(store.online_uids(room).unwrap(), vec![5]);

    // The second tab leaves; a join that arrives after its leave is
    // not believed, and a start after its stop leaves no running timer.
    hot.disconnect("b", t0 + 30_000).unwrap().unwrap();
    let ended = [
        late[0].clone(),
        Record::TimerStop {
            uid: 5,
            time: time.into(),
            started_ms: t0 + 20_000,
            credited_ms: 10_000,
            restored: false,
        },
        join,
        start(t0 + 20_000),
    ];
    for r in &ended {
        store
            .apply_batch(std::slice::from_ref(r), Some(&view))
            .unwrap();
    }
    assert_eq!(store.online_uids(room).unwrap(), Vec::<u64>::new());
    let times = store.online_times(5).unwrap();
    assert!(!times.contains_key(&started_key(time)), "{times:?}");
    assert_eq!(times[&spended_key(time)], Value::from(20));
}

/// With a secret, a room's lists reach only the clients that showed a
/// token for that room, however they subscribed; without one, everyone.
#[test]
fn with_a_secret_lists_reach_only_token_holders() {
    let secret = "a-secret-of-sixteen+";
    let f = fixture_with("delivery", json!({"secret": secret}));
    let t = &f.tracker;
    let now = clock::now_ms() / 1000;
    let signed = |uid: u64, room: &str| {
        let mut value = json!({"room_channel": room, "time_channel": "/courses/5/lessons/1",
                               "current_user": {"uid": uid, "uname": format!("u{uid}")}});
        let auth = Auth::from_value(&value).unwrap();
        value["expires"] = json!(now + 60);
        value["token"] = json!(crate::auth::sign(secret.as_bytes(), &auth, now + 60));
        value
    };
    t.handshake("student");
    t.handshake("stranger");
    t.handshake("teacher");
    let mut connect4 = connect("student", 9);
    connect4.auth = Some(Ok(signed(9, "/classes/4")));
    assert_eq!(t.incoming(&connect4), Verdict::Pass);
    assert!(t.may_receive("student", "/classes/4/user_list"));
    assert!(t.may_receive("student", "/classes/4/user_changes"));
    assert!(!t.may_receive("student", "/classes/5/user_list"));
    assert!(!t.may_receive("stranger", "/classes/4/user_list"));
    assert!(!t.may_receive("stranger", "/classes/4/user_changes"));
    assert!(!t.may_receive("nobody-here", "/classes/4/user_list"));
    assert!(
        t.may_receive("stranger", "/chat/4"),
        "other channels are open"
    );

    // A watcher shows a token for a room when it subscribes.
    let subscribe = Incoming {
        channel: "/meta/subscribe".into(),
        client_id: Some("teacher".into()),
        auth: Some(Ok(signed(1, "/classes/5"))),
        subscription: vec!["/classes/5/user_list".into()],
    };
    assert_eq!(t.incoming(&subscribe), Verdict::Pass);
    assert!(t.may_receive("teacher", "/classes/5/user_list"));
    assert!(!t.may_receive("teacher", "/classes/4/user_list"));

    // Once the client is gone, nothing more reaches its id.
    t.session_ended("student");
    assert!(!t.may_receive("student", "/classes/4/user_list"));

    let open = fixture("delivery_open");
    assert!(open.tracker.may_receive("anyone", "/classes/4/user_list"));
}

#[test]
fn only_bayeux_meta_channels_pass() {
    let f = fixture("meta");
    let t = &f.tracker;
    t.handshake("tab1");
    for ch in [
        "/meta/handshake",
        "/meta/connect",
        "/meta/subscribe",
        "/meta/unsubscribe",
        "/meta/disconnect",
    ] {
        let msg = Incoming {
            channel: ch.into(),
            client_id: Some("tab1".into()),
            auth: None,
            subscription: Vec::new(),
        };
        assert_eq!(t.incoming(&msg), Verdict::Pass, "{ch}");
    }
    for ch in [
        "/meta/subscribe/x",
        "/meta/connect/",
        "/meta/x",
        "/meta",
        "/meta/Subscribe",
    ] {
        let msg = Incoming {
            channel: ch.into(),
            client_id: Some("tab1".into()),
            auth: None,
            subscription: vec!["/classes/4/user_list".into()],
        };
        assert!(
            matches!(t.incoming(&msg), Verdict::Refuse(e) if e.code == 400),
            "{ch}"
        );
    }
}

/// Old tables on MySQL: a user's times past a TEXT column's 64 KB, and a
/// `utf8` (3-byte) names table that cannot hold an emoji. The records the
/// database refuses for good are set aside, logged, and block nothing:
/// everyone else's rows are written. Once the tables are fixed, a replay
/// writes them.
#[test]
fn records_the_database_refuses_are_set_aside_and_block_nothing() {
    let Some(url) = crate::test_support::test_mysql_database("aside") else {
        return;
    };
    let mut conn = crate::sql::open(&url).unwrap();
    for ddl in [
        "ALTER TABLE faye_user_online_times MODIFY online_times TEXT",
        "ALTER TABLE faye_online_user_names CONVERT TO CHARACTER SET utf8mb3",
    ] {
        conn.execute(ddl, &[]).unwrap();
    }
    // User 5 attended so many lessons that one more overflows the row.
    let mut full = serde_json::Map::new();
    let mut bytes = 2;
    while bytes < 65_480 {
        let key = format!("/courses/{}/lessons/1_spended", full.len());
        bytes += key.len() + 6; // "key":60,
        full.insert(key, Value::from(60));
    }
    let mut durable = DurableStore::new(&url);
    durable
        .apply(&Record::TimerStop {
            uid: 5,
            time: "/courses/0/lessons/1".into(),
            started_ms: 0,
            credited_ms: 0,
            restored: false,
        })
        .unwrap();
    conn.execute(
        "UPDATE faye_user_online_times SET online_times = ? WHERE user_id = 5",
        &[Value::Object(full).to_string().into()],
    )
    .unwrap();

    let config =
        Config::from_json(&json!({"database_url": url, "gc_interval_ms": 0}).to_string()).unwrap();
    let t = Tracker::new(&config).unwrap();
    let tab = |id: &str, uid: u64, uname: &str| {
        let mut msg = connect(id, uid);
        if let Some(Ok(v)) = &mut msg.auth {
            v["current_user"]["uname"] = json!(uname);
            v["time_channel"] = json!(format!("/courses/new{uid}/lessons/1"));
        }
        t.handshake(id);
        assert_eq!(t.incoming(&msg), Verdict::Pass);
    };
    tab("five", 5, "five");
    tab("six", 6, "six 😀");
    tab("seven", 7, "seven");
    assert!(t.flush(Duration::from_secs(10)));

    // Five's join landed (only the timer's row overflows); six's did not.
    assert_eq!(durable.online_uids("/classes/4").unwrap(), vec![5, 7]);
    assert_eq!(durable.user_name(7).unwrap(), "seven");
    let logged_in: Vec<String> = conn
        .all_rows(
            "SELECT clientId FROM faye_user_login_logs ORDER BY clientId",
            &[],
        )
        .unwrap()
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect();
    assert_eq!(logged_in, vec!["five", "seven", "six"]);
    let failed = durable.failed_records().unwrap();
    let kinds: Vec<&str> = failed
        .iter()
        .map(|f| {
            if f.record.contains("RoomJoin") {
                "join"
            } else {
                "timer"
            }
        })
        .collect();
    assert_eq!(kinds.len(), 2, "{failed:?}");
    assert!(
        kinds.contains(&"join") && kinds.contains(&"timer"),
        "{failed:?}"
    );
    assert!(failed.iter().all(|f| f.record.is_ascii()));
    let mut logs: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let done = |logs: &[String]| {
        logs.iter()
            .filter(|l| l.starts_with("set aside a record"))
            .count()
            == 2
            && logs
                .iter()
                .any(|l| l.contains("faye_online_user_names.uname is in utf8"))
    };
    while !done(&logs) {
        assert!(std::time::Instant::now() < deadline, "{logs:#?}");
        logs.extend(log_lines(t.drain()));
        std::thread::sleep(Duration::from_millis(10));
    }
    t.close(Duration::from_secs(5));

    // The operator widens and converts the tables, and replays.
    for ddl in [
        "ALTER TABLE faye_user_online_times MODIFY online_times MEDIUMTEXT",
        "ALTER TABLE faye_online_user_names CONVERT TO CHARACTER SET utf8mb4",
    ] {
        conn.execute(ddl, &[]).unwrap();
    }
    assert_eq!(durable.replay_failed().unwrap(), (2, 0));
    assert!(durable.failed_records().unwrap().is_empty());
    assert_eq!(durable.user_name(6).unwrap(), "six 😀");
    assert_eq!(durable.online_uids("/classes/4").unwrap(), vec![5, 6, 7]);
    assert!(durable
        .online_times(5)
        .unwrap()
        .contains_key(&started_key("/courses/new5/lessons/1")));
}

/// A room is watched while a subscription to its user_list lasts, and
/// forgotten with the last one; clients are forgotten when they end.
#[test]
fn what_the_gate_keeps_lasts_only_while_it_is_needed() {
    let f = fixture("bounded");
    let t = &f.tracker;
    for i in 0..50 {
        let id = format!("cycle{i}");
        let room = format!("/cycles/{i}");
        t.handshake(&id);
        let mut msg = connect(&id, 100 + i);
        if let Some(Ok(v)) = &mut msg.auth {
            v["room_channel"] = json!(room);
        }
        assert_eq!(t.incoming(&msg), Verdict::Pass);
        t.subscribed(&id, &format!("{room}/user_list"));
        t.subscribed("watcher", &format!("{room}/user_list"));
        t.unsubscribed(&id, &format!("{room}/user_list"));
        assert_eq!(
            t.stats().watched_rooms,
            1,
            "the watcher keeps the room watched"
        );
        t.unsubscribed("watcher", &format!("{room}/user_list"));
        t.session_ended(&id);
    }
    assert!(t.flush(Duration::from_secs(10)));
    let stats = t.stats();
    assert_eq!(
        (
            stats.served_clients,
            stats.watched_rooms,
            stats.queued_events,
            stats.pending_records
        ),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    assert!(stats.cached_channel_ids > 0 && stats.cached_channel_ids <= 4096);
}

/// A worker that cannot keep up (its Redis is away): past the bound, new
/// connects are refused with 503 (the client tries again soon) and
/// snapshots skipped, instead of the queue growing without end.
#[test]
fn a_worker_that_is_behind_bounds_its_queue() {
    let db = TempSqlite::new("busy");
    let config = Config::from_json(
        &json!({"database_url": db.url, "redis_url": "redis://127.0.0.1:1/0", "gc_interval_ms": 0})
            .to_string(),
    )
    .unwrap();
    let t = Tracker::new(&config).unwrap();
    let max = crate::presence_worker::MAX_QUEUED_EVENTS;
    let mut i = 0u64;
    while t.stats().queued_events < max {
        let id = format!("busy{i}");
        t.handshake(&id);
        assert_eq!(t.incoming(&connect(&id, 1 + i)), Verdict::Pass);
        i += 1;
        assert!(i <= max as u64 + 10, "{:?}", t.stats());
    }
    t.handshake("late");
    assert!(
        matches!(t.incoming(&connect("late", 9_999_999)), Verdict::Refuse(e) if e.code == 503),
        "{:?}",
        t.stats()
    );
    t.subscribed("late", "/classes/4/user_list");
    assert!(t.stats().queued_events <= max + 1);
    t.close(Duration::from_millis(100));
}
