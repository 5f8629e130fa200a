//! Random input against the message decoding and the incoming hook: no
//! input may panic, and refused input must store nothing.

use faye_online_core::test_support::TempSqlite;
use faye_online_core::{Config, Incoming, Tracker, Verdict};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::time::Duration;

fn tracker() -> (Tracker, TempSqlite) {
    let db = TempSqlite::new("fuzz");
    let config =
        Config::from_json(&json!({"database_url": db.url, "gc_interval_ms": 0}).to_string())
            .unwrap();
    (Tracker::new(&config).unwrap(), db)
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("/classes/4"),
            Just("/courses/5/lessons/1"),
            Just("/a/*"),
            Just("/a/../b"),
            Just("")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("room_channel".to_string()),
                    Just("time_channel".to_string()),
                    Just("current_user".to_string()),
                    Just("uid".to_string()),
                    Just("uname".to_string()),
                    Just("token".to_string()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Incoming::from_json(&bytes);
    }
}

#[test]
fn arbitrary_auth_never_panics_and_refused_auth_stores_nothing() {
    let (tracker, db) = tracker();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let channels = prop_oneof![
        Just("/meta/connect"),
        Just("/meta/disconnect"),
        Just("/meta/subscribe"),
        Just("/classes/4/user_list"),
        Just("/chat"),
        Just("/faye-online/state"),
    ];
    let n = std::sync::atomic::AtomicU64::new(0);
    runner
        .run(
            &(json_value(), channels, 0u8..4, prop::option::of(".{0,12}")),
            |(auth, channel, client, state)| {
                let k = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let id = format!("fuzz{client}x{k}");
                tracker.handshake(&id);
                let msg = Incoming {
                    channel: channel.to_string(),
                    client_id: Some(id.clone()),
                    auth: Some(Ok(auth.clone())),
                    subscription: vec!["/classes/4/user_list".into()],
                    page_state: state.clone(),
                    closing: k.is_multiple_of(2),
                };
                let verdict = tracker.incoming(&msg);
                if channel == "/meta/connect" {
                    let valid = faye_online_core::Auth::from_value(&auth).is_ok();
                    prop_assert_eq!(matches!(verdict, Verdict::Pass), valid, "auth {}", auth);
                }
                tracker.session_ended(&id);
                Ok(())
            },
        )
        .unwrap();
    assert!(tracker.flush(Duration::from_secs(10)));
    // Only valid claims ever reached the store; all of them have left.
    assert!(tracker
        .query()
        .online_users("/classes/4")
        .unwrap()
        .is_empty());
    tracker.close(Duration::from_secs(5));
    drop(db);
}
