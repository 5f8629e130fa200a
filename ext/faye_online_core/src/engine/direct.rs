//! Publishing from a program that is not a Faye process.

use super::*;

/// Publishes one message (JSON) straight into Faye's engine on Redis for
/// a program that is not a Faye process (a Rails request, a job): the
/// engine's own script queues it for every subscriber of `channels` (the
/// names it matches) in every process, and tells their processes. Waits at
/// most `timeout` for Redis; a connection per URL is kept for the next
/// call. Returns how many clients it was queued for.
pub fn publish_direct(
    redis_url: &str,
    namespace: &str,
    message: &str,
    channels: &[String],
    cutoff_ms: i64,
    timeout: Duration,
) -> Result<i64, StoreError> {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static CONNECTIONS: OnceLock<Mutex<HashMap<String, Connection>>> = OnceLock::new();
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    let script = SCRIPT.get_or_init(|| Script::new(PUBLISH));
    let timeout = timeout.max(Duration::from_millis(10));
    let mut conn = match CONNECTIONS
        .get_or_init(Default::default)
        .lock()
        .remove(redis_url)
    {
        Some(conn) => conn,
        None => Client::open(redis_url)?.get_connection_with_timeout(timeout)?,
    };
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    let queued: i64 = script
        .arg(namespace)
        .arg(message)
        .arg(cutoff_ms)
        .arg(channels)
        .invoke(&mut conn)?;
    CONNECTIONS
        .get_or_init(Default::default)
        .lock()
        .insert(redis_url.to_owned(), conn);
    Ok(queued)
}
