//! Page states: what a page reports of itself, the engaged intervals it
//! makes, and the reports the gate refuses.

use super::*;
use crate::channel::PAGE_STATE_CHANNEL;
use crate::ledger::{IntervalKind, LessonTime};

fn state(id: &str, state: &str) -> Incoming {
    Incoming {
        channel: PAGE_STATE_CHANNEL.into(),
        client_id: Some(id.into()),
        page_state: Some(state.into()),
        ..Default::default()
    }
}

fn refused(verdict: Verdict) -> BayeuxError {
    match verdict {
        Verdict::Refuse(e) => e,
        Verdict::Pass => panic!("passed"),
    }
}

#[test]
fn a_page_state_makes_engaged_intervals_and_is_published() {
    let f = fixture("states");
    let t = &f.tracker;
    t.handshake("tab1");
    t.handshake("tab2");
    assert_eq!(t.incoming(&connect("tab1", 9)), Verdict::Pass);
    assert_eq!(t.incoming(&connect("tab2", 9)), Verdict::Pass);
    assert_eq!(t.incoming(&state("tab1", "active")), Verdict::Pass);
    assert_eq!(t.incoming(&state("tab2", "hidden")), Verdict::Pass);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(t.incoming(&state("tab1", "idle")), Verdict::Pass);
    assert_eq!(t.incoming(&state("tab1", "active")), Verdict::Pass);
    assert!(t.flush(Duration::from_secs(5)));
    let states: Vec<Value> = publications_on(t, "/user_changes")
        .into_iter()
        .filter_map(|p| p.get("state").cloned())
        .collect();
    assert_eq!(
        states,
        vec![
            json!([{"uid": 9, "uname": "u9", "state": "active"}]),
            json!([{"uid": 9, "uname": "u9", "state": "idle"}]),
            json!([{"uid": 9, "uname": "u9", "state": "active"}]),
        ],
        "the user's state over both tabs; tab2's hidden changed nothing"
    );
    let leave = Incoming {
        channel: "/meta/disconnect".into(),
        client_id: Some("tab1".into()),
        closing: true,
        ..Default::default()
    };
    t.incoming(&leave);
    t.session_ended("tab2");
    assert!(t.flush(Duration::from_secs(5)));
    let rows = DurableStore::new(&f.db.url)
        .intervals("/courses/5/lessons/1", Some(9))
        .unwrap();
    let summary: Vec<(&str, IntervalKind, &str)> = rows
        .iter()
        .map(|r| (r.client_id.as_str(), r.measure, r.ended_by.as_str()))
        .collect();
    use IntervalKind::{Attended, Engaged};
    assert!(
        summary.contains(&("tab1", Attended, "closed")),
        "{summary:?}"
    );
    assert!(
        summary.contains(&("tab2", Attended, "vanished")),
        "{summary:?}"
    );
    assert!(summary.contains(&("tab1", Engaged, "idle")), "{summary:?}");
    assert!(
        summary.contains(&("tab1", Engaged, "closed")),
        "{summary:?}"
    );
    assert_eq!(rows.len(), 4, "{summary:?}");
    let time = LessonTime::of(&rows, None);
    assert!(
        time.engaged_ms >= 30 && time.engaged_ms <= time.attended_ms,
        "{time:?}"
    );
}

/// A lesson's figures while it runs: the ledger's intervals and, from the
/// hot store, the running ones, with each online user's state.
#[test]
fn lesson_times_count_what_still_runs() {
    let f = fixture("running");
    let t = &f.tracker;
    let lesson = "/courses/5/lessons/1";
    t.handshake("tab1");
    t.handshake("tab2");
    t.handshake("tab3");
    assert_eq!(t.incoming(&connect("tab1", 9)), Verdict::Pass);
    assert_eq!(t.incoming(&connect("tab2", 9)), Verdict::Pass);
    assert_eq!(t.incoming(&connect("tab3", 10)), Verdict::Pass);
    assert_eq!(t.incoming(&state("tab1", "active")), Verdict::Pass);
    assert_eq!(t.incoming(&state("tab2", "hidden")), Verdict::Pass);
    assert_eq!(t.incoming(&state("tab3", "idle")), Verdict::Pass);
    assert!(t.flush(Duration::from_secs(5)));
    // A new subscriber of user_changes gets each user with their state.
    t.handshake("watcher");
    t.subscribed("watcher", "/classes/4/user_changes");
    assert!(t.flush(Duration::from_secs(5)));
    let snapshot = t
        .drain()
        .into_iter()
        .find_map(|n| match n {
            Notification::Deliver { data, .. } => Some(data),
            _ => None,
        })
        .expect("a snapshot");
    assert_eq!(
        snapshot["users"],
        json!([{"uid": 9, "uname": "u9", "state": "active"}, {"uid": 10, "uname": "u10", "state": "idle"}])
    );
    std::thread::sleep(Duration::from_millis(50));
    let times = t.query().lesson_times(lesson, None).unwrap();
    assert_eq!(times.len(), 2, "{times:?}");
    let (nine, ten) = (&times[0], &times[1]);
    assert_eq!(
        (nine.uid, nine.online, nine.state),
        (9, true, Some("active"))
    );
    assert_eq!((ten.uid, ten.online, ten.state), (10, true, Some("idle")));
    assert!(
        nine.engaged_ms >= 50 && nine.engaged_ms <= nine.attended_ms,
        "{nine:?}"
    );
    assert_eq!(ten.engaged_ms, 0);
    assert_eq!(nine.last_leave_ms, None);
    let single = t.query().lesson_time(9, lesson, None).unwrap();
    assert!(single.attended_ms >= nine.attended_ms);
    // Clipped to a window that ended before anyone came: nothing.
    let early = nine.first_join_ms.unwrap() - 10_000;
    let clipped = t
        .query()
        .lesson_times(lesson, Some((early, early + 5_000)))
        .unwrap();
    assert!(clipped
        .iter()
        .all(|u| u.attended_ms == 0 && u.engaged_ms == 0));

    for id in ["tab1", "tab2"] {
        t.incoming(&Incoming {
            channel: "/meta/disconnect".into(),
            client_id: Some(id.into()),
            ..Default::default()
        });
    }
    assert!(t.flush(Duration::from_secs(5)));
    let after = t.query().lesson_times(lesson, None).unwrap();
    assert_eq!((after[0].online, after[0].state), (false, None));
    assert_eq!(after[0].uname, "u9");
    assert!(after[0].last_leave_ms.is_some());
    assert!(after[0].engaged_ms >= nine.engaged_ms);
}

#[test]
fn bad_page_states_are_refused_and_change_nothing() {
    let f = fixture("bad_states");
    let t = &f.tracker;
    t.handshake("anon");
    t.handshake("tab1");
    assert_eq!(t.incoming(&connect("tab1", 9)), Verdict::Pass);
    for bad in ["", "ACTIVE", "away", "active ", &"a".repeat(600)] {
        assert_eq!(
            refused(t.incoming(&state("tab1", bad))).code,
            400,
            "{bad:?}"
        );
    }
    let mut no_data = state("tab1", "active");
    no_data.page_state = None;
    assert_eq!(refused(t.incoming(&no_data)).code, 400);
    let mut no_client = state("tab1", "active");
    no_client.client_id = None;
    assert_eq!(refused(t.incoming(&no_client)).code, 400);
    assert_eq!(
        refused(t.incoming(&state("anon", "active"))).code,
        403,
        "no identity"
    );
    assert_eq!(
        refused(t.incoming(&state("nobody", "active"))).code,
        403,
        "unknown"
    );
    // A flood: the burst passes, the rest is refused.
    let answers: Vec<Verdict> = (0..30)
        .map(|k| t.incoming(&state("tab1", if k % 2 == 0 { "active" } else { "idle" })))
        .collect();
    let passed = answers.iter().filter(|v| **v == Verdict::Pass).count();
    assert_eq!(passed, crate::served::STATE_BURST as usize, "{answers:?}");
    assert!(answers
        .iter()
        .any(|v| matches!(v, Verdict::Refuse(e) if e.code == 503)));
    let subscribe = Incoming {
        channel: "/meta/subscribe".into(),
        client_id: Some("tab1".into()),
        subscription: vec![PAGE_STATE_CHANNEL.into()],
        ..Default::default()
    };
    assert_eq!(refused(t.incoming(&subscribe)).code, 403);
    assert!(t.flush(Duration::from_secs(5)));
    assert!(DurableStore::new(&f.db.url)
        .intervals("/courses/5/lessons/1", None)
        .unwrap()
        .iter()
        .all(|r| r.client_id == "tab1"));
}
