//! The one retry loop of the core's threads: a store that is away is tried
//! again with a growing delay, and its failure and recovery are logged once.

use crate::error::StoreError;
use crate::outbox::{LogLevel, Outbox};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Runs `f` until it succeeds, backing off from 50 ms up to 5 s, logging the
/// first failure and the recovery; gives up (`None`) only when stopping.
pub(crate) fn retry_until_ok<T>(
    outbox: &Outbox,
    stopping: &AtomicBool,
    what: &str,
    mut f: impl FnMut() -> Result<T, StoreError>,
) -> Option<T> {
    let mut delay = Duration::from_millis(50);
    let mut failed = false;
    loop {
        match f() {
            Ok(v) => {
                if failed {
                    outbox.log(LogLevel::Info, format!("can {what} again"));
                }
                return Some(v);
            }
            Err(e) => {
                if !failed {
                    outbox.log(LogLevel::Warn, format!("cannot {what}, retrying: {e}"));
                    failed = true;
                }
                if stopping.load(Ordering::SeqCst) {
                    outbox.log(
                        LogLevel::Error,
                        format!("gave up to {what} at shutdown: {e}"),
                    );
                    return None;
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
