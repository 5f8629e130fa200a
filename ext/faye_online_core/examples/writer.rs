//! The SQL writer's throughput, one transaction per record against one
//! transaction per batch, on the same database in one run (used by
//! `bin/bench`):
//!
//!     cargo run --release --example writer -- mysql://root@127.0.0.1/db CYCLES
//!     cargo run --release --example writer -- postgres://postgres@127.0.0.1/db CYCLES
//!
//! The database must hold faye-online's tables. Each cycle is what a user
//! joining and leaving a lesson's room writes: a login row, the room list,
//! the timer's start, a logout row, the timer's stop and the room list
//! again. Prints one JSON line: for each way, the seconds taken and the
//! CPU seconds the database server used (when it runs on this host: all
//! of MariaDB's `mariadbd`, or all of PostgreSQL's `postgres` processes).
//! A third run writes the same cycles in batches with the interval
//! ledger's rows of each (its attended interval and two engaged ones), so
//! that the cost of an interval row shows beside the rest.

use faye_online_core::durable::DurableStore;
use faye_online_core::ledger::{IntervalKind, Record};
use std::time::Instant;

/// The interval ledger's rows of each cycle: the tab's attended interval,
/// and two engaged ones (it went idle once, then left).
fn intervals(cycles: u64, tag: &str) -> Vec<Record> {
    let t0 = 1_700_000_000_000;
    (0..cycles)
        .flat_map(|i| {
            let at_ms = t0 + i as i64 * 1000;
            let row = |measure, started_ms: i64, ended_ms: i64, ended_by: &str| Record::Interval {
                uid: 1 + i % 200,
                time: format!("/bench/writer/lesson/{}", i % 10),
                client_id: format!("{tag}-{i}"),
                measure,
                started_ms,
                ended_ms,
                ended_by: ended_by.into(),
            };
            [
                row(IntervalKind::Attended, at_ms, at_ms + 500, "left"),
                row(IntervalKind::Engaged, at_ms, at_ms + 200, "idle"),
                row(IntervalKind::Engaged, at_ms + 300, at_ms + 500, "left"),
            ]
        })
        .collect()
}

fn records(cycles: u64, tag: &str) -> Vec<Record> {
    let t0 = 1_700_000_000_000;
    (0..cycles)
        .flat_map(|i| {
            let uid = 1 + i % 200;
            let room = format!("/bench/writer/room/{}", i % 10);
            let time = format!("/bench/writer/lesson/{}", i % 10);
            let client_id = format!("{tag}-{i}");
            let at_ms = t0 + i as i64 * 1000;
            [
                Record::Login {
                    status: 1,
                    uid,
                    at_ms,
                    time: time.clone(),
                    client_id: client_id.clone(),
                },
                Record::RoomJoin {
                    room: room.clone(),
                    uid,
                    uname: format!("user {uid}"),
                },
                Record::TimerStart {
                    uid,
                    time: time.clone(),
                    at_ms,
                },
                Record::Login {
                    status: 0,
                    uid,
                    at_ms: at_ms + 500,
                    time: time.clone(),
                    client_id,
                },
                Record::TimerStop {
                    uid,
                    time,
                    started_ms: at_ms,
                    credited_ms: 500,
                    restored: false,
                },
                Record::RoomLeave { room, uid },
            ]
        })
        .collect()
}

/// CPU seconds used so far by the processes called one of `names` on
/// this host (PostgreSQL serves each connection from a process of its own).
fn database_cpu(names: &[&str]) -> Option<f64> {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if names.contains(&comm.trim()) {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let fields: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .collect();
            let ticks_of = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
            if let (Some(utime), Some(stime)) = (ticks_of(11), ticks_of(12)) {
                *total.get_or_insert(0.0) += (utime + stime) / ticks;
            }
        }
    }
    total
}

fn measure(names: &[&str], f: impl FnOnce()) -> String {
    let cpu = database_cpu(names);
    let started = Instant::now();
    f();
    let seconds = started.elapsed().as_secs_f64();
    let db_cpu = match (cpu, database_cpu(names)) {
        (Some(a), Some(b)) => format!("{:.3}", b - a),
        _ => "null".into(),
    };
    format!(r#"{{"seconds":{seconds:.3},"db_cpu_seconds":{db_cpu}}}"#)
}

/// Seconds and the database's CPU seconds (if known) of `f`.
fn measure_seconds(names: &[&str], f: impl FnOnce()) -> (f64, Option<f64>) {
    let cpu = database_cpu(names);
    let started = Instant::now();
    f();
    let seconds = started.elapsed().as_secs_f64();
    (seconds, cpu.zip(database_cpu(names)).map(|(a, b)| b - a))
}

/// The median run (by seconds) as the JSON `measure` prints.
fn median_json(mut runs: Vec<(f64, Option<f64>)>) -> String {
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (seconds, cpu) = runs[runs.len() / 2];
    let cpu = cpu.map_or("null".into(), |c| format!("{c:.3}"));
    format!(r#"{{"seconds":{seconds:.3},"db_cpu_seconds":{cpu}}}"#)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect("usage: writer DATABASE_URL [CYCLES]");
    let cycles: u64 = args.next().map_or(1000, |n| n.parse().expect("CYCLES"));
    let mut store = DurableStore::new(&url);
    let names: &[&str] = if url.starts_with("postgres") {
        &["postgres"]
    } else {
        &["mariadbd", "mysqld"]
    };

    let single = records(cycles, "single");
    let one_by_one = measure(names, || {
        for record in &single {
            store.apply(record).expect("write");
        }
    });
    // Batches without and with the ledger's rows, in alternating rounds
    // (the first round of each pays for warming the server's caches): the
    // median round of each.
    let mut without = Vec::new();
    let mut with = Vec::new();
    let mut interval_rows = 0;
    for round in 0..3 {
        let batched = records(cycles, &format!("batched{round}"));
        without.push(measure_seconds(names, || {
            for batch in batched.chunks(256) {
                store.apply_batch(batch, None).expect("write");
            }
        }));
        // The same cycles with their intervals, each cycle's rows together.
        let tag = format!("ledger{round}");
        let with_ledger: Vec<Record> = records(cycles, &tag)
            .chunks(6)
            .zip(intervals(cycles, &tag).chunks(3))
            .flat_map(|(cycle, rows)| cycle.iter().chain(rows).cloned())
            .collect();
        interval_rows = with_ledger.len() - batched.len();
        with.push(measure_seconds(names, || {
            for batch in with_ledger.chunks(256 * 9 / 6) {
                store.apply_batch(batch, None).expect("write");
            }
        }));
    }
    let in_batches = median_json(without);
    let ledger = median_json(with);
    println!(
        r#"{{"cycles":{cycles},"records":{},"one_by_one":{one_by_one},"in_batches":{in_batches},"intervals":{interval_rows},"with_ledger":{ledger}}}"#,
        single.len()
    );
}
