use super::*;
use crate::test_support::{test_redis_url, wait_until};

struct Fixture {
    engine: Engine,
    outbox: Arc<Outbox>,
    stop: Arc<AtomicBool>,
    redis: Option<Connection>,
    ns: String,
    replies: Vec<Reply>,
}

impl Fixture {
    fn new(name: &str, timeout_ms: i64, gc_ms: i64) -> Option<Fixture> {
        Fixture::on(test_redis_url()?, name, timeout_ms, gc_ms)
    }

    fn on(url: String, name: &str, timeout_ms: i64, gc_ms: i64) -> Option<Fixture> {
        let ns = format!("fo_engine_{name}_{}", std::process::id());
        let mut redis = Client::open(url.as_str()).unwrap().get_connection().ok();
        if let Some(conn) = redis.as_mut() {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{ns}*"))
                .query(conn)
                .unwrap();
            if !keys.is_empty() {
                let _: () = redis::cmd("DEL").arg(keys).query(conn).unwrap();
            }
        }
        let (outbox, _wake) = Outbox::new().unwrap();
        let outbox = Arc::new(outbox);
        let stop = Arc::new(AtomicBool::new(false));
        let config = EngineConfig {
            redis_url: url.clone(),
            namespace: ns.clone(),
            timeout_ms,
            gc_ms,
        };
        let engine = Engine::start(&config, outbox.clone(), stop.clone(), |name, f| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map(|_| ())
                .map_err(|e| StoreError::other(e.to_string()))
        })
        .unwrap();
        Some(Fixture {
            engine,
            outbox,
            stop,
            redis,
            ns,
            replies: Vec::new(),
        })
    }

    /// Waits for the first reply `pick` accepts and removes it.
    fn reply<T>(&mut self, what: &str, mut pick: impl FnMut(&Reply) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            for n in self.outbox.drain() {
                if let Notification::Engine(r) = n {
                    self.replies.push(r);
                }
            }
            if let Some(i) = self.replies.iter().position(|r| pick(r).is_some()) {
                let r = self.replies.remove(i);
                return pick(&r).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "no reply {what}: {:?}",
                self.replies
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn create(&mut self, client_id: &str) {
        assert!(self.engine.submit(Op::CreateClient {
            ticket: 1,
            client_id: client_id.into()
        }));
        let added = self.reply("created", |r| match r {
            Reply::Created { added, .. } => Some(*added),
            _ => None,
        });
        assert!(added);
    }

    fn exists(&mut self, client_id: &str) -> bool {
        assert!(self.engine.submit(Op::ClientExists {
            ticket: 2,
            client_id: client_id.into(),
            take: false,
        }));
        self.reply("exists", |r| match r {
            Reply::Exists { exists, .. } => Some(*exists),
            _ => None,
        })
    }

    fn subscribe(&mut self, client_id: &str, channel: &str) -> bool {
        assert!(self.engine.submit(Op::Subscribe {
            ticket: 3,
            client_id: client_id.into(),
            channel: channel.into()
        }));
        self.reply("subscribed", |r| match r {
            Reply::Subscribed { added, .. } => Some(*added),
            _ => None,
        })
    }

    fn publish(&self, channel: &str, data: &str) {
        let message = serde_json::json!({"channel": channel, "data": data}).to_string();
        assert!(self.engine.submit(Op::Publish {
            ticket: 0,
            message,
            channels: crate::channel::expand(channel),
        }));
    }

    fn messages(&mut self, client_id: &str) -> Vec<String> {
        let id = client_id.to_owned();
        self.reply("messages", |r| match r {
            Reply::Messages {
                client_id,
                messages,
                ..
            } if *client_id == id => Some(messages.clone()),
            _ => None,
        })
    }

    fn redis(&mut self) -> &mut Connection {
        self.redis.as_mut().expect("a connection to the test Redis")
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.ns)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.engine.close();
    }
}

#[test]
fn clients_subscriptions_and_messages_in_faye_redis_layout() {
    let Some(mut f) = Fixture::new("layout", 60_000, 60_000) else {
        return;
    };
    f.create("alice0000000000000000000000001");
    assert!(f.exists("alice0000000000000000000000001"));
    assert!(!f.exists("nobody"));
    // The id is taken: a second create says so.
    assert!(f.engine.submit(Op::CreateClient {
        ticket: 9,
        client_id: "alice0000000000000000000000001".into()
    }));
    let added = f.reply("second create", |r| match r {
        Reply::Created { added, .. } => Some(*added),
        _ => None,
    });
    assert!(!added);

    assert!(f.subscribe("alice0000000000000000000000001", "/chat/*"));
    assert!(!f.subscribe("alice0000000000000000000000001", "/chat/*"));
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(f.key("/channels/chat/*"))
        .query(f.redis())
        .unwrap();
    assert_eq!(members, vec!["alice0000000000000000000000001".to_string()]);
    let own: Vec<String> = redis::cmd("SMEMBERS")
        .arg(f.key("/clients/alice0000000000000000000000001/channels"))
        .query(f.redis())
        .unwrap();
    assert_eq!(own, vec!["/chat/*".to_string()]);

    // No open connection here: the message waits in Redis, as JSON.
    f.publish("/chat/room", "hello");
    let key = f.key("/clients/alice0000000000000000000000001/messages");
    wait_until("the message is queued", Duration::from_secs(5), || {
        redis::cmd("LLEN")
            .arg(&key)
            .query::<i64>(f.redis())
            .unwrap()
            == 1
    });
    // A connect's check takes what waits, for its answer, and pings the
    // client in the same call.
    let _: () = redis::cmd("ZADD")
        .arg(f.key("/clients"))
        .arg("XX")
        .arg(clock::now_ms() - 30_000)
        .arg("alice0000000000000000000000001")
        .query(f.redis())
        .unwrap();
    assert!(f.engine.submit(Op::ClientExists {
        ticket: 5,
        client_id: "alice0000000000000000000000001".into(),
        take: true,
    }));
    let (exists, waiting) = f.reply("exists, with messages", |r| match r {
        Reply::Exists {
            exists, messages, ..
        } => Some((*exists, messages.clone())),
        _ => None,
    });
    assert!(exists);
    assert_eq!(waiting.len(), 1);
    assert!(waiting[0].contains("\"hello\""));
    let pinged: f64 = redis::cmd("ZSCORE")
        .arg(f.key("/clients"))
        .arg("alice0000000000000000000000001")
        .query(f.redis())
        .unwrap();
    assert!(
        pinged as i64 > clock::now_ms() - 5_000,
        "not pinged: {pinged}"
    );
    // A connect for a client that does not exist creates nothing.
    assert!(f.engine.submit(Op::ClientExists {
        ticket: 6,
        client_id: "nobody0000000000000000000000001".into(),
        take: true,
    }));
    let exists = f.reply("exists, for nobody", |r| match r {
        Reply::Exists {
            ticket: 6, exists, ..
        } => Some(*exists),
        _ => None,
    });
    assert!(!exists);
    let nobody: Option<f64> = redis::cmd("ZSCORE")
        .arg(f.key("/clients"))
        .arg("nobody0000000000000000000000001")
        .query(f.redis())
        .unwrap();
    assert_eq!(nobody, None);
    f.publish("/chat/room", "hello");
    // A connection opens: its queue is taken on the next notification.
    f.engine.connection("alice0000000000000000000000001", true);
    f.publish("/chat/room", "again");
    let got = f.messages("alice0000000000000000000000001");
    let data: Vec<serde_json::Value> = got
        .iter()
        .map(|m| serde_json::from_str::<serde_json::Value>(m).unwrap()["data"].clone())
        .collect();
    assert_eq!(data, vec!["hello", "again"]);
    assert_eq!(
        redis::cmd("LLEN")
            .arg(&key)
            .query::<i64>(f.redis())
            .unwrap(),
        0
    );

    // Messages that could not be delivered go back to the front, in order.
    assert!(f.engine.submit(Op::Enqueue {
        client_id: "alice0000000000000000000000001".into(),
        messages: vec!["\"3\"".into()],
        front: false,
    }));
    assert!(f.engine.submit(Op::Enqueue {
        client_id: "alice0000000000000000000000001".into(),
        messages: vec!["\"1\"".into(), "\"2\"".into()],
        front: true,
    }));
    let mut all = Vec::new();
    while all.len() < 3 {
        all.extend(f.messages("alice0000000000000000000000001"));
    }
    assert_eq!(all, vec!["\"1\"", "\"2\"", "\"3\""]);
}

#[test]
fn grants_are_kept_beside_the_client_and_come_with_its_messages() {
    let Some(mut f) = Fixture::new("grants", 60_000, 60_000) else {
        return;
    };
    let id = "carol000000000000000000000000001";
    f.create(id);
    // Written before the subscription (ops run in order), so that no
    // message reaches the queue before the grant exists.
    assert!(f.engine.submit(Op::Grant {
        client_id: id.into(),
        grants: vec!["channel:/chats/1".into(), "uid:7".into()],
    }));
    f.subscribe(id, "/chats/1");
    assert!(f.engine.submit(Op::Grants {
        ticket: 9,
        client_id: id.into(),
    }));
    let mut grants = f.reply("grants", |r| match r {
        Reply::Grants {
            ticket: 9, grants, ..
        } => Some(grants.clone()),
        _ => None,
    });
    grants.sort();
    assert_eq!(grants, vec!["channel:/chats/1", "uid:7"]);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(f.key(&format!("/clients/{id}/grants")))
        .query(f.redis())
        .unwrap();
    assert!(ttl > 0 && ttl <= GRANTS_TTL_MS, "ttl {ttl}");

    // A connect's take and a connection's take both bring the grants.
    f.publish("/chats/1", "one");
    wait_until("the message queued", Duration::from_secs(5), || {
        f.redis
            .as_mut()
            .map(|c| {
                redis::cmd("LLEN")
                    .arg(format!("{}/clients/{id}/messages", f.ns))
                    .query::<i64>(c)
                    .unwrap()
            })
            .unwrap_or(0)
            == 1
    });
    assert!(f.engine.submit(Op::ClientExists {
        ticket: 10,
        client_id: id.into(),
        take: true,
    }));
    let (messages, grants) = f.reply("exists, with messages and grants", |r| match r {
        Reply::Exists {
            ticket: 10,
            messages,
            grants,
            ..
        } => Some((messages.clone(), grants.clone())),
        _ => None,
    });
    assert_eq!(messages.len(), 1);
    assert_eq!(grants.len(), 2);
    f.publish("/chats/1", "two");
    f.engine.connection(id, true);
    f.publish("/chats/1", "three");
    let grants = f.reply("messages with grants", |r| match r {
        Reply::Messages {
            client_id, grants, ..
        } if client_id == id => Some(grants.clone()),
        _ => None,
    });
    assert!(grants.contains(&"channel:/chats/1".to_string()));

    // A client without grants: its messages come with none.
    let other = "dave0000000000000000000000000001";
    f.create(other);
    f.subscribe(other, "/chats/1");
    f.engine.connection(other, true);
    f.publish("/chats/1", "four");
    let grants = f.reply("messages without grants", |r| match r {
        Reply::Messages {
            client_id, grants, ..
        } if client_id == other => Some(grants.clone()),
        _ => None,
    });
    assert!(grants.is_empty());
}

#[test]
fn destroy_removes_everything_and_tells_every_process() {
    let Some(mut f) = Fixture::new("destroy", 60_000, 60_000) else {
        return;
    };
    f.create("bob00000000000000000000000000001");
    f.subscribe("bob00000000000000000000000000001", "/a");
    f.subscribe("bob00000000000000000000000000001", "/b/**");
    assert!(f.engine.submit(Op::Grant {
        client_id: "bob00000000000000000000000000001".into(),
        grants: vec!["channel:/a".into()],
    }));
    f.publish("/a", "x");
    assert!(f.engine.submit(Op::DestroyClient {
        ticket: 4,
        client_id: "bob00000000000000000000000000001".into()
    }));
    let (existed, mut channels) = f.reply("destroyed", |r| match r {
        Reply::Destroyed {
            existed, channels, ..
        } => Some((*existed, channels.clone())),
        _ => None,
    });
    channels.sort();
    assert!(existed);
    assert_eq!(channels, vec!["/a", "/b/**"]);
    f.reply("closed", |r| match r {
        Reply::Closed { client_id } if client_id == "bob00000000000000000000000000001" => Some(()),
        _ => None,
    });
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", f.ns))
        .query(f.redis())
        .unwrap();
    assert!(keys.is_empty(), "left behind: {keys:?}");
    assert!(!f.exists("bob00000000000000000000000000001"));
}

#[test]
fn the_collector_destroys_clients_past_twice_the_timeout_under_the_lock() {
    let Some(mut f) = Fixture::new("gc", 1_000, 200) else {
        return;
    };
    f.create("live0000000000000000000000000001");
    f.subscribe("live0000000000000000000000000001", "/x");
    let old = clock::now_ms() - 5_000;
    let _: () = redis::cmd("ZADD")
        .arg(f.key("/clients"))
        .arg(old)
        .arg("dead0000000000000000000000000001")
        .query(f.redis())
        .unwrap();
    let _: () = redis::cmd("SADD")
        .arg(f.key("/channels/x"))
        .arg("dead0000000000000000000000000001")
        .query(f.redis())
        .unwrap();
    let _: () = redis::cmd("SADD")
        .arg(f.key("/clients/dead0000000000000000000000000001/channels"))
        .arg("/x")
        .query(f.redis())
        .unwrap();
    let (ticket, channels) = f.reply("collected", |r| match r {
        Reply::Destroyed {
            ticket,
            client_id,
            channels,
            ..
        } if client_id == "dead0000000000000000000000000001" => Some((*ticket, channels.clone())),
        _ => None,
    });
    assert_eq!((ticket, channels), (0, vec!["/x".to_string()]));
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg(f.key("/channels/x"))
        .query(f.redis())
        .unwrap();
    assert_eq!(
        members,
        vec!["live0000000000000000000000000001".to_string()]
    );
    // The lock is released after each run (held only while one runs).
    let key = f.key("/locks/gc");
    wait_until("the lock to be released", Duration::from_secs(5), || {
        redis::cmd("GET")
            .arg(&key)
            .query::<Option<String>>(f.redis())
            .unwrap()
            .is_none()
    });
}

#[test]
fn a_held_lock_keeps_the_collector_out_until_it_expires() {
    let Some(mut f) = Fixture::new("lock", 1_000, 100) else {
        return;
    };
    let far = clock::now_ms() + 60_000;
    let _: () = redis::cmd("SET")
        .arg(f.key("/locks/gc"))
        .arg(far)
        .query(f.redis())
        .unwrap();
    let _: () = redis::cmd("ZADD")
        .arg(f.key("/clients"))
        .arg(1)
        .arg("dead0000000000000000000000000002")
        .query(f.redis())
        .unwrap();
    // Several collector periods pass (every 100 ms): the client stays,
    // checked all along.
    let clients = f.key("/clients");
    let until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < until {
        let score: Option<i64> = redis::cmd("ZSCORE")
            .arg(&clients)
            .arg("dead0000000000000000000000000002")
            .query(f.redis())
            .unwrap();
        assert_eq!(
            score,
            Some(1),
            "collected while another process held the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // An expired lock is taken over.
    let _: () = redis::cmd("SET")
        .arg(f.key("/locks/gc"))
        .arg(clock::now_ms() - 1)
        .query(f.redis())
        .unwrap();
    f.reply("collected after the lock expired", |r| match r {
        Reply::Destroyed { client_id, .. } if client_id == "dead0000000000000000000000000002" => {
            Some(())
        }
        _ => None,
    });
}

#[test]
fn without_redis_a_waiting_caller_is_failed_at_once_and_the_engine_says_it_is_down() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let Some(mut f) = Fixture::on(
        format!("redis://127.0.0.1:{port}/0"),
        "down",
        60_000,
        60_000,
    ) else {
        return;
    };
    assert!(f.engine.submit(Op::Ping {
        client_id: "x".into()
    }));
    let started = Instant::now();
    assert!(f.engine.submit(Op::ClientExists {
        ticket: 7,
        client_id: "x".into(),
        take: false,
    }));
    let ticket = f.reply("a failure", |r| match r {
        Reply::Failed { ticket, .. } => Some(*ticket),
        _ => None,
    });
    assert_eq!(ticket, 7);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(f.engine.is_down());
}

#[test]
fn only_the_last_take_of_a_client_in_a_batch_is_sent() {
    let take = |id: &str| Op::EmptyQueue {
        client_id: id.into(),
    };
    let publish = Op::Publish {
        ticket: 0,
        message: "{}".into(),
        channels: vec!["/a".into()],
    };
    let mut batch = vec![
        take("a"),
        take("b"),
        publish.clone(),
        take("a"),
        take("a"),
        take("c"),
        take("b"),
    ];
    coalesce_takes(&mut batch);
    assert_eq!(batch, vec![publish, take("a"), take("c"), take("b")]);
    let mut alone = vec![take("a")];
    coalesce_takes(&mut alone);
    assert_eq!(alone, vec![take("a")]);
}

/// A publication with a ticket is answered once it is in Redis: by then
/// it waits in every subscriber's queue, so a publisher told so can rely
/// on it preceding whatever it publishes next, through any process.
#[test]
fn a_ticketed_publication_is_answered_once_it_is_in_redis() {
    let Some(mut f) = Fixture::new("published", 60_000, 60_000) else {
        return;
    };
    let (bob, ann) = (
        "bob00000000000000000000000001",
        "ann00000000000000000000000001",
    );
    f.create(bob);
    assert!(f.subscribe(bob, "/chat/1"));
    let message =
        serde_json::json!({"channel": "/chat/1", "data": "hi", "clientId": ann, "id": "7"});
    assert!(f.engine.submit(Op::Publish {
        ticket: 41,
        message: message.to_string(),
        channels: crate::channel::expand("/chat/1"),
    }));
    let ticket = f.reply("published", |r| match r {
        Reply::Published { ticket } => Some(*ticket),
        _ => None,
    });
    assert_eq!(ticket, 41);
    let queue = f.key(&format!("/clients/{bob}/messages"));
    let queued: Vec<String> = redis::cmd("LRANGE")
        .arg(&queue)
        .arg(0)
        .arg(-1)
        .query(f.redis())
        .unwrap();
    assert_eq!(queued.len(), 1, "in Redis when answered: {queued:?}");
    // Without a ticket, nothing is answered.
    f.publish("/chat/1", "again");
    assert!(f.engine.submit(Op::Publish {
        ticket: 42,
        message: message.to_string(),
        channels: crate::channel::expand("/chat/1"),
    }));
    let next = f.reply("published", |r| match r {
        Reply::Published { ticket } => Some(*ticket),
        _ => None,
    });
    assert_eq!(next, 42, "the untracked one made no reply");
}
