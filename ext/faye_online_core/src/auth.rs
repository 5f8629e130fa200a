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

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The text a token signs: every field of the claim and its expiry.
fn signed_text(auth: &Auth, expires: i64) -> String {
    format!(
        "faye-online/v1\n{}\n{}\n{}\n{}\n{}",
        auth.user.uid, auth.user.uname, auth.room, auth.time, expires
    )
}

/// The token that the app signs on its server for a page: lowercase hex of
/// HMAC-SHA256(secret, "faye-online/v1\n<uid>\n<uname>\n<room>\n<time>\n<expires>").
pub fn sign(secret: &[u8], auth: &Auth, expires: i64) -> String {
    use hmac::Mac;
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(signed_text(auth, expires).as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Auth {
    /// Checks the `token` and `expires` fields of `auth` (a message's auth
    /// object) against this claim, in constant time.
    pub fn verify(&self, secret: &[u8], auth: &Value, now_secs: i64) -> Result<(), BayeuxError> {
        use hmac::Mac;
        let token = match auth.get("token") {
            Some(Value::String(t)) => t,
            Some(_) => return Err(BayeuxError::forbidden("auth.token", "must be a string")),
            None => {
                return Err(BayeuxError::forbidden(
                    "auth.token",
                    "is required: this server verifies identities",
                ))
            }
        };
        let expires = match auth.get("expires") {
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
                BayeuxError::forbidden("auth.expires", "must be an integer (Unix seconds)")
            })?,
            _ => {
                return Err(BayeuxError::forbidden(
                    "auth.expires",
                    "must be an integer (Unix seconds)",
                ))
            }
        };
        let Some(given) = unhex(token) else {
            return Err(BayeuxError::forbidden("auth.token", "is not a valid token"));
        };
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(signed_text(self, expires).as_bytes());
        if mac.verify_slice(&given).is_err() {
            return Err(BayeuxError::forbidden(
                "auth.token",
                "does not match this user, room and lesson",
            ));
        }
        if expires < now_secs {
            return Err(BayeuxError::forbidden("auth.token", "has expired"));
        }
        Ok(())
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
    fn tokens_bind_every_field_and_expire() {
        let secret = b"s3cret";
        let auth = Auth::from_value(&good()).unwrap();
        let mut v = good();
        v["expires"] = json!(2_000);
        v["token"] = json!(sign(secret, &auth, 2_000));
        assert_eq!(auth.verify(secret, &v, 1_000), Ok(()));
        assert_eq!(
            auth.verify(secret, &v, 2_001).unwrap_err().text,
            "has expired"
        );
        assert!(auth.verify(b"other", &v, 1_000).is_err());
        let mut other_user = auth.clone();
        other_user.user.uid += 1;
        assert!(other_user.verify(secret, &v, 1_000).is_err());
        let mut other_room = auth.clone();
        other_room.room = "/classes/5".into();
        assert!(other_room.verify(secret, &v, 1_000).is_err());
        let mut later = v.clone();
        later["expires"] = json!(3_000);
        assert!(
            auth.verify(secret, &later, 1_000).is_err(),
            "expiry is signed"
        );
        for (token, expires) in [
            (json!(null), json!(2_000)),
            (json!("zz"), json!(2_000)),
            (json!(5), json!(2_000)),
            (v["token"].clone(), json!("2000")),
        ] {
            let mut bad = v.clone();
            bad["token"] = token;
            bad["expires"] = expires;
            let err = auth.verify(secret, &bad, 1_000).unwrap_err();
            assert_eq!(err.code, 403);
        }
        let mut missing = v.clone();
        missing.as_object_mut().unwrap().remove("token");
        assert_eq!(auth.verify(secret, &missing, 1_000).unwrap_err().code, 403);
    }

    #[test]
    fn error_strings_follow_fayes_grammar() {
        let e = BayeuxError::bad_request("auth.room_channel", "bad: really");
        assert_eq!(e.to_string(), "400:auth.room_channel:bad - really");
    }
}
