//! A Bayeux message as the tracker sees it, and its verdict.

use crate::error::BayeuxError;
use serde_json::Value;

/// The parts of an incoming message that matter to presence. The host
/// converts its own message object into this; `auth` is `Err` when the
/// host could not even convert it (wrong types, too big, not UTF-8).
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    pub channel: String,
    pub client_id: Option<String>,
    pub auth: Option<Result<Value, BayeuxError>>,
    /// The channels of a `/meta/subscribe`.
    pub subscription: Vec<String>,
    /// On [`crate::channel::PAGE_STATE_CHANNEL`]: `data.state`, as sent
    /// (`None` when missing or not a string).
    pub page_state: Option<String>,
    /// On `/meta/disconnect`: the page is going away (`ext.faye_online_leave`).
    pub closing: bool,
}

/// What the host does with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let Faye handle it as usual.
    Pass,
    /// Refuse it: set `message["error"]` to this.
    Refuse(BayeuxError),
}

/// Faye's clientIds are base-36 strings of about 31 characters.
pub fn valid_client_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Incoming {
    /// Parses a whole JSON message (the fuzzing and test entry point; the
    /// Ruby binding builds `Incoming` from a Hash instead).
    pub fn from_json(bytes: &[u8]) -> Result<Incoming, BayeuxError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|_| BayeuxError::bad_request("", "message is not valid JSON"))?;
        let Value::Object(map) = value else {
            return Err(BayeuxError::bad_request("", "message must be an object"));
        };
        let channel = match map.get("channel") {
            Some(Value::String(c)) => c.clone(),
            _ => return Err(BayeuxError::bad_request("channel", "is missing")),
        };
        let client_id = match map.get("clientId") {
            Some(Value::String(c)) => Some(c.clone()),
            _ => None,
        };
        let auth = map.get("auth").map(|a| Ok(a.clone()));
        let subscription = match map.get("subscription") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let page_state = map
            .get("data")
            .and_then(|d| d.get("state"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let closing = map
            .get("ext")
            .and_then(|e| e.get("faye_online_leave"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Incoming {
            channel,
            client_id,
            auth,
            subscription,
            page_state,
            closing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids() {
        assert!(valid_client_id("sqq4oxlwhj84zw92n0e592j8iq989yy"));
        assert!(!valid_client_id(""));
        assert!(!valid_client_id("a b"));
        assert!(!valid_client_id(&"a".repeat(65)));
    }

    #[test]
    fn parses_json_messages() {
        let m = Incoming::from_json(br#"{"channel":"/meta/connect","clientId":"abc","auth":{}}"#)
            .unwrap();
        assert_eq!(m.channel, "/meta/connect");
        assert_eq!(m.client_id.as_deref(), Some("abc"));
        assert!(m.auth.is_some());
        assert!(Incoming::from_json(b"[]").is_err());
        assert!(Incoming::from_json(b"\xff").is_err());
        assert!(Incoming::from_json(br#"{"channel":5}"#).is_err());
    }
}
