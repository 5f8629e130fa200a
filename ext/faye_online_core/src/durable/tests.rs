//! The durable store's contract, on SQLite and (when reachable) MySQL
//! and PostgreSQL.

use super::*;
use crate::ledger::{spended_key, started_key, Session};
use crate::test_support::{recreate_schema, test_mysql_url, TempSqlite};

/// The durable-store contract, run on SQLite and (when reachable) MySQL
/// and PostgreSQL.
fn contract(url: &str) {
    let mut store = DurableStore::new(url);
    let room = "/classes/4";
    let time = "/courses/5/lessons/1";
    let join = |uid: u64, uname: &str| Record::RoomJoin {
        room: room.into(),
        uid,
        uname: uname.into(),
    };
    store.apply(&join(7, "seven")).unwrap();
    store.apply(&join(3, "three")).unwrap();
    store.apply(&join(7, "Seven")).unwrap();
    assert_eq!(store.user_name(7).unwrap(), "Seven");
    assert_eq!(store.user_name(99).unwrap(), "");
    assert_eq!(store.online_uids(room).unwrap(), vec![3, 7]);
    store
        .apply(&Record::RoomLeave {
            room: room.into(),
            uid: 7,
        })
        .unwrap();
    assert_eq!(store.online_uids(room).unwrap(), vec![3]);
    assert_eq!(store.online_uids("/nowhere").unwrap(), Vec::<u64>::new());

    let t0 = 1_700_000_000_000;
    store
        .apply(&Record::TimerStart {
            uid: 3,
            time: time.into(),
            at_ms: t0,
        })
        .unwrap();
    let times = store.online_times(3).unwrap();
    assert_eq!(
        times[&started_key(time)],
        Value::String(clock::compact_local(t0))
    );
    assert_eq!(store.online_time(3, time, t0 + 10_000).unwrap(), 10);
    store
        .apply(&Record::TimerStop {
            uid: 3,
            time: time.into(),
            started_ms: t0,
            credited_ms: 42_000,
            restored: false,
        })
        .unwrap();
    store
        .apply(&Record::TimerStop {
            uid: 3,
            time: time.into(),
            started_ms: t0,
            credited_ms: 8_000,
            restored: false,
        })
        .unwrap();
    let times = store.online_times(3).unwrap();
    assert!(!times.contains_key(&started_key(time)));
    assert_eq!(times[&spended_key(time)], Value::from(50));
    assert_eq!(store.online_time(3, time, t0 + 999_000).unwrap(), 50);

    // A session that Redis lost and the live clientIds rebuilt from a
    // later join: the time from the start recorded here is credited too.
    let t1 = t0 + 1_000_000;
    store
        .apply(&Record::TimerStart {
            uid: 3,
            time: time.into(),
            at_ms: t1,
        })
        .unwrap();
    store
        .apply(&Record::TimerStop {
            uid: 3,
            time: time.into(),
            started_ms: t1 + 30_000,
            credited_ms: 5_000,
            restored: true,
        })
        .unwrap();
    assert_eq!(store.online_time(3, time, t1 + 999_000).unwrap(), 85);

    for status in [1, 0, 0] {
        store
            .apply(&Record::Login {
                status,
                uid: 3,
                at_ms: t0,
                time: time.into(),
                client_id: "abc".into(),
            })
            .unwrap();
    }
    let tid = store.channel_id(time).unwrap();
    let conn = store.conn().unwrap();
    let client_id = conn.dialect().column("clientId");
    let row = conn
        .first_row(
            &format!("SELECT COUNT(*), SUM(status), MIN(channel_id), MIN(t) FROM faye_user_login_logs WHERE {client_id} = ?"),
            &["abc".into()],
        )
        .unwrap()
        .unwrap();
    assert_eq!(row[0].as_deref(), Some("2"));
    assert_eq!(row[1].as_deref(), Some("1"));
    assert_eq!(row[2].as_deref(), Some(tid.to_string().as_str()));
    assert!(row[3]
        .as_deref()
        .unwrap()
        .starts_with(&clock::sql_datetime(t0)));

    batches(url);
    two_writers(url);
    open_sessions(url);
}

/// Many records in one batch come out as if applied one by one, and
/// login rows applied again are not written twice.
fn batches(url: &str) {
    let mut store = DurableStore::new(url);
    let (room_a, room_b, time) = ("/batch/a", "/batch/b", "/batch/lesson");
    let t0 = 1_700_000_500_000;
    let mut batch = Vec::new();
    for uid in 100..110u64 {
        let room = if uid % 2 == 0 { room_a } else { room_b };
        batch.push(Record::Login {
            status: 1,
            uid,
            at_ms: t0,
            time: time.into(),
            client_id: format!("batch-{uid}"),
        });
        batch.push(Record::RoomJoin {
            room: room.into(),
            uid,
            uname: format!("u{uid}"),
        });
        batch.push(Record::TimerStart {
            uid,
            time: time.into(),
            at_ms: t0,
        });
    }
    for uid in [101, 104] {
        let room = if uid % 2 == 0 { room_a } else { room_b };
        batch.push(Record::Login {
            status: 0,
            uid,
            at_ms: t0 + 7_000,
            time: time.into(),
            client_id: format!("batch-{uid}"),
        });
        batch.push(Record::RoomLeave {
            room: room.into(),
            uid,
        });
        batch.push(Record::TimerStop {
            uid,
            time: time.into(),
            started_ms: t0,
            credited_ms: 7_000,
            restored: false,
        });
    }
    store.apply_batch(&batch, None).unwrap();
    let logins: Vec<Record> = batch
        .iter()
        .filter(|r| matches!(r, Record::Login { .. }))
        .cloned()
        .collect();
    store.apply_batch(&logins, None).unwrap();
    assert_eq!(store.online_uids(room_a).unwrap(), vec![100, 102, 106, 108]);
    assert_eq!(store.online_uids(room_b).unwrap(), vec![103, 105, 107, 109]);
    assert_eq!(store.user_name(109).unwrap(), "u109");
    let times = store.online_times(104).unwrap();
    assert!(!times.contains_key(&started_key(time)));
    assert_eq!(times[&spended_key(time)], Value::from(7));
    assert!(store
        .online_times(105)
        .unwrap()
        .contains_key(&started_key(time)));
    let conn = store.conn().unwrap();
    let client_id = conn.dialect().column("clientId");
    let row = conn
        .first_row(
            &format!("SELECT COUNT(*), SUM(status) FROM faye_user_login_logs WHERE {client_id} LIKE 'batch-%'"),
            &[],
        )
        .unwrap()
        .unwrap();
    assert_eq!(row[0].as_deref(), Some("12"));
    assert_eq!(row[1].as_deref(), Some("10"));
}

/// Two writers (two processes) apply batches that touch the same rooms
/// and users in opposite orders at once: neither deadlocks nor loses
/// the other's changes.
fn two_writers(url: &str) {
    let rooms: Vec<String> = (0..4).map(|i| format!("/writers/{i}")).collect();
    let time = "/writers/lesson";
    let handles: Vec<_> = [false, true]
        .into_iter()
        .map(|reversed| {
            let url = url.to_owned();
            let rooms = rooms.clone();
            std::thread::spawn(move || {
                let mut store = DurableStore::new(&url);
                let base = if reversed { 2000 } else { 1000 };
                for round in 0..20u64 {
                    let mut batch = Vec::new();
                    let mut order: Vec<usize> = (0..rooms.len()).collect();
                    if reversed {
                        order.reverse();
                    }
                    for i in order {
                        let uid = base + round * 10 + i as u64;
                        batch.push(Record::RoomJoin {
                            room: rooms[i].clone(),
                            uid,
                            uname: format!("w{uid}"),
                        });
                        batch.push(Record::TimerStop {
                            uid: 1 + i as u64,
                            time: time.into(),
                            started_ms: 0,
                            credited_ms: 1_000,
                            restored: false,
                        });
                    }
                    store.apply_batch(&batch, None).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut store = DurableStore::new(url);
    for room in &rooms {
        assert_eq!(store.online_uids(room).unwrap().len(), 40, "{room}");
    }
    for uid in 1..=4 {
        let times = store.online_times(uid).unwrap();
        assert_eq!(times[&spended_key(time)], Value::from(40), "user {uid}");
    }
}

/// The interval ledger: a batch applied twice (a retry after a commit
/// whose answer was lost) adds nothing; intervals written by three
/// processes merge into one union per user.
fn interval_ledger(url: &str) {
    use crate::ledger::{IntervalKind, LessonTime};
    let lesson = "/courses/5/lessons/9";
    let interval = |uid, id: &str, measure, s, e, why: &str| Record::Interval {
        uid,
        time: lesson.into(),
        client_id: id.into(),
        measure,
        started_ms: s,
        ended_ms: e,
        ended_by: why.into(),
    };
    use IntervalKind::{Attended, Engaged};
    let t = 1_700_000_000_000;
    // Three processes, each with one of user 7's tabs.
    let mut a = DurableStore::new(url);
    let mut b = DurableStore::new(url);
    let mut c = DurableStore::new(url);
    let batch_a = vec![
        interval(7, "tab1", Attended, t, t + 60_000, "left"),
        interval(7, "tab1", Engaged, t + 1_000, t + 20_000, "hidden"),
        interval(7, "tab1", Engaged, t + 30_000, t + 60_000, "left"),
    ];
    a.apply_batch(&batch_a, None).unwrap();
    a.apply_batch(&batch_a, None).unwrap();
    b.apply_batch(
        &[
            interval(7, "tab2", Attended, t + 50_000, t + 90_500, "closed"),
            interval(7, "tab2", Engaged, t + 55_000, t + 70_000, "idle"),
            interval(8, "tab9", Attended, t, t + 10, "vanished"),
        ],
        None,
    )
    .unwrap();
    c.apply(&interval(
        7,
        "tab3",
        Attended,
        t + 100_000,
        t + 100_250,
        "stopped",
    ))
    .unwrap();
    let rows = a.intervals(lesson, Some(7)).unwrap();
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert_eq!(rows[0].client_id, "tab1");
    assert_eq!(rows[0].ended_by, "left");
    assert_eq!(
        LessonTime::of(&rows, None),
        LessonTime {
            attended_ms: 90_500 + 250,
            engaged_ms: 19_000 + 40_000,
        }
    );
    // Clipped to a window from 10 s to 100.1 s.
    assert_eq!(
        LessonTime::of(&rows, Some((t + 10_000, t + 100_100))),
        LessonTime {
            attended_ms: 80_500 + 100,
            engaged_ms: 10_000 + 40_000,
        }
    );
    assert_eq!(a.intervals(lesson, None).unwrap().len(), 7);
    assert!(a.intervals("/elsewhere", None).unwrap().is_empty());

    // Lessons' windows: set, replaced, listed by start.
    assert_eq!(a.scheduled(lesson).unwrap(), None);
    a.schedule(lesson, t, t + 3_600_000).unwrap();
    b.schedule(lesson, t + 60_000, t + 3_660_000).unwrap();
    b.schedule("/courses/5/lessons/10", t - 1, t + 10).unwrap();
    let window = |l: &str, s, e| crate::durable::Scheduled {
        lesson: l.into(),
        starts_ms: s,
        ends_ms: e,
    };
    assert_eq!(
        a.scheduled(lesson).unwrap(),
        Some(window(lesson, t + 60_000, t + 3_660_000))
    );
    assert_eq!(
        c.schedules(t - 1, t + 60_001).unwrap(),
        vec![
            window("/courses/5/lessons/10", t - 1, t + 10),
            window(lesson, t + 60_000, t + 3_660_000)
        ]
    );
    assert!(c.schedules(t, t + 60_000).unwrap().is_empty());
}

#[test]
fn keeps_the_durable_contract_on_sqlite() {
    let db = TempSqlite::new("durable");
    contract(&db.url);
    interval_ledger(&db.url);
}

#[test]
fn keeps_the_durable_contract_on_mysql() {
    let Some(url) = test_mysql_url() else {
        return;
    };
    let mut conn = sql::open(&url).expect("MySQL from FAYE_ONLINE_TEST_MYSQL_URL");
    recreate_schema(conn.as_mut());
    contract(&url);
    interval_ledger(&url);
}

#[test]
fn keeps_the_durable_contract_on_postgres() {
    let Some(url) = crate::test_support::test_postgres_database("contract") else {
        return;
    };
    contract(&url);
    interval_ledger(&url);
}

/// A user who attended three thousand lessons: the widened column holds
/// the row (a MySQL TEXT stopped at 64 KB, about two thousand lessons).
#[test]
fn a_lifetime_of_lessons_fits_in_one_row_on_mysql() {
    let Some(url) = crate::test_support::test_mysql_database("lifetime") else {
        return;
    };
    a_lifetime_of_lessons(&url);
}

#[test]
fn a_lifetime_of_lessons_fits_in_one_row_on_postgres() {
    let Some(url) = crate::test_support::test_postgres_database("lifetime") else {
        return;
    };
    a_lifetime_of_lessons(&url);
}

fn a_lifetime_of_lessons(url: &str) {
    let mut store = DurableStore::new(url);
    let stops: Vec<Record> = (0..3000)
        .map(|i| Record::TimerStop {
            uid: 9,
            time: format!("/courses/{i}/lessons/{}", i % 7 + 1),
            started_ms: 1_700_000_000_000,
            credited_ms: 60_000,
            restored: false,
        })
        .collect();
    for chunk in stops.chunks(256) {
        store.apply_batch(chunk, None).unwrap();
    }
    let times = store.online_times(9).unwrap();
    assert_eq!(times.len(), 3000);
    assert_eq!(
        times[&spended_key("/courses/2999/lessons/4")],
        Value::from(60)
    );
    assert!(Value::Object(times).to_string().len() > 65_535);
}

/// The open sessions of a recent window, newest first and at most a
/// limit, without the closed ones or those older than the window.
fn open_sessions(url: &str) {
    let mut store = DurableStore::new(url);
    let now = clock::now_ms();
    let day = 86_400_000;
    let login = |status, client_id: &str, at_ms| Record::Login {
        status,
        uid: 41,
        at_ms,
        time: "/open/lesson".into(),
        client_id: client_id.into(),
    };
    let records = [
        login(1, "open-old", now - 8 * day),
        login(1, "open-1", now - 3_000),
        login(1, "open-2", now - 2_000),
        login(1, "closed", now - 1_000),
        login(0, "closed", now - 500),
    ];
    store.apply_batch(&records, None).unwrap();
    let ids = |sessions: Vec<Session>| -> Vec<String> {
        sessions
            .into_iter()
            .filter(|s| s.uid == 41)
            .map(|s| s.client_id)
            .collect()
    };
    let week = store.open_sessions(now - 7 * day, 100).unwrap();
    assert!(week.iter().all(|s| s.left_ms.is_none()));
    assert_eq!(ids(week), vec!["open-2", "open-1"]);
    assert_eq!(
        ids(store.open_sessions(now - 7 * day, 1).unwrap()),
        vec!["open-2"]
    );
    assert_eq!(
        ids(store.open_sessions(now - 9 * day, 100).unwrap()),
        vec!["open-2", "open-1", "open-old"]
    );
}

/// What PostgreSQL refuses for good is told from what a retry can cure:
/// a NUL in a name (no PostgreSQL text holds one) and a value past its
/// column are set aside, a server that is not there is tried again.
#[test]
fn postgres_errors_are_told_apart() {
    let Some(url) = crate::test_support::test_postgres_database("errors") else {
        return;
    };
    let mut store = DurableStore::new(&url);
    let join = |uname: &str| Record::RoomJoin {
        room: "/classes/1".into(),
        uid: 5,
        uname: uname.into(),
    };
    let nul = store.apply(&join("a\u{0}b")).unwrap_err();
    assert!(nul.is_permanent(), "{nul}");
    let long = store.apply(&join(&"x".repeat(300))).unwrap_err();
    assert!(long.is_permanent(), "{long}");
    assert!(long.to_string().contains("22001"), "{long}");
    store.apply(&join("Five")).unwrap();
    assert_eq!(store.user_name(5).unwrap(), "Five");
    assert_eq!(store.charset_warnings().unwrap(), Vec::<String>::new());

    // A column changed to a type the core does not write: set aside too.
    sql::open(&url)
        .unwrap()
        .execute(
            "ALTER TABLE faye_user_online_times ALTER COLUMN user_id TYPE numeric",
            &[],
        )
        .unwrap();
    let stop = Record::TimerStop {
        uid: 5,
        time: "/courses/1/lessons/1".into(),
        started_ms: 1_700_000_000_000,
        credited_ms: 1_000,
        restored: false,
    };
    let numeric = store.apply(&stop).unwrap_err();
    assert!(numeric.is_permanent(), "{numeric}");

    let mut away = DurableStore::new("postgres://nobody@127.0.0.1:1/none");
    let e = away.apply(&join("Five")).unwrap_err();
    assert!(!e.is_permanent() && !e.is_deadlock(), "{e}");
}
