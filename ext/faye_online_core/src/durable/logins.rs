//! Reads of the login/logout log: sessions, and the ones still open.

use super::{parse_int, DurableStore};
use crate::clock;
use crate::error::StoreError;
use crate::ledger::Session;
use crate::sql::Param;
use std::collections::HashMap;

/// Open sessions read at most, for the status without a hot store.
pub const MAX_OPEN_SESSIONS: usize = 10_000;

impl DurableStore {
    /// The login/logout log paired into one session per clientId, oldest
    /// first: of `uid` (or everyone), for sessions that began before
    /// `before_ms` and had not ended by `after_ms`.
    pub fn sessions(
        &mut self,
        uid: Option<u64>,
        after_ms: i64,
        before_ms: i64,
    ) -> Result<Vec<Session>, StoreError> {
        self.guarded(|s| {
            let client_id = s.conn()?.dialect().column("clientId");
            let mut sql = format!(
                "SELECT l.status, l.uid, l.t, c.name, l.{client_id}, n.uname FROM faye_user_login_logs l \
                 LEFT JOIN faye_channels c ON c.id = l.channel_id \
                 LEFT JOIN faye_online_user_names n ON n.uid = l.uid WHERE l.t < ?",
            );
            // Rows keep whole seconds: a row of the second `before_ms` is in
            // falls before it.
            let before_s = before_ms.div_euclid(1000) + i64::from(before_ms.rem_euclid(1000) > 0);
            let mut params = vec![clock::sql_datetime(before_s * 1000).into()];
            if let Some(uid) = uid {
                sql.push_str(" AND l.uid = ?");
                params.push(Param::Int(uid as i64));
            }
            sql.push_str(" ORDER BY l.t, l.status DESC");
            let rows = s.conn()?.all_rows(&sql, &params)?;
            let mut sessions: Vec<Session> = Vec::new();
            let mut open: HashMap<String, usize> = HashMap::new();
            for row in rows {
                let (Some(at), Some(client_id)) = (
                    row[2].as_deref().and_then(clock::parse_sql_datetime),
                    row[4].clone(),
                ) else {
                    continue;
                };
                let uid = parse_int(&row, 1)? as u64;
                if parse_int(&row, 0)? == 1 {
                    open.insert(client_id.clone(), sessions.len());
                    sessions.push(Session {
                        client_id,
                        uid,
                        uname: row[5].clone().unwrap_or_default(),
                        lesson: row[3].clone().unwrap_or_default(),
                        joined_ms: at,
                        left_ms: None,
                    });
                } else if let Some(i) = open.remove(&client_id) {
                    sessions[i].left_ms = Some(at.max(sessions[i].joined_ms));
                }
            }
            sessions.retain(|x| x.left_ms.is_none_or(|left| left >= after_ms));
            Ok(sessions)
        })
    }

    /// The sessions still open (a login row and no logout row yet) that
    /// began at or after `since_ms`, newest first, at most `limit`: what
    /// the status shows without a hot store, read without the whole log.
    pub fn open_sessions(
        &mut self,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        self.guarded(|s| {
            let conn = s.conn()?;
            let client_id = conn.dialect().column("clientId");
            let rows = conn.all_rows(
                &format!(
                    "SELECT l.uid, l.t, c.name, l.{client_id}, n.uname FROM faye_user_login_logs l \
                     LEFT JOIN faye_channels c ON c.id = l.channel_id \
                     LEFT JOIN faye_online_user_names n ON n.uid = l.uid \
                     WHERE l.status = 1 AND l.t >= ? AND NOT EXISTS \
                     (SELECT 1 FROM faye_user_login_logs o WHERE o.{client_id} = l.{client_id} AND o.status = 0) \
                     ORDER BY l.t DESC LIMIT ?"
                ),
                &[
                    clock::sql_datetime(since_ms.div_euclid(1000) * 1000).into(),
                    Param::Int(limit as i64),
                ],
            )?;
            let mut sessions = Vec::with_capacity(rows.len());
            for row in rows {
                let (Some(at), Some(client_id)) = (
                    row[1].as_deref().and_then(clock::parse_sql_datetime),
                    row[3].clone(),
                ) else {
                    continue;
                };
                sessions.push(Session {
                    client_id,
                    uid: parse_int(&row, 0)? as u64,
                    uname: row[4].clone().unwrap_or_default(),
                    lesson: row[2].clone().unwrap_or_default(),
                    joined_ms: at,
                    left_ms: None,
                });
            }
            Ok(sessions)
        })
    }
}
