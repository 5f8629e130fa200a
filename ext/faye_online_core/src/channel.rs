//! Channel names as faye-online accepts them.
//!
//! They become Redis keys and SQL values, so only a narrow, unambiguous
//! alphabet is accepted: `/` followed by segments of ASCII letters, digits,
//! `_` and `-`, separated by single slashes (`/classes/4`,
//! `/courses/5/lessons/1`). No wildcards, no `..`, no empty segments.

/// Longest channel name accepted, in bytes (the SQL column is 255).
pub const MAX_CHANNEL_LEN: usize = 200;

/// Why a channel name was refused, in words a developer can act on.
pub fn check(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name.len() > MAX_CHANNEL_LEN {
        return Err("is longer than 200 bytes");
    }
    let Some(rest) = name.strip_prefix('/') else {
        return Err("must start with /");
    };
    if rest.is_empty() {
        return Err("has no segment after /");
    }
    for segment in rest.split('/') {
        if segment.is_empty() {
            return Err("has an empty segment (// or a trailing /)");
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err("may hold only letters, digits, _, - and single slashes");
        }
    }
    if name.starts_with("/meta/") || name == "/meta" || name.starts_with("/service/") {
        return Err("is a reserved Bayeux channel");
    }
    Ok(())
}

/// The channel on which a room's online list is published.
/// Where the browser client reports its page's state (`{"state":
/// "active"}`); the server handles it and never delivers it.
pub const PAGE_STATE_CHANNEL: &str = "/faye-online/state";

pub fn user_list_channel(room: &str) -> String {
    format!("{room}/user_list")
}

/// The opt-in channel of a room's changes alone (joins and leaves, with
/// the count), for rooms too big to send the whole list on each change.
pub fn user_changes_channel(room: &str) -> String {
    format!("{room}/user_changes")
}

/// If `channel` is some room's `user_list` channel, the room.
pub fn room_of_user_list(channel: &str) -> Option<&str> {
    let room = channel.strip_suffix("/user_list")?;
    check(room).ok().map(|_| room)
}

/// If `channel` is a room's `user_list` or `user_changes` channel, the
/// room (and whether it is the changes channel).
pub fn room_of_list_channel(channel: &str) -> Option<(&str, bool)> {
    if let Some(room) = room_of_user_list(channel) {
        return Some((room, false));
    }
    let room = channel.strip_suffix("/user_changes")?;
    check(room).ok().map(|_| (room, true))
}

/// The subscriptions a message on `name` reaches, as Faye expands them:
/// `/**`, the name itself, the name with its last segment `*`, and `/**`
/// under each of its ancestors (`/a/b/c`: `/**`, `/a/b/c`, `/a/b/*`,
/// `/a/**`, `/a/b/**`).
pub fn expand(name: &str) -> Vec<String> {
    let segments: Vec<&str> = name.trim_start_matches('/').split('/').collect();
    let mut out = vec!["/**".to_string(), name.to_string()];
    let last = segments.len() - 1;
    out.push(format!(
        "/{}",
        [&segments[..last], &["*"]].concat().join("/")
    ));
    for i in 1..segments.len() {
        out.push(format!("/{}/**", segments[..i].join("/")));
    }
    out
}

/// Channels only the server publishes on.
pub fn is_server_only(channel: &str) -> bool {
    channel.ends_with("/user_list") || channel.ends_with("/user_changes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_usual_names() {
        for ok in ["/classes/4", "/courses/5/lessons/1", "/a", "/room_1/x-y"] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_dangerous_names() {
        for bad in [
            "",
            "/",
            "classes/4",
            "/classes/*",
            "/classes/**",
            "/classes/../4",
            "/classes/.",
            "/classes//4",
            "/classes/4/",
            "/classes/ 4",
            "/classes/4\n",
            "/clässes/4",
            "/meta/connect",
            "/service/x",
            "/a:b",
        ] {
            assert!(check(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(check(&format!("/{}", "a".repeat(300))).is_err());
    }

    #[test]
    fn finds_the_room_of_a_user_list_channel() {
        assert_eq!(
            room_of_user_list("/classes/4/user_list"),
            Some("/classes/4")
        );
        assert_eq!(room_of_user_list("/user_list"), None);
        assert_eq!(room_of_user_list("/classes/*/user_list"), None);
        assert_eq!(room_of_user_list("/classes/4"), None);
    }

    #[test]
    fn expands_a_channel_as_faye_does() {
        assert_eq!(expand("/a"), vec!["/**", "/a", "/*"]);
        assert_eq!(
            expand("/a/b/c"),
            vec!["/**", "/a/b/c", "/a/b/*", "/a/**", "/a/b/**"]
        );
    }
}
