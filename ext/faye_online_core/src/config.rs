//! How a tracker is set up; the Ruby side builds this from `get_server`'s
//! options, `config/faye_online.yml` and the environment.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `redis://…` for a hot store shared by several processes; `None`
    /// keeps presence in this process's memory.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// Redis keys live under `/<namespace>/`.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// `mysql://…` or `sqlite://path`.
    pub database_url: String,
    /// A clientId not seen for this long is swept (ms).
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: i64,
    /// With a secret, every `auth` must carry a token the app signed with it.
    #[serde(default)]
    pub secret: Option<String>,
    /// Records waiting for SQL, at most (about 200 bytes each): a bound for
    /// a database that stays away. Past it, new records are dropped and
    /// counted in the log, never silently.
    #[serde(default = "default_max_pending_records")]
    pub max_pending_records: usize,
    /// How often the sweep runs (ms); 0 disables it.
    #[serde(default = "default_gc_interval_ms")]
    pub gc_interval_ms: i64,
    /// Publish the whole list on `<room>/user_list` at each change (the old
    /// gem's contract). Off, only `<room>/user_changes` carries changes, and
    /// a change costs the same in a room of any size.
    #[serde(default = "default_full_lists")]
    pub full_lists: bool,
    /// Faye's engine on Redis ([`crate::engine`]), shared by every process
    /// of the site; `None` leaves Faye's engine to the host.
    #[serde(default)]
    pub faye_engine: Option<FayeEngineSettings>,
}

/// Settings of Faye's engine on Redis (it uses `redis_url` and `namespace`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FayeEngineSettings {
    /// Faye's connection timeout (ms).
    pub timeout_ms: i64,
    /// How often the engine's garbage collector runs (ms).
    pub gc_ms: i64,
}

fn default_full_lists() -> bool {
    true
}

fn default_namespace() -> String {
    "faye".into()
}

fn default_session_timeout_ms() -> i64 {
    60_000
}

fn default_max_pending_records() -> usize {
    1_000_000
}

fn default_gc_interval_ms() -> i64 {
    5_000
}

impl Config {
    pub fn from_json(json: &str) -> Result<Config, String> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("invalid configuration: {e}"))?;
        Config::from_value(value)
    }

    /// Reads and checks a configuration: every check of the settings the
    /// core uses is here, whichever host builds them.
    pub fn from_value(value: serde_json::Value) -> Result<Config, String> {
        let config: Config =
            serde_json::from_value(value).map_err(|e| format!("invalid configuration: {e}"))?;
        if config.namespace.is_empty()
            || !config
                .namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "invalid namespace {:?}: use letters, digits, _ and -",
                config.namespace
            ));
        }
        if config.secret.as_deref().is_some_and(|s| s.len() < 16) {
            return Err("the secret must be at least 16 characters".into());
        }
        if config.session_timeout_ms < 1_000 {
            return Err("session timeout must be at least one second".into());
        }
        if let Some(engine) = &config.faye_engine {
            if config.redis_url.is_none() {
                return Err("Faye's engine on Redis needs a Redis URL".into());
            }
            if engine.timeout_ms < 1_000 || engine.gc_ms < 100 {
                return Err("Faye's engine needs a timeout of at least 1 s and a gc period of at least 0.1 s".into());
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_with_defaults() {
        let c = Config::from_json(r#"{"database_url":"sqlite://x"}"#).unwrap();
        assert_eq!(c.namespace, "faye");
        assert!(c.redis_url.is_none());
        assert!(Config::from_json(r#"{"database_url":"x","namespace":"a b"}"#).is_err());
        assert!(Config::from_json(r#"{"database_url":"x","nope":1}"#).is_err());
        assert!(Config::from_json("[").is_err());
    }
}
