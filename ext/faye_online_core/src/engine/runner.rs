//! The engine thread: ops in, one pipeline per batch, replies out; and the
//! collector, under the cluster's lock.

use super::*;

/// The engine thread: ops in, one pipeline per batch, replies out.
pub(super) struct Runner {
    pub(super) client: Client,
    pub(super) conn: Option<Connection>,
    pub(super) ns: String,
    pub(super) timeout_ms: i64,
    pub(super) gc_ms: i64,
    pub(super) outbox: Arc<Outbox>,
    pub(super) queued: Arc<AtomicUsize>,
    pub(super) down: Arc<AtomicBool>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) scripts: Scripts,
    pub(super) failing_since: Option<Instant>,
    pub(super) last_attempt: Option<Instant>,
    /// Ops with no caller waiting, kept while Redis is away.
    pub(super) held: Vec<Op>,
    /// Ops dropped while Redis was away (past [`MAX_HELD_OPS`]).
    pub(super) dropped: u64,
}

impl Runner {
    pub(super) fn run(mut self, rx: Receiver<Op>) {
        let gc_every = Duration::from_millis(self.gc_ms as u64);
        let mut next_gc = Instant::now() + gc_every;
        let mut batch = Vec::new();
        while !self.stop.load(Ordering::SeqCst) {
            let wait = next_gc
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200));
            match rx.recv_timeout(wait) {
                Ok(op) => batch.push(op),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            let n = batch.len();
            if n > 0 || !self.held.is_empty() {
                if self.failing_since.is_some() && !self.reconnect() {
                    self.shed(std::mem::take(&mut batch));
                } else {
                    let mut all = std::mem::take(&mut self.held);
                    all.append(&mut batch);
                    self.run_batch(all);
                }
                self.queued.fetch_sub(n, Ordering::SeqCst);
            }
            if Instant::now() >= next_gc && self.failing_since.is_none() {
                next_gc = Instant::now() + gc_every;
                if let Err(e) = self.gc() {
                    self.failed(&e);
                }
            }
        }
    }

    fn ns_key(&self, rest: &str) -> String {
        format!("{}{rest}", self.ns)
    }

    fn cutoff(&self, factor: f64) -> i64 {
        clock::now_ms() - (factor * self.timeout_ms as f64) as i64
    }

    /// A live connection with the scripts loaded.
    fn conn(&mut self) -> redis::RedisResult<&mut Connection> {
        if self.conn.is_none() {
            let mut conn = self
                .client
                .get_connection_with_timeout(Duration::from_secs(2))?;
            conn.set_read_timeout(Some(Duration::from_secs(10)))?;
            conn.set_write_timeout(Some(Duration::from_secs(10)))?;
            for script in self.scripts.all() {
                script.prepare_invoke().load(&mut conn)?;
            }
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connection just set"))
    }

    /// Sends the batch to Redis. If Redis is away, every op whose caller
    /// waits is answered with a failure at once, and the others are held
    /// until Redis is back (the gate refuses new work meanwhile).
    fn run_batch(&mut self, mut batch: Vec<Op>) {
        coalesce_takes(&mut batch);
        let mut reloaded = false;
        loop {
            match self.try_batch(&batch) {
                Ok(values) => {
                    self.recovered();
                    for (op, value) in batch.into_iter().zip(values) {
                        self.reply(op, value);
                    }
                    return;
                }
                Err(e) if is_connection_error(&e) => {
                    self.failed(&e.into());
                    self.shed(batch);
                    return;
                }
                Err(e) if e.kind() == redis::ErrorKind::NoScriptError && !reloaded => {
                    // Scripts flushed by an operator: load them again.
                    reloaded = true;
                    self.conn = None;
                }
                Err(e) => {
                    self.conn = None;
                    let error = StoreError::from(e);
                    self.outbox.log(
                        LogLevel::Error,
                        format!("Redis refused {} engine operations: {error}", batch.len()),
                    );
                    for op in batch {
                        if let Some(ticket) = ticket_of(&op) {
                            self.outbox.push(Notification::Engine(Reply::Failed {
                                ticket,
                                error: error.to_string(),
                            }));
                        }
                    }
                    return;
                }
            }
        }
    }

    /// One pipeline for the whole batch; one reply per op (an op of
    /// several commands answers with an array of their replies).
    fn try_batch(&mut self, batch: &[Op]) -> redis::RedisResult<Vec<Value>> {
        let now = clock::now_ms();
        let exists_cutoff = self.cutoff(1.6);
        let clients = self.ns_key("/clients");
        let ns = self.ns.clone();
        let mut pipe = redis::pipe();
        let mut shapes = Vec::with_capacity(batch.len());
        for op in batch {
            match op {
                Op::CreateClient { client_id, .. } => {
                    pipe.cmd("ZADD")
                        .arg(&clients)
                        .arg("NX")
                        .arg(now)
                        .arg(client_id);
                    shapes.push(1);
                }
                Op::ClientExists {
                    client_id, take, ..
                } => {
                    if *take {
                        pipe.cmd("EVALSHA")
                            .arg(self.scripts.connect.get_hash())
                            .arg(0)
                            .arg(&ns)
                            .arg(client_id)
                            .arg(exists_cutoff)
                            .arg(now)
                            .arg(GRANTS_TTL_MS);
                    } else {
                        pipe.cmd("ZSCORE").arg(&clients).arg(client_id);
                    }
                    shapes.push(1);
                }
                Op::DestroyClient { client_id, .. } => {
                    pipe.cmd("EVALSHA")
                        .arg(self.scripts.destroy.get_hash())
                        .arg(0)
                        .arg(&ns)
                        .arg(client_id);
                    shapes.push(1);
                }
                Op::Ping { client_id } => {
                    pipe.cmd("ZADD")
                        .arg(&clients)
                        .arg("XX")
                        .arg(now)
                        .arg(client_id);
                    shapes.push(1);
                }
                Op::Subscribe {
                    client_id, channel, ..
                } => {
                    pipe.cmd("SADD")
                        .arg(format!("{ns}/clients/{client_id}/channels"))
                        .arg(channel);
                    pipe.cmd("SADD")
                        .arg(format!("{ns}/channels{channel}"))
                        .arg(client_id);
                    shapes.push(2);
                }
                Op::Unsubscribe {
                    client_id, channel, ..
                } => {
                    pipe.cmd("SREM")
                        .arg(format!("{ns}/clients/{client_id}/channels"))
                        .arg(channel);
                    pipe.cmd("SREM")
                        .arg(format!("{ns}/channels{channel}"))
                        .arg(client_id);
                    shapes.push(2);
                }
                Op::Publish {
                    message, channels, ..
                } => {
                    pipe.cmd("EVALSHA")
                        .arg(self.scripts.publish.get_hash())
                        .arg(0)
                        .arg(&ns)
                        .arg(message)
                        .arg(exists_cutoff)
                        .arg(channels);
                    shapes.push(1);
                }
                Op::EmptyQueue { client_id } => {
                    pipe.cmd("EVALSHA")
                        .arg(self.scripts.take.get_hash())
                        .arg(0)
                        .arg(&ns)
                        .arg(client_id);
                    shapes.push(1);
                }
                Op::Grant { client_id, grants } => {
                    let key = format!("{ns}/clients/{client_id}/grants");
                    pipe.cmd("SADD").arg(&key).arg(grants);
                    pipe.cmd("PEXPIRE").arg(&key).arg(GRANTS_TTL_MS);
                    shapes.push(2);
                }
                Op::Grants { client_id, .. } => {
                    pipe.cmd("SMEMBERS")
                        .arg(format!("{ns}/clients/{client_id}/grants"));
                    shapes.push(1);
                }
                Op::Enqueue {
                    client_id,
                    messages,
                    front,
                } => {
                    pipe.cmd("EVALSHA")
                        .arg(self.scripts.enqueue.get_hash())
                        .arg(0)
                        .arg(&ns)
                        .arg(client_id)
                        .arg(exists_cutoff)
                        .arg(if *front { "front" } else { "back" })
                        .arg(messages);
                    shapes.push(1);
                }
            }
        }
        let values: Vec<Value> = pipe.query(self.conn()?)?;
        let mut values = values.into_iter();
        Ok(shapes
            .into_iter()
            .map(|n| {
                if n == 1 {
                    values.next().unwrap_or(Value::Nil)
                } else {
                    Value::Array(values.by_ref().take(n).collect())
                }
            })
            .collect())
    }

    fn reply(&self, op: Op, value: Value) {
        let reply = match op {
            Op::CreateClient { ticket, client_id } => Reply::Created {
                ticket,
                client_id,
                added: int(&value) == 1,
            },
            Op::ClientExists {
                ticket,
                client_id,
                take,
            } => {
                let (exists, (messages, grants)) = match value {
                    Value::Array(items) if take && items.len() == 3 => {
                        let mut items = items.into_iter();
                        let exists = items.next().is_some_and(|v| int(&v) == 1);
                        (exists, taken(Value::Array(items.collect())))
                    }
                    other => (
                        !take && score(&other).is_some_and(|s| s > self.cutoff(1.6)),
                        Default::default(),
                    ),
                };
                Reply::Exists {
                    ticket,
                    client_id,
                    exists,
                    messages,
                    grants,
                }
            }
            Op::DestroyClient { ticket, client_id } => {
                let (existed, channels, last_ping) = destroyed(value);
                Reply::Destroyed {
                    ticket,
                    client_id,
                    existed,
                    channels,
                    last_ping,
                }
            }
            Op::Subscribe {
                ticket,
                client_id,
                channel,
            } => Reply::Subscribed {
                ticket,
                client_id,
                channel,
                added: first_int(&value) == 1,
            },
            Op::Unsubscribe {
                ticket,
                client_id,
                channel,
            } => Reply::Unsubscribed {
                ticket,
                client_id,
                channel,
                removed: first_int(&value) == 1,
            },
            Op::EmptyQueue { client_id } => {
                let (messages, grants) = taken(value);
                if messages.is_empty() {
                    return;
                }
                Reply::Messages {
                    client_id,
                    messages,
                    grants,
                }
            }
            Op::Grants { ticket, client_id } => Reply::Grants {
                ticket,
                client_id,
                grants: strings(value),
            },
            Op::Publish { ticket, .. } if ticket != 0 => Reply::Published { ticket },
            Op::Ping { .. } | Op::Publish { .. } | Op::Enqueue { .. } | Op::Grant { .. } => return,
        };
        self.outbox.push(Notification::Engine(reply));
    }

    /// Destroys, under the cluster's lock, every client not seen for twice
    /// the timeout; each is answered as [`Reply::Destroyed`] with ticket 0.
    fn gc(&mut self) -> Result<(), StoreError> {
        let now = clock::now_ms();
        let expiry = now + LOCK_TIMEOUT_MS + 1;
        let cutoff = self.cutoff(2.0);
        let clients_key = self.ns_key("/clients");
        let ns = self.ns.clone();
        let hash = self.scripts.gc_lock.get_hash().to_owned();
        let conn = self.conn()?;
        let taken: i64 = redis::cmd("EVALSHA")
            .arg(&hash)
            .arg(0)
            .arg(&ns)
            .arg(now)
            .arg(expiry)
            .query(conn)?;
        if taken != 1 {
            return Ok(());
        }
        let dead: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&clients_key)
            .arg(0)
            .arg(cutoff)
            .arg("LIMIT")
            .arg(0)
            .arg(10_000)
            .query(conn)?;
        let batch: Vec<Op> = dead
            .into_iter()
            .map(|client_id| Op::DestroyClient {
                ticket: 0,
                client_id,
            })
            .collect();
        if !batch.is_empty() {
            self.run_batch(batch);
        }
        if clock::now_ms() < expiry {
            let conn = self.conn()?;
            let _: () = redis::cmd("DEL")
                .arg(format!("{ns}/locks/gc"))
                .query(conn)?;
        }
        Ok(())
    }

    /// While Redis is away: fails the ops whose callers wait, holds the rest.
    fn shed(&mut self, batch: Vec<Op>) {
        for op in batch {
            if let Some(ticket) = ticket_of(&op) {
                self.outbox.push(Notification::Engine(Reply::Failed {
                    ticket,
                    error: "Redis is unavailable".into(),
                }));
            } else if self.held.len() < MAX_HELD_OPS {
                self.held.push(op);
            } else {
                self.dropped += 1;
                if self.dropped % 10_000 == 1 {
                    self.outbox.log(
                        LogLevel::Error,
                        format!(
                            "Redis is away: dropped {} engine operations so far (publications and pings)",
                            self.dropped
                        ),
                    );
                }
            }
        }
    }

    /// Tries Redis again, at most every [`RECONNECT_EVERY`]; true if back.
    fn reconnect(&mut self) -> bool {
        if self
            .last_attempt
            .is_some_and(|at| at.elapsed() < RECONNECT_EVERY)
        {
            return false;
        }
        self.last_attempt = Some(Instant::now());
        let ok = self
            .conn()
            .and_then(|c| redis::cmd("PING").query::<String>(c))
            .is_ok();
        if ok {
            self.recovered();
        } else {
            self.conn = None;
        }
        ok
    }

    fn failed(&mut self, e: &StoreError) {
        self.conn = None;
        if self.failing_since.is_none() {
            self.failing_since = Some(Instant::now());
            self.down.store(true, Ordering::SeqCst);
            self.outbox.log(
                LogLevel::Warn,
                format!("Faye's engine lost Redis, refusing new work until it is back: {e}"),
            );
        }
    }

    fn recovered(&mut self) {
        if let Some(since) = self.failing_since.take() {
            self.down.store(false, Ordering::SeqCst);
            self.outbox.log(
                LogLevel::Info,
                format!(
                    "Faye's engine has Redis again after {:.1} s",
                    since.elapsed().as_secs_f64()
                ),
            );
        }
    }
}
