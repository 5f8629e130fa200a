//! The `auth` a page attaches to its Bayeux messages, and its validation.
//!
//! ```json
//! {"room_channel": "/classes/4", "time_channel": "/courses/5/lessons/1",
//!  "current_user": {"uid": 470700, "uname": "mvj3"}}
//! ```
//! Anything else (a missing field, a uid that is not a positive integer, an
//! unsafe channel name) is refused with a `400` before anything is stored.

use crate::channel;
use crate::error::BayeuxError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest user name accepted, in characters.
pub const MAX_UNAME_CHARS: usize = 100;
/// Largest uid accepted (fits a signed 64-bit SQL column).
pub const MAX_UID: u64 = i64::MAX as u64;

/// A user as shown in a room's online list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct User {
    pub uid: u64,
    pub uname: String,
}

/// A validated claim: this client is `user`, in `room`, timing `time`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Auth {
    pub room: String,
    pub time: String,
    pub user: User,
}

impl Auth {
    /// Validates the `auth` field of a message.
    pub fn from_value(auth: &Value) -> Result<Auth, BayeuxError> {
        let Value::Object(map) = auth else {
            return Err(BayeuxError::bad_request(
                "auth",
                "must be an object with room_channel, time_channel and current_user",
            ));
        };
        let room = channel_field(map.get("room_channel"), "auth.room_channel")?;
        let time = channel_field(map.get("time_channel"), "auth.time_channel")?;
        let user = match map.get("current_user") {
            Some(Value::Object(user)) => user,
            Some(_) => {
                return Err(BayeuxError::bad_request(
                    "auth.current_user",
                    "must be an object with uid and uname",
                ))
            }
            None => return Err(BayeuxError::bad_request("auth.current_user", "is missing")),
        };
        let uid = match user.get("uid") {
            Some(Value::Number(n)) => match n.as_u64() {
                Some(uid) if uid > 0 && uid <= MAX_UID => uid,
                _ => {
                    return Err(BayeuxError::bad_request(
                        "auth.current_user.uid",
                        "must be a positive integer",
                    ))
                }
            },
            Some(_) => {
                return Err(BayeuxError::bad_request(
                    "auth.current_user.uid",
                    "must be a positive integer, not a string, array or object",
                ))
            }
            None => {
                return Err(BayeuxError::bad_request(
                    "auth.current_user.uid",
                    "is missing",
                ))
            }
        };
        let uname = match user.get("uname") {
            Some(Value::String(s)) => s,
            Some(_) => {
                return Err(BayeuxError::bad_request(
                    "auth.current_user.uname",
                    "must be a string",
                ))
            }
            None => {
                return Err(BayeuxError::bad_request(
                    "auth.current_user.uname",
                    "is missing",
                ))
            }
        };
        let trimmed = uname.trim();
        if trimmed.is_empty() {
            return Err(BayeuxError::bad_request(
                "auth.current_user.uname",
                "is empty",
            ));
        }
        if trimmed.chars().count() > MAX_UNAME_CHARS || trimmed.chars().any(char::is_control) {
            return Err(BayeuxError::bad_request(
                "auth.current_user.uname",
                "must be at most 100 printable characters",
            ));
        }
        Ok(Auth {
            room,
            time,
            user: User {
                uid,
                uname: trimmed.to_owned(),
            },
        })
    }
}

fn channel_field(value: Option<&Value>, field: &str) -> Result<String, BayeuxError> {
    match value {
        Some(Value::String(name)) => match channel::check(name) {
            Ok(()) => Ok(name.clone()),
            Err(why) => Err(BayeuxError::bad_request(
                field,
                format!("channel name {why}"),
            )),
        },
        Some(_) => Err(BayeuxError::bad_request(field, "must be a string")),
        None => Err(BayeuxError::bad_request(field, "is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({"room_channel": "/classes/4", "time_channel": "/courses/5/lessons/1",
               "current_user": {"uid": 470700, "uname": "mvj3"}})
    }

    #[test]
    fn accepts_the_old_gems_auth() {
        let auth = Auth::from_value(&good()).unwrap();
        assert_eq!(auth.room, "/classes/4");
        assert_eq!(auth.time, "/courses/5/lessons/1");
        assert_eq!(
            auth.user,
            User {
                uid: 470700,
                uname: "mvj3".into()
            }
        );
    }

    #[test]
    fn ignores_unknown_extra_fields() {
        let mut v = good();
        v["extra"] = json!({"x": 1});
        v["current_user"]["avatar"] = json!("a.png");
        assert!(Auth::from_value(&v).is_ok());
    }

    #[test]
    fn refuses_bad_auth_with_the_field_named() {
        let cases: Vec<(Value, &str)> = vec![
            (json!("x"), "auth"),
            (json!([1]), "auth"),
            (json!({}), "auth.room_channel"),
            (
                json!({"room_channel": 4, "time_channel": "/t", "current_user": {}}),
                "auth.room_channel",
            ),
            (
                json!({"room_channel": "/classes/*", "time_channel": "/t", "current_user": {}}),
                "auth.room_channel",
            ),
            (
                json!({"room_channel": "/a/../b", "time_channel": "/t", "current_user": {}}),
                "auth.room_channel",
            ),
            (
                json!({"room_channel": "/a b", "time_channel": "/t", "current_user": {}}),
                "auth.room_channel",
            ),
            (
                json!({"room_channel": "/a", "time_channel": "/t", "current_user": "u"}),
                "auth.current_user",
            ),
            (
                json!({"room_channel": "/a", "time_channel": "/t"}),
                "auth.current_user",
            ),
            (
                json!({"room_channel": "/a", "time_channel": "/t", "current_user": {"uname": "x"}}),
                "auth.current_user.uid",
            ),
            (
                json!({"room_channel": "/a", "time_channel": "/t", "current_user": {"uid": "5", "uname": "x"}}),
                "auth.current_user.uid",
            ),
            (
                json!({"room_channel": "/a", "time_channel": "/t", "current_user": {"uid": [5], "uname": "x"}}),
                "auth.current_user.uid",
            ),
            (
                json!({"room_channel": "/a", "time_channel": "/t", "current_user": {"uid": {"a": 1}, "uname": "x"}}),
                "auth.current_user.uid",
            ),
            (
                json!({"room_channel": "/a", "time_channel": "/t", "current_user": {"uid": -5, "uname": "x"}}),
                "auth.current_user.uid",
            ),
            (
                json!({"room_channel": "/a", "time_channel": "/t", "current_user": {"uid": 0, "uname": "x"}}),
                "auth.current_user.uid",
            ),
            (
                json!({"room_channel": "/a", "time_channel": "/t", "current_user": {"uid": 1.5, "uname": "x"}}),
                "auth.current_user.uid",
            ),
            (
                json!({"room_channel": "/a", "time_channel": "/t", "current_user": {"uid": 5}}),
                "auth.current_user.uname",
            ),
            (
                json!({"room_channel": "/a", "time_channel": "/t", "current_user": {"uid": 5, "uname": 7}}),
                "auth.current_user.uname",
            ),
            (
                json!({"room_channel": "/a", "time_channel": "/t", "current_user": {"uid": 5, "uname": "  "}}),
                "auth.current_user.uname",
            ),
            (
                json!({"room_channel": "/a", "time_channel": "/t", "current_user": {"uid": 5, "uname": "x".repeat(101)}}),
                "auth.current_user.uname",
            ),
            (
                json!({"room_channel": "/a", "time_channel": "/t", "current_user": {"uid": 5, "uname": "a\u{0}b"}}),
                "auth.current_user.uname",
            ),
        ];
        for (value, field) in cases {
            let err = Auth::from_value(&value).unwrap_err();
            assert_eq!(err.code, 400, "{value}");
            assert_eq!(err.args, field, "{value}");
        }
    }

    #[test]
    fn error_strings_follow_fayes_grammar() {
        let e = BayeuxError::bad_request("auth.room_channel", "bad: really");
        assert_eq!(e.to_string(), "400:auth.room_channel:bad - really");
    }
}
