//! The payloads of a room's list channels: `<room>/user_list`, the old
//! gem's whole list, and `<room>/user_changes`, what changed alone.

use crate::auth::User;
use serde_json::{json, Value};

/// A message of `<room>/user_changes`: the count and what changed, or for
/// a new subscriber the whole list (`users`).
pub fn user_changes_message(
    room: &str,
    count: usize,
    users: Option<&[User]>,
    change: Option<(&str, &User)>,
) -> Value {
    let mut data = json!({"count": count, "channel_name": room});
    if let Some(users) = users {
        data["users"] = json!(users);
    }
    if let Some((kind, user)) = change {
        data[kind] = json!([user]);
    }
    data
}

/// The user_list message of a room: the old gem's `count`, `user_list` and
/// `channel_name`, plus `users` with names and what changed.
pub fn user_list_message(room: &str, users: &[User], change: Option<(&str, &User)>) -> Value {
    let mut data = json!({
        "count": users.len(),
        "user_list": users.iter().map(|u| u.uid).collect::<Vec<_>>(),
        "channel_name": room,
        "users": users,
    });
    if let Some((kind, user)) = change {
        data[kind] = json!([user]);
    }
    data
}
