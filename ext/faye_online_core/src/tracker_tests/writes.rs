//! What reaches SQL: the repair at start, the bound on records waiting,
//! rows that follow the hot store, records the database refuses.

use super::*;

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
    // No drop or no write failure logged within 5 s fails the test.
    let logged = |logs: &[String], what: &str| logs.iter().any(|l| l.contains(what));
    logs_until(
        Duration::from_secs(5),
        || t.drain(),
        |logs| logged(logs, "dropped") && logged(logs, "cannot write"),
    );
    assert!(
        !t.close(Duration::from_millis(200)),
        "nothing could be written"
    );
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
    logs_until(
        Duration::from_secs(5),
        || t.drain(),
        |logs| {
            logs.iter()
                .filter(|l| l.starts_with("set aside a record"))
                .count()
                == 2
                && logs
                    .iter()
                    .any(|l| l.contains("faye_online_user_names.uname is in utf8"))
        },
    );

    // The operator widens and converts the tables, and replays (while the
    // server runs: at its stop, the memory store's users leave).
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
    t.close(Duration::from_secs(5));
}
