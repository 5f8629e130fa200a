//! The ledger in the old gem's formats, with no SQL in it: the records a
//! change leaves, how each one edits a room's online list or a user's
//! online times, and how those JSON documents are read.
//!
//! - `faye_channel_online_lists.user_info_list`: a JSON array of uids;
//! - `faye_user_online_times.online_times`: a JSON object with
//!   `"<time>_started_at": "YYYYmmddHHMMSS"` and `"<time>_spended": seconds`.
//!
//! An app that ran the old gem keeps its data and its reports, so these
//! are read leniently (numbers as strings, junk as empty) and written as
//! the old gem wrote them.

use crate::clock;
use crate::error::StoreError;
use serde_json::{Map, Value};

/// Who is in a room now and whose timer runs, as the writer asks it of
/// the store that all processes share (see
/// [`DurableStore::apply_batch`](crate::durable::DurableStore::apply_batch)).
pub trait Memberships: Send + Sync {
    /// Whether the user is online in `room`.
    fn in_room(&self, room: &str, uid: u64) -> Result<bool, StoreError>;

    /// When the user's timer in `time` started, if it runs.
    fn timer_started_at(&self, uid: u64, time: &str) -> Result<Option<i64>, StoreError>;
}

/// One durable change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind")]
pub enum Record {
    /// A clientId came (`status` 1) or went (`status` 0).
    Login {
        status: i64,
        uid: u64,
        at_ms: i64,
        time: String,
        client_id: String,
    },
    /// The user came online in the room (and is known by `uname`).
    RoomJoin {
        room: String,
        uid: u64,
        uname: String,
    },
    /// The user went offline in the room.
    RoomLeave { room: String, uid: u64 },
    /// Users listed online in the room whom no live process has: left
    /// behind by a crash, removed at start.
    RoomPrune { room: String, uids: Vec<u64> },
    /// The user's lesson timer started.
    TimerStart { uid: u64, time: String, at_ms: i64 },
    /// The user's lesson session ended: `credited_ms` (the union of its
    /// clientIds' intervals), rounded to seconds, is added to the user's
    /// time. `restored`: the hot store lost the session (Redis restarted
    /// empty) and rebuilt it from the live clientIds, so it only knows it
    /// from `started_ms`; the time from the start recorded in SQL up to
    /// then is credited too.
    TimerStop {
        uid: u64,
        time: String,
        started_ms: i64,
        credited_ms: i64,
        restored: bool,
    },
    /// A stretch of one clientId's time in a lesson, for the interval
    /// ledger (`faye_online_intervals`), in ms; `ended_by` says why it
    /// ended (`left`, `closed`, `vanished`, `stopped`, `idle`, `hidden`).
    Interval {
        uid: u64,
        time: String,
        client_id: String,
        measure: IntervalKind,
        started_ms: i64,
        ended_ms: i64,
        ended_by: String,
    },
}

/// What an interval of the ledger measures: the page was open
/// (`Attended`) or in use (`Engaged`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntervalKind {
    Attended,
    Engaged,
}

impl IntervalKind {
    pub fn name(self) -> &'static str {
        match self {
            IntervalKind::Attended => "attended",
            IntervalKind::Engaged => "engaged",
        }
    }

    pub fn parse(name: &str) -> Option<IntervalKind> {
        match name {
            "attended" => Some(IntervalKind::Attended),
            "engaged" => Some(IntervalKind::Engaged),
            _ => None,
        }
    }
}

/// A row of the interval ledger.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Interval {
    pub uid: u64,
    pub lesson: String,
    pub client_id: String,
    pub measure: IntervalKind,
    pub started_ms: i64,
    pub ended_ms: i64,
    pub ended_by: String,
}

/// A user's time in a lesson from the ledger, to the millisecond: the
/// union of their clientIds' attended intervals, and of their engaged
/// ones (a user with two tabs open, one in use, counts once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LessonTime {
    pub attended_ms: i64,
    pub engaged_ms: i64,
}

impl LessonTime {
    /// The union of `intervals` (one user's, one lesson's), clipped to
    /// `window` (ms, start and end) when given.
    pub fn of(intervals: &[Interval], window: Option<(i64, i64)>) -> LessonTime {
        let union = |measure: IntervalKind| {
            let mut spans = Vec::new();
            for i in intervals.iter().filter(|i| i.measure == measure) {
                let (mut s, mut e) = (i.started_ms, i.ended_ms.max(i.started_ms));
                if let Some((from, to)) = window {
                    (s, e) = (s.max(from), e.min(to));
                }
                if s < e {
                    crate::presence::add_span(&mut spans, (s, e));
                }
            }
            crate::presence::spans_len(&spans)
        };
        LessonTime {
            attended_ms: union(IntervalKind::Attended),
            engaged_ms: union(IntervalKind::Engaged),
        }
    }
}

/// One user's time in one lesson, for reports (see
/// [`Query::lesson_times`](crate::query::Query::lesson_times)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserLessonTime {
    pub uid: u64,
    pub uname: String,
    pub attended_ms: i64,
    pub engaged_ms: i64,
    pub first_join_ms: Option<i64>,
    /// `None` while the user is online in the lesson.
    pub last_leave_ms: Option<i64>,
    pub online: bool,
    /// While online: the user's state over their tabs (`active`, `idle`,
    /// `hidden`), if their pages report one.
    pub state: Option<&'static str>,
    /// With a window: the first and the last moment the user was present
    /// inside it (clamped to it), if ever.
    pub first_in_window_ms: Option<i64>,
    pub last_in_window_ms: Option<i64>,
}

/// One clientId's stay, from its login row to its logout row (none while
/// it is online, or if its process died before it was cleaned).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Session {
    pub client_id: String,
    pub uid: u64,
    pub uname: String,
    pub lesson: String,
    pub joined_ms: i64,
    pub left_ms: Option<i64>,
}

/// Brings `list`, the online list of `room`, up to date for one record.
pub fn edit_list(list: &mut Vec<u64>, room: &str, record: &Record, live: Option<&dyn Memberships>) {
    let in_room = |uid: u64| live.and_then(|h| h.in_room(room, uid).ok());
    match record {
        Record::RoomJoin { uid, .. } => set_member(list, *uid, in_room(*uid).unwrap_or(true)),
        Record::RoomLeave { uid, .. } => set_member(list, *uid, in_room(*uid).unwrap_or(false)),
        Record::RoomPrune { uids, .. } => {
            list.retain(|u| !uids.contains(u) || in_room(*u).unwrap_or(false))
        }
        _ => {}
    }
}

/// Brings a user's online times up to date for one record.
pub fn edit_times(times: &mut Map<String, Value>, record: &Record, live: Option<&dyn Memberships>) {
    let running = |uid: u64, time: &str| live.and_then(|h| h.timer_started_at(uid, time).ok());
    match record {
        Record::TimerStart { uid, time, at_ms } => {
            // A session that ended already is written by its stop.
            if let Some(at) = running(*uid, time).unwrap_or(Some(*at_ms)) {
                set_started(times, time, at);
            }
        }
        Record::TimerStop {
            uid,
            time,
            started_ms,
            credited_ms,
            restored,
        } => {
            let recorded_start = take_started(times, time);
            let lost_ms = match recorded_start {
                // SQL keeps seconds: only a whole second earlier is lost time.
                Some(at) if *restored && at + 1000 <= *started_ms => started_ms - at,
                _ => 0,
            };
            let key = spended_key(time);
            let before = times.get(&key).and_then(json_int).unwrap_or(0);
            let total = before + clock::elapsed_secs(0, credited_ms + lost_ms);
            times.insert(key, Value::from(total));
            // A later session, started in another process, whose start
            // reached SQL before this stop did.
            if let Some(Some(at)) = running(*uid, time) {
                set_started(times, time, at);
            }
        }
        _ => {}
    }
}

/// `value` as JSON text in ASCII only (every other character as a `\u`
/// escape), which a table of any charset holds.
pub fn ascii_json(value: &impl serde::Serialize) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// Puts `uid` in the sorted `list` or takes it out.
fn set_member(list: &mut Vec<u64>, uid: u64, member: bool) {
    match (list.binary_search(&uid), member) {
        (Err(at), true) => list.insert(at, uid),
        (Ok(at), false) => {
            list.remove(at);
        }
        _ => {}
    }
}

pub fn started_key(time: &str) -> String {
    format!("{time}_started_at")
}

pub fn spended_key(time: &str) -> String {
    format!("{time}_spended")
}

/// The running session's start to the millisecond, beside the old gem's
/// `<time>_started_at`, which keeps whole seconds: read alone, that one
/// makes a running session up to a second longer than it is.
pub fn started_ms_key(time: &str) -> String {
    format!("{time}_started_ms")
}

/// Records that the session in `time` runs since `at_ms`.
fn set_started(times: &mut Map<String, Value>, time: &str, at_ms: i64) {
    times.insert(
        started_key(time),
        Value::String(clock::compact_local(at_ms)),
    );
    times.insert(started_ms_key(time), Value::from(at_ms));
}

/// When the session in `time` started, if it runs (see [`started_at`]);
/// it no longer does.
fn take_started(times: &mut Map<String, Value>, time: &str) -> Option<i64> {
    let at = started_at(times, time);
    times.remove(&started_key(time));
    times.remove(&started_ms_key(time));
    at
}

/// When the session in `time` started, if `<time>_started_at` says it
/// runs: to the millisecond when `<time>_started_ms` falls in that same
/// second, else (a row the old gem wrote) to the second.
pub fn started_at(times: &Map<String, Value>, time: &str) -> Option<i64> {
    let second = times
        .get(&started_key(time))
        .and_then(Value::as_str)
        .and_then(clock::parse_compact_local)?;
    let precise = times
        .get(&started_ms_key(time))
        .and_then(json_int)
        .filter(|ms| ms.div_euclid(1000) * 1000 == second);
    Some(precise.unwrap_or(second))
}

/// Seconds credited in an `online_times` object, plus the running session.
pub fn seconds_in(times: &Map<String, Value>, time: &str, now_ms: i64) -> i64 {
    spent_secs(times, time) + running_secs(times, time, now_ms).unwrap_or(0)
}

/// Seconds of finished sessions (`<time>_spended`).
pub fn spent_secs(times: &Map<String, Value>, time: &str) -> i64 {
    times
        .get(&spended_key(time))
        .and_then(json_int)
        .unwrap_or(0)
}

/// Seconds of the running session up to `now_ms`, if `<time>_started_at` is set.
pub fn running_secs(times: &Map<String, Value>, time: &str, now_ms: i64) -> Option<i64> {
    started_at(times, time).map(|started| clock::elapsed_secs(started, now_ms))
}

fn json_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads an old-gem online list; unreadable data counts as empty rather
/// than stopping every later write to the room.
pub fn parse_uid_list(text: Option<&str>) -> Vec<u64> {
    let Some(Value::Array(items)) = text.and_then(|t| serde_json::from_str(t).ok()) else {
        return Vec::new();
    };
    let mut uids: Vec<u64> = items
        .iter()
        .filter_map(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .collect();
    uids.sort_unstable();
    uids.dedup();
    uids
}

pub fn parse_times(text: Option<&str>) -> Map<String, Value> {
    match text.and_then(|t| serde_json::from_str(t).ok()) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_ascii_json() {
        let record = Record::RoomJoin {
            room: "/classes/4".into(),
            uid: 7,
            uname: "Zoë 😀 \"q\"".into(),
        };
        let text = ascii_json(&record);
        assert!(text.is_ascii(), "{text}");
        assert!(text.contains(r#""kind":"RoomJoin""#), "{text}");
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), record);
    }

    #[test]
    fn reads_old_gem_data_leniently() {
        assert_eq!(parse_uid_list(Some("[3, \"5\", 3, null]")), vec![3, 5]);
        assert_eq!(parse_uid_list(Some("not json")), Vec::<u64>::new());
        let times = parse_times(Some(r#"{"/t_spended": "12"}"#));
        assert_eq!(seconds_in(&times, "/t", 0), 12);
    }

    /// SQL's `started_at` keeps whole seconds; the running session is read
    /// to the millisecond all the same, and a row the old gem wrote (or
    /// one whose two starts disagree) to the second.
    #[test]
    fn a_running_session_is_read_to_the_millisecond() {
        let time = "/courses/5/lessons/1";
        let started = 1_700_000_000_999;
        let mut times = Map::new();
        edit_times(
            &mut times,
            &Record::TimerStart {
                uid: 1,
                time: time.into(),
                at_ms: started,
            },
            None,
        );
        assert_eq!(started_at(&times, time), Some(started));
        assert_eq!(running_secs(&times, time, started + 1_400), Some(1));
        times.insert(started_ms_key(time), Value::from(started + 5_000));
        assert_eq!(started_at(&times, time), Some(started - 999));
        times.remove(&started_ms_key(time));
        assert_eq!(running_secs(&times, time, started + 1_400), Some(2));
        edit_times(
            &mut times,
            &Record::TimerStop {
                uid: 1,
                time: time.into(),
                started_ms: started,
                credited_ms: 1_400,
                restored: false,
            },
            None,
        );
        assert_eq!(started_at(&times, time), None);
        assert!(!times.contains_key(&started_ms_key(time)));
        assert_eq!(spent_secs(&times, time), 1);
    }
}
