//! Lessons' scheduled windows (`faye_online_lessons`).

use super::{parse_int, DurableStore};
use crate::clock;
use crate::error::StoreError;
use crate::sql::Param;

/// A lesson's scheduled window, in ms since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Scheduled {
    pub lesson: String,
    pub starts_ms: i64,
    pub ends_ms: i64,
}

impl DurableStore {
    /// Sets `lesson`'s window (replacing one set before).
    pub fn schedule(
        &mut self,
        lesson: &str,
        starts_ms: i64,
        ends_ms: i64,
    ) -> Result<(), StoreError> {
        self.guarded(|s| {
            let now = clock::sql_datetime(clock::now_ms());
            let conn = s.conn()?;
            let sql = conn.dialect().upsert(
                "faye_online_lessons (lesson, starts_ms, ends_ms, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                "lesson",
                &["starts_ms", "ends_ms", "updated_at"],
            );
            conn.execute(
                &sql,
                &[
                    lesson.into(),
                    Param::Int(starts_ms),
                    Param::Int(ends_ms),
                    now.clone().into(),
                    now.into(),
                ],
            )?;
            Ok(())
        })
    }

    /// `lesson`'s window, if it has one.
    pub fn scheduled(&mut self, lesson: &str) -> Result<Option<Scheduled>, StoreError> {
        let row = self.guarded(|s| {
            s.conn()?.first_row(
                "SELECT lesson, starts_ms, ends_ms FROM faye_online_lessons WHERE lesson = ?",
                &[lesson.into()],
            )
        })?;
        row.map(|r| scheduled_from(&r)).transpose()
    }

    /// The lessons whose window starts in [`from_ms`, `to_ms`), by start.
    pub fn schedules(&mut self, from_ms: i64, to_ms: i64) -> Result<Vec<Scheduled>, StoreError> {
        let rows = self.guarded(|s| {
            s.conn()?.all_rows(
                "SELECT lesson, starts_ms, ends_ms FROM faye_online_lessons \
                 WHERE starts_ms >= ? AND starts_ms < ? ORDER BY starts_ms, lesson",
                &[Param::Int(from_ms), Param::Int(to_ms)],
            )
        })?;
        rows.iter().map(|r| scheduled_from(r)).collect()
    }
}

fn scheduled_from(row: &[Option<String>]) -> Result<Scheduled, StoreError> {
    Ok(Scheduled {
        lesson: row[0].clone().unwrap_or_default(),
        starts_ms: parse_int(row, 1)?,
        ends_ms: parse_int(row, 2)?,
    })
}
