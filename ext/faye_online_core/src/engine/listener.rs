//! The notification thread.

use super::*;

/// The notification thread: a client connected here that got mail has its
/// queue taken; a destroyed client's connection is closed.
pub(super) struct Listener {
    pub(super) client: Client,
    pub(super) ns: String,
    pub(super) ops: Sender<Op>,
    pub(super) queued: Arc<AtomicUsize>,
    pub(super) connected: Arc<Mutex<HashSet<String>>>,
    pub(super) outbox: Arc<Outbox>,
    pub(super) stop: Arc<AtomicBool>,
}

impl Listener {
    pub(super) fn run(self) {
        let messages = format!("{}/notifications/messages", self.ns);
        let close = format!("{}/notifications/close", self.ns);
        let mut failing = false;
        while !self.stop.load(Ordering::SeqCst) {
            let result = (|| -> redis::RedisResult<()> {
                let mut conn = self
                    .client
                    .get_connection_with_timeout(Duration::from_secs(2))?;
                conn.set_read_timeout(Some(Duration::from_millis(500)))?;
                let mut pubsub = conn.as_pubsub();
                pubsub.subscribe(&messages)?;
                pubsub.subscribe(&close)?;
                // Mail that came while this thread was away is taken now.
                let open: Vec<String> = self.connected.lock().iter().cloned().collect();
                for client_id in open {
                    self.take(client_id);
                }
                failing = false;
                while !self.stop.load(Ordering::SeqCst) {
                    let msg = match pubsub.get_message() {
                        Ok(msg) => msg,
                        Err(e) if e.is_timeout() => continue,
                        Err(e) => return Err(e),
                    };
                    let Ok(client_id) = msg.get_payload::<String>() else {
                        continue;
                    };
                    if msg.get_channel_name() == messages {
                        if self.connected.lock().contains(&client_id) {
                            self.take(client_id);
                        }
                    } else {
                        self.outbox
                            .push(Notification::Engine(Reply::Closed { client_id }));
                    }
                }
                Ok(())
            })();
            if let Err(e) = result {
                if !failing {
                    failing = true;
                    self.outbox.log(
                        LogLevel::Warn,
                        format!("lost Faye's engine notifications, reconnecting: {e}"),
                    );
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }

    fn take(&self, client_id: String) {
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.ops.send(Op::EmptyQueue { client_id }).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
