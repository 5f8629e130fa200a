//! The read API for the app: who is online where, how long a user spent
//! in a lesson, the login log and the live status. It reads the hot store
//! when there is one, and SQL otherwise.

use crate::auth::User;
use crate::channel;
use crate::clock;
use crate::config::Config;
use crate::durable::{DurableStore, Scheduled, MAX_OPEN_SESSIONS};
use crate::error::StoreError;
use crate::ledger::{self, Session};
use crate::presence::{user_state, HotStore, PageState};
use crate::redis_store::RedisStore;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The users online in a lesson: name, and state over their tabs.
type OnlineUsers = BTreeMap<u64, (String, Option<PageState>)>;

/// Per lesson, the intervals still running and the users online.
type Running = BTreeMap<String, (Vec<ledger::Interval>, OnlineUsers)>;

/// How far back the status without a hot store looks for open sessions.
const OPEN_SESSIONS_WINDOW_MS: i64 = 7 * 86_400_000;

/// Read access for the app: who is online, how long a user spent.
pub struct Query {
    hot: Option<Arc<dyn HotStore>>,
    durable: Mutex<DurableStore>,
}

impl Query {
    /// A query handle for a process that runs no server (a Rails app): it
    /// reads Redis when there is one, else the durable store.
    pub fn new(config: &Config) -> Result<Query, StoreError> {
        let hot: Option<Arc<dyn HotStore>> = match &config.redis_url {
            Some(url) => Some(Arc::new(RedisStore::new(url, &config.namespace)?)),
            None => None,
        };
        Ok(Query {
            hot,
            durable: Mutex::new(DurableStore::new(&config.database_url)),
        })
    }

    /// A query handle for a server's tracker, reading its hot store.
    pub(crate) fn with_hot(hot: Arc<dyn HotStore>, database_url: &str) -> Query {
        Query {
            hot: Some(hot),
            durable: Mutex::new(DurableStore::new(database_url)),
        }
    }

    /// The records the database refused for good, set aside (see
    /// [`DurableStore::set_aside`]).
    pub fn failed_records(&self) -> Result<Vec<crate::durable::FailedRecord>, StoreError> {
        self.durable.lock().failed_records()
    }

    /// Writes the records set aside again: (written, still failing).
    pub fn replay_failed(&self) -> Result<(usize, usize), StoreError> {
        self.durable.lock().replay_failed()
    }

    /// Every room's online list as SQL records it (not the hot store).
    pub fn recorded_online_lists(&self) -> Result<Vec<(String, Vec<User>)>, StoreError> {
        self.durable.lock().online_lists()
    }

    /// The users online in `room`, sorted by uid: from the hot store, or
    /// else from the durable list and the names recorded beside it.
    pub fn online_users(&self, room: &str) -> Result<Vec<User>, StoreError> {
        if channel::check(room).is_err() {
            return Ok(Vec::new());
        }
        match &self.hot {
            Some(hot) => hot.room_users(room),
            None => {
                let mut durable = self.durable.lock();
                let uids = durable.online_uids(room)?;
                uids.into_iter()
                    .map(|uid| {
                        Ok(User {
                            uid,
                            uname: durable.user_name(uid)?,
                        })
                    })
                    .collect()
            }
        }
    }

    /// Seconds `uid` spent in `time`, including a running session.
    pub fn online_time(&self, uid: u64, time: &str) -> Result<i64, StoreError> {
        if channel::check(time).is_err() {
            return Ok(0);
        }
        let now = clock::now_ms();
        let times = self.durable.lock().online_times(uid)?;
        // The hot store knows a running session to the millisecond, even
        // before its start has reached SQL.
        let running = match &self.hot {
            Some(hot) => hot
                .timer_started_at(uid, time)?
                .map(|started| clock::elapsed_secs(started, now)),
            None => ledger::running_secs(&times, time, now),
        };
        Ok(ledger::spent_secs(&times, time) + running.unwrap_or(0))
    }
}

impl Query {
    /// The interval ledger's rows of `lesson` (one user's, or everyone's).
    pub fn intervals(
        &self,
        lesson: &str,
        uid: Option<u64>,
    ) -> Result<Vec<ledger::Interval>, StoreError> {
        if channel::check(lesson).is_err() {
            return Ok(Vec::new());
        }
        self.durable.lock().intervals(lesson, uid)
    }

    /// A user's attended and engaged time in `lesson`, to the
    /// millisecond: the ledger's intervals and, from the hot store, those
    /// still running.
    /// Clipped to `window` (ms, start and end) when given.
    pub fn lesson_time(
        &self,
        uid: u64,
        lesson: &str,
        window: Option<(i64, i64)>,
    ) -> Result<ledger::LessonTime, StoreError> {
        let now = clock::now_ms();
        let mut intervals = self.intervals(lesson, Some(uid))?;
        let mut running = self.running_intervals(&[lesson.to_owned()], Some(uid), now)?;
        if let Some((live, _)) = running.remove(lesson) {
            intervals.extend(live);
        }
        Ok(ledger::LessonTime::of(&intervals, window))
    }

    /// The intervals of `lessons` still running (ended at `now`,
    /// `ended_by` "running"), from the hot store, and each such user's
    /// name and state over their tabs, per lesson (one read of the
    /// store's clients for them all).
    fn running_intervals(
        &self,
        lessons: &[String],
        uid: Option<u64>,
        now: i64,
    ) -> Result<Running, StoreError> {
        let mut running = Running::new();
        let Some(hot) = &self.hot else {
            // No hot store here (an app beside a server on process
            // memory): the clientIds with a login row and no logout row
            // are still there, as far as SQL knows; their page states only
            // the server's process knows.
            let since = now - OPEN_SESSIONS_WINDOW_MS;
            for s in self
                .durable
                .lock()
                .open_sessions(since, MAX_OPEN_SESSIONS)?
            {
                if !lessons.contains(&s.lesson) || uid.is_some_and(|u| u != s.uid) {
                    continue;
                }
                let (out, users) = running.entry(s.lesson.clone()).or_default();
                out.push(ledger::Interval {
                    uid: s.uid,
                    lesson: s.lesson.clone(),
                    client_id: s.client_id,
                    measure: ledger::IntervalKind::Attended,
                    started_ms: s.joined_ms,
                    ended_ms: now.max(s.joined_ms),
                    ended_by: "running".into(),
                });
                users.entry(s.uid).or_insert((s.uname, None));
            }
            return Ok(running);
        };
        let clients: Vec<_> = hot
            .clients()?
            .into_iter()
            .filter(|c| lessons.contains(&c.auth.time) && uid.is_none_or(|u| u == c.auth.user.uid))
            .collect();
        let ids: Vec<String> = clients.iter().map(|c| c.client_id.clone()).collect();
        let pages = hot.pages(&ids)?;
        for (c, page) in clients.into_iter().zip(pages) {
            let (out, users) = running.entry(c.auth.time.clone()).or_default();
            let live = |measure, started_ms: i64| ledger::Interval {
                uid: c.auth.user.uid,
                lesson: c.auth.time.clone(),
                client_id: c.client_id.clone(),
                measure,
                started_ms,
                ended_ms: now.max(started_ms),
                ended_by: "running".into(),
            };
            out.push(live(ledger::IntervalKind::Attended, c.joined_ms));
            if let Some((PageState::Active, since)) = page {
                out.push(live(ledger::IntervalKind::Engaged, since));
            }
            let user = users
                .entry(c.auth.user.uid)
                .or_insert_with(|| (c.auth.user.uname.clone(), None));
            user.1 = user_state(user.1.into_iter().chain(page.map(|p| p.0)));
        }
        Ok(running)
    }

    /// Every user's time in `lesson`: attended and engaged (unions over
    /// their tabs, clipped to `window` when given), first join, last
    /// leave (none while online) and, while online, their state.
    pub fn lesson_times(
        &self,
        lesson: &str,
        window: Option<(i64, i64)>,
    ) -> Result<Vec<ledger::UserLessonTime>, StoreError> {
        let mut all = self.lessons_times(&[lesson.to_owned()], window)?;
        Ok(all.remove(lesson).unwrap_or_default())
    }

    /// [`Query::lesson_times`] of several lessons at once (reading the hot
    /// store's clients once), by lesson.
    pub fn lessons_times(
        &self,
        lessons: &[String],
        window: Option<(i64, i64)>,
    ) -> Result<BTreeMap<String, Vec<ledger::UserLessonTime>>, StoreError> {
        let now = clock::now_ms();
        let lessons: Vec<String> = lessons
            .iter()
            .filter(|l| channel::check(l).is_ok())
            .cloned()
            .collect();
        let mut running = self.running_intervals(&lessons, None, now)?;
        let mut out = BTreeMap::new();
        for lesson in lessons {
            let (live, online) = running.remove(&lesson).unwrap_or_default();
            let times = self.times_of(&lesson, live, &online, window)?;
            out.insert(lesson, times);
        }
        Ok(out)
    }

    fn times_of(
        &self,
        lesson: &str,
        live: Vec<ledger::Interval>,
        online: &OnlineUsers,
        window: Option<(i64, i64)>,
    ) -> Result<Vec<ledger::UserLessonTime>, StoreError> {
        let mut intervals = self.intervals(lesson, None)?;
        intervals.extend(live);
        let mut by_user: BTreeMap<u64, Vec<ledger::Interval>> = BTreeMap::new();
        for i in intervals {
            by_user.entry(i.uid).or_default().push(i);
        }
        let mut out = Vec::with_capacity(by_user.len());
        for (uid, rows) in by_user {
            let time = ledger::LessonTime::of(&rows, window);
            let attended = rows
                .iter()
                .filter(|r| r.measure == ledger::IntervalKind::Attended);
            let first_join_ms = attended.clone().map(|r| r.started_ms).min();
            // Inside the window: the first moment present in it and the
            // last, each clamped to it (what lateness and leaving early
            // are judged by).
            let inside: Vec<(i64, i64)> = match window {
                Some((from, to)) => attended
                    .clone()
                    .filter(|r| r.ended_ms > from && r.started_ms < to)
                    .map(|r| (r.started_ms.max(from), r.ended_ms.min(to)))
                    .collect(),
                None => Vec::new(),
            };
            let (uname, state) = match online.get(&uid) {
                Some((uname, state)) => (uname.clone(), *state),
                None => (self.durable.lock().user_name(uid)?, None),
            };
            out.push(ledger::UserLessonTime {
                uid,
                uname,
                attended_ms: time.attended_ms,
                engaged_ms: time.engaged_ms,
                first_join_ms,
                last_leave_ms: match online.contains_key(&uid) {
                    true => None,
                    false => attended.map(|r| r.ended_ms).max(),
                },
                online: online.contains_key(&uid),
                state: state.map(PageState::name),
                first_in_window_ms: inside.iter().map(|s| s.0).min(),
                last_in_window_ms: inside.iter().map(|s| s.1).max(),
            });
        }
        Ok(out)
    }

    /// Sets a lesson's scheduled window (ms since the epoch).
    pub fn schedule(&self, lesson: &str, starts_ms: i64, ends_ms: i64) -> Result<(), StoreError> {
        if let Err(why) = channel::check(lesson) {
            return Err(StoreError::other(format!("lesson {lesson:?} {why}")));
        }
        if starts_ms >= ends_ms {
            return Err(StoreError::other("a lesson must start before it ends"));
        }
        self.durable.lock().schedule(lesson, starts_ms, ends_ms)
    }

    /// A lesson's scheduled window, if it has one.
    pub fn scheduled(&self, lesson: &str) -> Result<Option<Scheduled>, StoreError> {
        self.durable.lock().scheduled(lesson)
    }

    /// The lessons whose window starts in [`from_ms`, `to_ms`).
    pub fn schedules(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Scheduled>, StoreError> {
        self.durable.lock().schedules(from_ms, to_ms)
    }
}

impl Query {
    /// The login/logout log as sessions, one per clientId (see
    /// [`DurableStore::sessions`]).
    pub fn sessions(
        &self,
        uid: Option<u64>,
        after_ms: i64,
        before_ms: i64,
    ) -> Result<Vec<Session>, StoreError> {
        self.durable.lock().sessions(uid, after_ms, before_ms)
    }

    /// Who is online where, with their clientIds, and whose lesson timers
    /// run: from the hot store, or else from SQL (the online lists, and the
    /// clientIds with a login row but no logout row yet).
    pub fn status(&self) -> Result<Value, StoreError> {
        use std::collections::BTreeMap;
        type Entry = (String, Vec<String>, Option<i64>);
        let mut rooms: BTreeMap<String, BTreeMap<u64, Entry>> = BTreeMap::new();
        let mut lessons: BTreeMap<String, BTreeMap<u64, Entry>> = BTreeMap::new();
        let source = match &self.hot {
            Some(hot) => {
                for c in hot.clients()? {
                    let uid = c.auth.user.uid;
                    let room = rooms.entry(c.auth.room.clone()).or_default();
                    let e = room
                        .entry(uid)
                        .or_insert_with(|| (c.auth.user.uname.clone(), Vec::new(), None));
                    e.1.push(c.client_id.clone());
                    let lesson = lessons.entry(c.auth.time.clone()).or_default();
                    let e = lesson
                        .entry(uid)
                        .or_insert_with(|| (c.auth.user.uname.clone(), Vec::new(), None));
                    e.1.push(c.client_id);
                }
                for (time, users) in lessons.iter_mut() {
                    for (uid, e) in users.iter_mut() {
                        e.2 = hot.timer_started_at(*uid, time)?;
                    }
                }
                "hot"
            }
            None => {
                let mut durable = self.durable.lock();
                for (room, users) in durable.online_lists()? {
                    let entry = rooms.entry(room).or_default();
                    for u in users {
                        entry.insert(u.uid, (u.uname, Vec::new(), None));
                    }
                }
                // The open sessions of the last week: a clientId whose
                // process died before it was cleaned leaves one open for
                // good, and the log may hold years.
                let since = clock::now_ms() - OPEN_SESSIONS_WINDOW_MS;
                for s in durable.open_sessions(since, MAX_OPEN_SESSIONS)? {
                    let e = lessons
                        .entry(s.lesson.clone())
                        .or_default()
                        .entry(s.uid)
                        .or_insert_with(|| (s.uname.clone(), Vec::new(), Some(s.joined_ms)));
                    e.1.push(s.client_id);
                    e.2 = e.2.map(|t| t.min(s.joined_ms));
                }
                "sql"
            }
        };
        let render = |m: BTreeMap<String, BTreeMap<u64, Entry>>, key: &str| -> Vec<Value> {
            m.into_iter()
                .map(|(name, users)| {
                    let users: Vec<Value> = users
                        .into_iter()
                        .map(|(uid, (uname, mut ids, started))| {
                            ids.sort();
                            let mut u = json!({"uid": uid, "uname": uname, "client_ids": ids});
                            if key == "lesson" {
                                u["started_ms"] = json!(started);
                            }
                            u
                        })
                        .collect();
                    json!({key: name, "count": users.len(), "users": users})
                })
                .collect()
        };
        Ok(json!({
            "source": source,
            "rooms": render(rooms, "room"),
            "lessons": render(lessons, "lesson"),
        }))
    }
}
