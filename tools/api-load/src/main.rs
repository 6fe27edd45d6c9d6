//! Load on `GET /api/projects/{id}` (a benchmark, not a test): `API_CONNECTIONS` keep-alive
//! connections for `API_SECONDS` seconds against a running console on loopback, ids drawn at
//! random from `1..=API_IDS`, after one second of warm-up. Prints one line: the mode the API
//! answered in, requests, requests/s, p50 and p99 latency. Any answer but 200 fails the run.
//! `API_WRITE=1` replaces each row instead (`PUT`, a school project whose grade changes with
//! every write), for the cost of a write — with or without the change capture.
//! `scripts/bench-api.sh` builds this, starts the console and alternates legacy and STI rounds.

use std::time::{Duration, Instant};

fn setting<T: std::str::FromStr>(name: &str, default: Option<T>) -> T {
    match std::env::var(name) {
        Ok(value) => value.parse().unwrap_or_else(|_| panic!("{name}={value} is not valid")),
        Err(_) => default.unwrap_or_else(|| panic!("{name} is required")),
    }
}

/// xorshift64*: ids spread over the table, the same sequence every run.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

struct Outcome {
    latencies_us: Vec<u32>,
    mode: String,
}

async fn connection(
    n: u64,
    url: String,
    key: String,
    ids: u64,
    write: bool,
    warm_until: Instant,
    end: Instant,
) -> Outcome {
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("a client");
    let mut state = 0x9e37_79b9_7f4a_7c15 ^ (n + 1);
    let mut latencies_us = Vec::with_capacity(100_000);
    let mut mode = String::new();
    loop {
        let start = Instant::now();
        if start >= end {
            break;
        }
        let id = next(&mut state) % ids + 1;
        let request = if write {
            let body = format!(
                r#"{{"study_type":"school","title":"load {n}","owner_id":7,"school_name":"Load High","grade":{}}}"#,
                1 + next(&mut state) % 13
            );
            client
                .put(format!("{url}/api/projects/{id}"))
                .header("content-type", "application/json")
                .body(body)
        } else {
            client.get(format!("{url}/api/projects/{id}"))
        };
        let response = request.bearer_auth(&key).send().await.expect("the console answers");
        let status = response.status();
        if mode.is_empty() {
            mode =
                response.headers().get("x-sti-mode").and_then(|v| v.to_str().ok()).unwrap_or("?").to_owned();
        }
        let body = response.bytes().await.expect("a whole body");
        assert_eq!(status.as_u16(), 200, "/api/projects/{id}: {}", String::from_utf8_lossy(&body));
        if start >= warm_until {
            latencies_us.push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
    }
    Outcome { latencies_us, mode }
}

fn main() {
    let url: String = setting("API_URL", None);
    let key: String = setting("API_KEY", None);
    let ids: u64 = setting("API_IDS", None);
    let connections: u64 = setting("API_CONNECTIONS", Some(8));
    let seconds: u64 = setting("API_SECONDS", Some(10));
    let write = setting::<u8>("API_WRITE", Some(0)) == 1;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let outcomes = runtime.block_on(async {
        let warm_until = Instant::now() + Duration::from_secs(1);
        let end = warm_until + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..connections)
            .map(|n| tokio::spawn(connection(n, url.clone(), key.clone(), ids, write, warm_until, end)))
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.expect("a connection finished"));
        }
        outcomes
    });
    let mode = outcomes.first().map(|o| o.mode.clone()).unwrap_or_default();
    let mut all: Vec<u32> = outcomes.into_iter().flat_map(|o| o.latencies_us).collect();
    all.sort_unstable();
    let percentile = |p: f64| all[((all.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0;
    println!(
        "mode={mode} connections={connections} requests={} rps={:.0} p50_ms={:.3} p99_ms={:.3}",
        all.len(),
        all.len() as f64 / seconds as f64,
        percentile(0.50),
        percentile(0.99)
    );
}
