//! What the tracker keeps in memory, and its bounds.

use super::*;

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
