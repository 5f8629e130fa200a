//! Records the database refuses for good, set aside so that they block
//! nothing else (`faye_online_failed_records`), and replayed once an
//! operator fixed the cause; and the check at start for old tables whose
//! charset cannot hold every name.

use super::DurableStore;
use crate::clock;
use crate::error::StoreError;
use crate::ledger::{ascii_json, Record};
use crate::sql::{Dialect, Param};

/// A record set aside, as `faye_online_failed_records` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedRecord {
    pub id: i64,
    /// The record as JSON (ASCII only).
    pub record: String,
    pub error: String,
    pub created_at: String,
}

/// The columns that hold names or channel names, which an old `utf8`
/// (3-byte) table cannot hold in full.
const TEXT_COLUMNS: [(&str, &str); 4] = [
    ("faye_online_user_names", "uname"),
    ("faye_channels", "name"),
    ("faye_user_online_times", "online_times"),
    ("faye_channel_online_lists", "user_info_list"),
];

impl DurableStore {
    /// Keeps `record`, which failed with `error` for good, where an
    /// operator sees it and can replay it.
    pub fn set_aside(&mut self, record: &Record, error: &StoreError) -> Result<(), StoreError> {
        let now = clock::sql_datetime(clock::now_ms());
        let text = ascii_json(record);
        let why = ascii_json(&error.to_string());
        self.guarded(|s| {
            s.conn()?.execute(
                "INSERT INTO faye_online_failed_records (record, error, created_at, updated_at) VALUES (?, ?, ?, ?)",
                &[text.into(), why.into(), now.clone().into(), now.into()],
            )?;
            Ok(())
        })
    }

    /// The records set aside, oldest first.
    pub fn failed_records(&mut self) -> Result<Vec<FailedRecord>, StoreError> {
        let rows = self.guarded(|s| {
            s.conn()?.all_rows(
                "SELECT id, record, error, created_at FROM faye_online_failed_records ORDER BY id",
                &[],
            )
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(FailedRecord {
                    id: r.first()?.as_deref()?.parse().ok()?,
                    record: r.get(1)?.clone()?,
                    // Stored as a JSON string, so that any charset holds it.
                    error: r
                        .get(2)?
                        .as_deref()
                        .map(|e| serde_json::from_str::<String>(e).unwrap_or_else(|_| e.into()))?,
                    created_at: r.get(3)?.clone().unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Writes the records set aside again, each on its own: one that lands
    /// leaves the table, one that fails for good again stays with its new
    /// reason. Returns (written, still failing). A record is written as it
    /// says (there is no hot store to follow here).
    pub fn replay_failed(&mut self) -> Result<(usize, usize), StoreError> {
        let (mut written, mut failing) = (0, 0);
        for failed in self.failed_records()? {
            let Ok(record) = serde_json::from_str::<Record>(&failed.record) else {
                failing += 1;
                continue;
            };
            match self.apply(&record) {
                Ok(()) => {
                    self.guarded(|s| {
                        s.conn()?.execute(
                            "DELETE FROM faye_online_failed_records WHERE id = ?",
                            &[Param::Int(failed.id)],
                        )
                    })?;
                    written += 1;
                }
                Err(e) if e.is_permanent() => {
                    let why = ascii_json(&e.to_string());
                    self.guarded(|s| {
                        s.conn()?.execute(
                            "UPDATE faye_online_failed_records SET error = ? WHERE id = ?",
                            &[why.into(), Param::Int(failed.id)],
                        )
                    })?;
                    failing += 1;
                }
                Err(e) => return Err(e),
            }
        }
        Ok((written, failing))
    }

    /// What an operator should change in old tables: each column that
    /// holds names in a charset other than utf8mb4 (an app that ran the old
    /// gem may have `utf8`, 3 bytes, which cannot hold an emoji). Empty on
    /// SQLite. On PostgreSQL, the database's encoding when it is not UTF8.
    pub fn charset_warnings(&mut self) -> Result<Vec<String>, StoreError> {
        let rows = self.guarded(|s| {
            let conn = s.conn()?;
            if conn.dialect() == Dialect::Postgres {
                let encoding = conn
                    .first_row(
                        "SELECT pg_encoding_to_char(encoding), current_database() FROM pg_database \
                         WHERE datname = current_database()",
                        &[],
                    )?
                    .unwrap_or_default();
                return Ok(match (encoding.first(), encoding.get(1)) {
                    (Some(Some(encoding)), Some(Some(db))) if encoding != "UTF8" => {
                        vec![vec![None, None, Some(encoding.clone()), Some(db.clone())]]
                    }
                    _ => Vec::new(),
                });
            }
            if conn.dialect() != Dialect::MySql {
                return Ok(Vec::new());
            }
            conn.all_rows(
                "SELECT TABLE_NAME, COLUMN_NAME, CHARACTER_SET_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND CHARACTER_SET_NAME IS NOT NULL",
                &[],
            )
        })?;
        let mut warnings = Vec::new();
        for row in rows {
            if let (None, Some(encoding), Some(db)) =
                (&row[0], &row[2], row.get(3).cloned().flatten())
            {
                warnings.push(format!(
                    "the PostgreSQL database {db} is encoded in {encoding}, which cannot hold every \
                     name (an emoji, say): such rows are set aside in faye_online_failed_records. \
                     Use a database created with ENCODING 'UTF8', then run rake faye_online:replay"
                ));
                continue;
            }
            let (Some(table), Some(column), Some(charset)) = (&row[0], &row[1], &row[2]) else {
                continue;
            };
            let ours = TEXT_COLUMNS
                .iter()
                .any(|(t, c)| t.eq_ignore_ascii_case(table) && c.eq_ignore_ascii_case(column));
            if ours && charset != "utf8mb4" {
                warnings.push(format!(
                    "{table}.{column} is in {charset}, which cannot hold every name (an emoji, say): \
                     such rows are set aside in faye_online_failed_records. Convert it with \
                     ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4, then run rake faye_online:replay"
                ));
            }
        }
        Ok(warnings)
    }
}
