//! Trust: bad input refused and nothing stored; signed identities; who
//! may receive a room's lists; only Bayeux's own meta channels.

use super::*;

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
        ..Default::default()
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
        ..Default::default()
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
        ..Default::default()
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
            ..Default::default()
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
            ..Default::default()
        };
        assert!(
            matches!(t.incoming(&msg), Verdict::Refuse(e) if e.code == 400),
            "{ch}"
        );
    }
}
