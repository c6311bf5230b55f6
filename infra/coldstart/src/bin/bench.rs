//! `coldstart-bench [--runs N] [--json FILE] NAME=BINARY:EVENT ...`
//!
//! Serves a minimal Lambda Runtime API on 127.0.0.1 and starts each binary N times, in turn
//! (so every binary sees the same machine noise), each round starting one binary further on. For each start it records the time from just
//! before `exec` to the first `GET …/invocation/next` (init done) and to the response or error
//! for the first event (first real response), then kills the process. Prints medians and p90s,
//! and each one's ratio to the first binary named (the baseline).
//!
//! It also records the CPU time the process has used at each of those two moments (the sum of
//! its threads' `/proc/<pid>/task/*/schedstat`, in nanoseconds). Wall time to the first
//! response includes waiting on the backend (moto here, a Python server much slower than
//! DynamoDB); CPU time is the function's own work, which is what a cold start could move from
//! init into its first request.
//!
//! Then it hands the same event over again, as a second invocation of the now warm process,
//! and records that request's CPU time too. The first request's CPU less the second's is what
//! the first request pays for being first (clients built on first use, connections opened):
//! the cost a cold start moved out of init, if it moved any.
//!
//! A second table sets each first response against the warm request: the first response's
//! time less the warm request's, in wall and CPU time, per start, is what being cold adds to
//! a first response (init and the first request's extra work) with the request's own work,
//! backend included, taken out. That is the figure to hold against the hello-world's for a
//! function whose request waits on a backend: the hello-world's request does nothing.
//!
//! Before the measured rounds every binary's pages are dropped from the page cache and the
//! binary is started once, unmeasured, so its pages come back from disk the way a fresh Lambda
//! sandbox reads its `bootstrap`. How a file came into the page cache changes how fast it
//! starts: a binary still cached as the linker wrote it starts 0.2–0.4 ms slower here than the
//! same file read from disk or copied (docs/benchmarks.md, "Cold start, session 9"), and by
//! more the larger it is, so without this step the figures would depend on when each binary
//! was last built.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Default)]
struct Run {
    event: Bytes,
    request_id: String,
    started: Option<Instant>,
    pid: Option<u32>,
    init_done: Option<(Duration, Duration)>,
    answered: Option<(Duration, Duration, &'static str)>,
    /// The second invocation: when it was handed over (wall, CPU), then its wall and CPU time.
    second_started: Option<(Instant, Duration)>,
    second: Option<(Duration, Duration)>,
}

/// CPU time used so far by every thread of `pid` (Linux); zero where there is no /proc.
fn cpu_time(pid: Option<u32>) -> Duration {
    let Some(pid) = pid else {
        return Duration::ZERO;
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let nanos = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// Writes out and drops the file's cached pages (Linux), so that its next start reads it from
/// disk: a fresh sandbox's state, whatever wrote the file.
fn drop_from_page_cache(path: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path)?;
    // Dirty pages (a binary just linked) are not dropped until written.
    file.sync_all()?;
    // SAFETY: a valid descriptor, the whole file, and an advice the call knows.
    match unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) } {
        0 => Ok(()),
        errno => Err(std::io::Error::from_raw_os_error(errno)),
    }
}

#[derive(Default)]
struct Shared {
    run: Mutex<Run>,
    done: Notify,
}

async fn next(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    let (event, id, handed) = {
        let mut run = s.run.lock().unwrap();
        let cpu = cpu_time(run.pid);
        let handed = if run.init_done.is_none() {
            run.init_done = run.started.map(|t| (t.elapsed(), cpu));
            true
        } else if run.second_started.is_none() {
            run.second_started = Some((Instant::now(), cpu));
            run.request_id.push_str("-warm");
            true
        } else {
            false
        };
        (run.event.clone(), run.request_id.clone(), handed)
    };
    if !handed {
        // Two events per cold start: the process waits here until it is killed.
        std::future::pending::<()>().await;
    }
    let mut h = HeaderMap::new();
    h.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_str(&id).unwrap(),
    );
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    h.insert(
        "lambda-runtime-deadline-ms",
        HeaderValue::from_str(&deadline.to_string()).unwrap(),
    );
    h.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:000000000000:function:bench"),
    );
    h.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
    );
    (h, event)
}

fn answered(s: &Shared, how: &'static str) {
    let mut run = s.run.lock().unwrap();
    let cpu = cpu_time(run.pid);
    if run.answered.is_none() {
        run.answered = run.started.map(|t| (t.elapsed(), cpu, how));
        return;
    }
    if let Some((at, cpu_at_start)) = run.second_started {
        run.second
            .get_or_insert((at.elapsed(), cpu.saturating_sub(cpu_at_start)));
    }
    drop(run);
    s.done.notify_one();
}

async fn response(State(s): State<Arc<Shared>>, Path(_id): Path<String>) -> &'static str {
    answered(&s, "response");
    "{}"
}

async fn error(State(s): State<Arc<Shared>>, Path(_id): Path<String>) -> &'static str {
    answered(&s, "error");
    "{}"
}

async fn init_error(State(s): State<Arc<Shared>>, body: Bytes) -> &'static str {
    eprintln!("init error: {}", String::from_utf8_lossy(&body));
    s.run.lock().unwrap().answered = Some((Duration::ZERO, Duration::ZERO, "init error"));
    s.done.notify_one();
    "{}"
}

struct Target {
    name: String,
    binary: String,
    event: Bytes,
    init: Vec<f64>,
    first: Vec<f64>,
    init_cpu: Vec<f64>,
    first_cpu: Vec<f64>,
    /// CPU of the first request (first response less init) and of the second, warm one.
    request_cpu: Vec<f64>,
    warm_cpu: Vec<f64>,
    /// The warm request's wall time, and the first response less the warm request (wall, CPU).
    warm: Vec<f64>,
    cold: Vec<f64>,
    cold_cpu: Vec<f64>,
    outcome: &'static str,
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let (mut runs, mut json_out) = (30usize, None);
    let mut targets = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|n| n.parse().ok()).expect("--runs N"),
            "--json" => json_out = args.next(),
            spec => {
                let (name, rest) = spec.split_once('=').expect("NAME=BINARY:EVENT");
                let (binary, event) = rest.split_once(':').expect("NAME=BINARY:EVENT");
                targets.push(Target {
                    name: name.into(),
                    binary: binary.into(),
                    event: std::fs::read(event)
                        .unwrap_or_else(|e| panic!("{event}: {e}"))
                        .into(),
                    init: vec![],
                    first: vec![],
                    init_cpu: vec![],
                    first_cpu: vec![],
                    request_cpu: vec![],
                    warm_cpu: vec![],
                    warm: vec![],
                    cold: vec![],
                    cold_cpu: vec![],
                    outcome: "",
                });
            }
        }
    }
    assert!(!targets.is_empty(), "name at least the baseline");
    let shared = Arc::new(Shared::default());
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });

    for t in &targets {
        if let Err(e) = drop_from_page_cache(&t.binary) {
            eprintln!("{}: left in the page cache as it is ({e})", t.binary);
        }
    }
    let n = targets.len();
    // Round 0 is the unmeasured start that reads each binary back from disk.
    for i in 0..=runs {
        // Each round starts one binary further on, so that every binary runs after every other
        // equally often: a start's time depends on what ran just before it.
        for k in 0..n {
            let t = &mut targets[(i + k) % n];
            *shared.run.lock().unwrap() = Run {
                event: t.event.clone(),
                request_id: format!("req-{i}"),
                ..Run::default()
            };
            let mut cmd = tokio::process::Command::new(&t.binary);
            cmd.env("AWS_LAMBDA_RUNTIME_API", &api)
                .env("AWS_LAMBDA_FUNCTION_NAME", &t.name)
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true);
            let notified = shared.done.notified();
            shared.run.lock().unwrap().started = Some(Instant::now());
            let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{}: {e}", t.binary));
            shared.run.lock().unwrap().pid = child.id();
            if tokio::time::timeout(Duration::from_secs(10), notified)
                .await
                .is_err()
            {
                panic!("{} did not answer its two events within 10 s", t.name);
            }
            let _ = child.kill().await;
            let run = shared.run.lock().unwrap();
            if i == 0 {
                continue;
            }
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let (first, first_cpu, how) = run.answered.expect("answered");
            let (init, init_cpu) = run.init_done.unwrap_or((first, first_cpu));
            t.init.push(ms(init));
            t.first.push(ms(first));
            t.init_cpu.push(ms(init_cpu));
            t.first_cpu.push(ms(first_cpu));
            t.request_cpu.push(ms(first_cpu.saturating_sub(init_cpu)));
            let (warm, warm_cpu) = run.second.unwrap_or_default();
            t.warm_cpu.push(ms(warm_cpu));
            t.warm.push(ms(warm));
            t.cold.push(ms(first) - ms(warm));
            t.cold_cpu.push(ms(first_cpu) - ms(warm_cpu));
            t.outcome = how;
        }
    }

    let base = (
        percentile(&targets[0].init, 0.5),
        percentile(&targets[0].first, 0.5),
        percentile(&targets[0].init_cpu, 0.5),
        percentile(&targets[0].first_cpu, 0.5),
    );
    println!(
        "{:<20} {:>9} {:>9} {:>7} {:>10} {:>10} {:>7} {:>9} {:>7} {:>10} {:>7} {:>9} {:>9}  first event answered with",
        "binary", "init p50", "init p90", "× base", "first p50", "first p90", "× base",
        "init cpu", "× base", "first cpu", "× base", "req1 cpu", "req2 cpu"
    );
    let cold_base = (
        percentile(&targets[0].cold, 0.5),
        percentile(&targets[0].cold_cpu, 0.5),
    );
    let mut json = Vec::new();
    for t in &targets {
        let (i50, i90, f50, f90) = (
            percentile(&t.init, 0.5),
            percentile(&t.init, 0.9),
            percentile(&t.first, 0.5),
            percentile(&t.first, 0.9),
        );
        let (ic50, fc50) = (percentile(&t.init_cpu, 0.5), percentile(&t.first_cpu, 0.5));
        let (r1, r2) = (
            percentile(&t.request_cpu, 0.5),
            percentile(&t.warm_cpu, 0.5),
        );
        println!(
            "{:<20} {:>7.2}ms {:>7.2}ms {:>7.2} {:>8.2}ms {:>8.2}ms {:>7.2} {:>7.2}ms {:>7.2} {:>8.2}ms {:>7.2} {:>7.2}ms {:>7.2}ms  {}",
            t.name,
            i50,
            i90,
            i50 / base.0,
            f50,
            f90,
            f50 / base.1,
            ic50,
            ic50 / base.2,
            fc50,
            fc50 / base.3,
            r1,
            r2,
            t.outcome
        );
        json.push(serde_json::json!({
            "name": t.name, "runs": runs, "init_ms_p50": i50, "init_ms_p90": i90, "init_ratio": i50 / base.0,
            "first_response_ms_p50": f50, "first_response_ms_p90": f90, "first_response_ratio": f50 / base.1,
            "init_cpu_ms_p50": ic50, "init_cpu_ratio": ic50 / base.2,
            "first_response_cpu_ms_p50": fc50, "first_response_cpu_ratio": fc50 / base.3,
            "first_request_cpu_ms_p50": r1, "warm_request_cpu_ms_p50": r2,
            "first_event_outcome": t.outcome,
            "warm_request_ms_p50": percentile(&t.warm, 0.5),
            "cold_ms_p50": percentile(&t.cold, 0.5), "cold_ratio": percentile(&t.cold, 0.5) / cold_base.0,
            "cold_cpu_ms_p50": percentile(&t.cold_cpu, 0.5), "cold_cpu_ratio": percentile(&t.cold_cpu, 0.5) / cold_base.1,
        }));
    }
    println!();
    println!("first response less the same request warm: what being cold adds to a first response");
    println!(
        "{:<20} {:>10} {:>9} {:>9} {:>7} {:>10} {:>9} {:>9} {:>7}",
        "binary",
        "first p50",
        "warm p50",
        "cold p50",
        "× base",
        "first cpu",
        "warm cpu",
        "cold cpu",
        "× base"
    );
    for t in &targets {
        let (cold, cold_cpu) = (percentile(&t.cold, 0.5), percentile(&t.cold_cpu, 0.5));
        println!(
            "{:<20} {:>8.2}ms {:>7.2}ms {:>7.2}ms {:>7.2} {:>8.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}",
            t.name,
            percentile(&t.first, 0.5),
            percentile(&t.warm, 0.5),
            cold,
            cold / cold_base.0,
            percentile(&t.first_cpu, 0.5),
            percentile(&t.warm_cpu, 0.5),
            cold_cpu,
            cold_cpu / cold_base.1,
        );
    }
    if let Some(path) = json_out {
        std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    }
}
