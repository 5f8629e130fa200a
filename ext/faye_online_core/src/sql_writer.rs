//! The SQL writer: applies durable records on a thread of its own, in
//! batches, retrying until they land, so that presence never waits on SQL.

use crate::durable::DurableStore;
use crate::error::StoreError;
use crate::ledger::{ascii_json, Memberships, Record};
use crate::outbox::{LogLevel, Notification, Outbox, PresenceEvent};
use crate::presence_worker::panic_text;
use crate::retry::retry_until_ok;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the presence worker hands the writer, in order.
enum WriteOp {
    Record(Record),
    /// Told the host once every record before it is written (a session's
    /// time is credited when its row is in SQL).
    Notify(PresenceEvent),
    /// Acknowledged once every record before it is written.
    Barrier(Sender<()>),
    Stop,
}

/// The presence worker's end of the writer's queue, bounded: past
/// `max_pending` records waiting for a database that stays away, new ones
/// are dropped and counted in the log, never silently.
pub(crate) struct WriteQueue {
    tx: Sender<WriteOp>,
    pending: Arc<AtomicUsize>,
    max_pending: usize,
    dropped: AtomicUsize,
}

impl WriteQueue {
    /// Queues `record`; false when it was dropped past the bound.
    pub(crate) fn push(&self, record: Record, outbox: &Outbox) -> bool {
        if self.pending.load(Ordering::SeqCst) >= self.max_pending {
            let dropped = self.dropped.fetch_add(1, Ordering::SeqCst) + 1;
            if dropped == 1 || dropped.is_multiple_of(10_000) {
                outbox.log(
                    LogLevel::Error,
                    format!(
                        "{} records are waiting for the database: dropped {dropped} so far, the latest {record:?}",
                        self.max_pending
                    ),
                );
            }
            return false;
        }
        self.pending.fetch_add(1, Ordering::SeqCst);
        let _ = self.tx.send(WriteOp::Record(record));
        true
    }

    /// `event` reaches the host once the writer has handled every record
    /// pushed before: written, or set aside where an operator sees it
    /// (dropped only at shutdown or by a bug, both logged).
    pub(crate) fn notify_after(&self, event: PresenceEvent) {
        let _ = self.tx.send(WriteOp::Notify(event));
    }

    /// `ack` hears once every record pushed before is written.
    pub(crate) fn barrier(&self, ack: Sender<()>) {
        let _ = self.tx.send(WriteOp::Barrier(ack));
    }

    /// The count of records waiting for SQL.
    pub(crate) fn pending(&self) -> Arc<AtomicUsize> {
        self.pending.clone()
    }

    /// The writer writes what it holds and ends.
    pub(crate) fn stop(&self) {
        let _ = self.tx.send(WriteOp::Stop);
    }
}

/// The writer thread's loop: gathers batches from its queue for its sink.
pub(crate) struct Writer {
    writes: Receiver<WriteOp>,
    sink: Sink,
}

/// Where batches go: SQL, with the retry loop around each.
struct Sink {
    durable: DurableStore,
    /// Who is in a room and whose timer runs now, as room and timer
    /// records write them (see [`DurableStore::apply_batch`]).
    memberships: Arc<dyn Memberships>,
    pending: Arc<AtomicUsize>,
    outbox: Arc<Outbox>,
    stopping: Arc<AtomicBool>,
    /// Whether old tables were checked for a charset that cannot hold
    /// every name (once, after the first write).
    charsets_checked: bool,
    /// How many channel ids the durable store caches, after each batch.
    cached_channel_ids: Arc<AtomicUsize>,
}

/// A writer for `durable`, and the queue that feeds it.
pub(crate) fn writer(
    durable: DurableStore,
    memberships: Arc<dyn Memberships>,
    max_pending: usize,
    outbox: Arc<Outbox>,
    stopping: Arc<AtomicBool>,
) -> (WriteQueue, Writer) {
    let (tx, rx) = mpsc::channel();
    let pending = Arc::new(AtomicUsize::new(0));
    let queue = WriteQueue {
        tx,
        pending: pending.clone(),
        max_pending,
        dropped: AtomicUsize::new(0),
    };
    let writer = Writer {
        writes: rx,
        sink: Sink {
            durable,
            memberships,
            pending,
            outbox,
            stopping,
            charsets_checked: false,
            cached_channel_ids: Arc::new(AtomicUsize::new(0)),
        },
    };
    (queue, writer)
}

/// The most records the writer applies in one transaction.
const MAX_BATCH: usize = 256;

/// How long the writer gathers records into a batch after the first: SQL
/// is a few milliseconds later, and under load each transaction carries
/// many records. Presence never waits on it (it is published from the hot
/// store), and a barrier or a stop writes at once.
const BATCH_WINDOW: Duration = Duration::from_millis(20);

impl Writer {
    /// The count of channel ids its durable store caches.
    pub(crate) fn cached_channel_ids(&self) -> Arc<AtomicUsize> {
        self.sink.cached_channel_ids.clone()
    }

    /// Applies records in batches: what comes within [`BATCH_WINDOW`] of a
    /// batch's first record, up to [`MAX_BATCH`]. Under load one
    /// transaction for many records spares the database most of its work.
    pub(crate) fn run(self) {
        let Writer { writes, mut sink } = self;
        sink.check_charsets(false);
        let mut batch = Batch::default();
        let mut window = Instant::now();
        while let Ok(first) = writes.recv() {
            let mut next = Some(first);
            while let Some(w) = next.take() {
                match w {
                    WriteOp::Record(record) => {
                        if batch.records.is_empty() {
                            window = Instant::now() + BATCH_WINDOW;
                        }
                        batch.records.push(record);
                        if batch.records.len() < MAX_BATCH {
                            let wait = window.saturating_duration_since(Instant::now());
                            next = writes.recv_timeout(wait).ok();
                        }
                    }
                    WriteOp::Notify(event) if batch.records.is_empty() => {
                        sink.outbox.push(Notification::Event(event));
                        next = writes.try_recv().ok();
                    }
                    WriteOp::Notify(event) => {
                        batch.events.push(event);
                        let wait = window.saturating_duration_since(Instant::now());
                        next = writes.recv_timeout(wait).ok();
                    }
                    WriteOp::Barrier(ack) => {
                        sink.write_all(&mut batch);
                        let _ = ack.send(());
                        next = writes.try_recv().ok();
                    }
                    WriteOp::Stop => {
                        sink.write_all(&mut batch);
                        return;
                    }
                }
            }
            sink.write_all(&mut batch);
        }
    }
}

/// The records of one transaction, and the events told once they are in.
#[derive(Default)]
struct Batch {
    records: Vec<Record>,
    events: Vec<PresenceEvent>,
}

impl Sink {
    /// Checks the tables for a charset that cannot hold every name, and
    /// says what to do, once. At start (`after_write` false) the database
    /// may be away: the first write logs that, and the check comes again
    /// after it.
    fn check_charsets(&mut self, after_write: bool) {
        match self.durable.charset_warnings() {
            Ok(warnings) => {
                self.charsets_checked = true;
                for w in warnings {
                    self.outbox.log(LogLevel::Warn, w);
                }
            }
            Err(e) if after_write => {
                self.charsets_checked = true;
                self.outbox.log(
                    LogLevel::Warn,
                    format!("could not check the tables' charsets: {e}"),
                );
            }
            Err(_) => {}
        }
    }

    /// Writes the batch's records, then tells its events.
    fn write_all(&mut self, batch: &mut Batch) {
        self.write(&mut batch.records);
        for event in batch.events.drain(..) {
            self.outbox.push(Notification::Event(event));
        }
    }

    /// Writes `batch` (see [`Sink::apply`]) and empties it. A bug that
    /// panics on the way is logged with every record it left unwritten,
    /// the connection is dropped (it may be inside a transaction), and the
    /// writer goes on: writes never stop silently.
    fn write(&mut self, batch: &mut Vec<Record>) {
        let count = batch.len();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.apply(batch))) {
            self.durable.reset();
            let why = panic_text(panic.as_ref());
            for record in batch.iter() {
                self.outbox.log(
                    LogLevel::Error,
                    format!(
                        "the SQL writer hit a bug ({why}) and did not write {}",
                        ascii_json(record)
                    ),
                );
            }
        }
        self.pending.fetch_sub(count, Ordering::SeqCst);
        self.cached_channel_ids
            .store(self.durable.cached_channel_ids(), Ordering::SeqCst);
        batch.clear();
    }

    /// Writes `batch`, retrying while the database is away. A record the
    /// database refuses for good (see [`StoreError::is_permanent`]) is
    /// isolated: the others are written without it, and it is set aside
    /// where an operator sees it and can replay it. Nothing else waits on
    /// it.
    fn apply(&mut self, batch: &mut Vec<Record>) {
        if batch.is_empty() {
            return;
        }
        let what = format!("write to {}", self.durable.url_for_logs());
        let durable = &mut self.durable;
        let memberships = self.memberships.as_ref();
        let outbox = self.outbox.as_ref();
        let written = retry_until_ok(outbox, &self.stopping, &what, || {
            match durable.apply_batch(batch, Some(memberships)) {
                Ok(()) => {
                    batch.clear();
                    Ok(())
                }
                Err(e) if e.is_permanent() => isolate(durable, memberships, outbox, batch),
                Err(e) => Err(e),
            }
        });
        if written.is_none() {
            for record in batch.iter() {
                self.outbox
                    .log(LogLevel::Error, format!("dropped {record:?} at shutdown"));
            }
        } else if !self.charsets_checked {
            self.check_charsets(true);
        }
    }
}

/// Writes `batch` one record at a time, in order, taking each out of it as
/// it lands or is set aside; a failure that may pass returns with the rest
/// still in `batch`, for the retry loop.
fn isolate(
    durable: &mut DurableStore,
    memberships: &dyn Memberships,
    outbox: &Outbox,
    batch: &mut Vec<Record>,
) -> Result<(), StoreError> {
    while let Some(record) = batch.first() {
        match durable.apply_batch(std::slice::from_ref(record), Some(memberships)) {
            Ok(()) => {}
            Err(e) if e.is_permanent() => set_aside(durable, outbox, record, &e),
            Err(e) => return Err(e),
        }
        batch.remove(0);
    }
    Ok(())
}

/// Keeps a record the database refused for good in
/// `faye_online_failed_records`, or, if even that fails, in the log.
fn set_aside(durable: &mut DurableStore, outbox: &Outbox, record: &Record, error: &StoreError) {
    match durable.set_aside(record, error) {
        Ok(()) => outbox.log(
            LogLevel::Error,
            format!(
                "set aside a record the database refuses ({error}): {}; \
                 see faye_online_failed_records, fix the cause, then rake faye_online:replay",
                ascii_json(record)
            ),
        ),
        Err(e) => outbox.log(
            LogLevel::Error,
            format!(
                "the database refuses a record ({error}) and it could not be set aside ({e}): {}",
                ascii_json(record)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{log_lines, TempSqlite};

    /// Memberships with a bug: they panic for uid 666.
    struct Buggy;

    impl Memberships for Buggy {
        fn in_room(&self, _room: &str, uid: u64) -> Result<bool, StoreError> {
            assert_ne!(uid, 666, "a bug in the memberships");
            Ok(true)
        }
        fn timer_started_at(&self, _uid: u64, _time: &str) -> Result<Option<i64>, StoreError> {
            Ok(None)
        }
    }

    #[test]
    fn a_bug_in_one_batch_is_logged_and_the_writer_goes_on() {
        let db = TempSqlite::new("writer_panic");
        let (outbox, _wake) = Outbox::new().unwrap();
        let outbox = Arc::new(outbox);
        let (queue, writer) = writer(
            DurableStore::new(&db.url),
            Arc::new(Buggy),
            1000,
            outbox.clone(),
            Arc::new(AtomicBool::new(false)),
        );
        let writer = std::thread::spawn(move || writer.run());
        let join = |uid: u64| Record::RoomJoin {
            room: "/classes/4".into(),
            uid,
            uname: format!("u{uid}"),
        };
        let flush = || {
            let (ack, acked) = mpsc::channel();
            queue.barrier(ack);
            acked.recv_timeout(Duration::from_secs(5)).unwrap();
        };
        queue.push(join(666), &outbox);
        flush();
        queue.push(join(7), &outbox);
        flush();
        let mut durable = DurableStore::new(&db.url);
        assert_eq!(durable.online_uids("/classes/4").unwrap(), vec![7]);
        let logs: Vec<String> = log_lines(outbox.drain());
        assert!(
            logs.iter().any(|l| l.contains("SQL writer hit a bug")
                && l.contains("a bug in the memberships")
                && l.contains(r#""uid":666"#)),
            "{logs:?}"
        );
        assert_eq!(queue.pending.load(Ordering::SeqCst), 0);
        queue.stop();
        writer.join().unwrap();
    }
}
