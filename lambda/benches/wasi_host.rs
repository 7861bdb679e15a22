//! Benchmark child for `bench/resizer`: runs `resizer.wasm` (or `.cwasm`)
//! through the Lambda host's own `WasiRunner`, so the table shows the module
//! under the Rust wasmtime embedding that production uses.
//!
//! `wasi_host MODULE IMAGE` runs once (the parent times the whole process,
//! as one cold Lambda invocation); `wasi_host MODULE IMAGE REPEAT` does one
//! warm-up and REPEAT timed runs and prints `{"wall_ms": [...], "cpu_ms": [...]}`;
//! IMAGE `--version` runs the module without image work (the host's own start).
//! Arguments after REPEAT go to the module (e.g. `--formats auto,webp,avif:640`).
//!
//! `wasi_host --out FILE [--memory BYTES] [--timeout-ms MS] MODULE IMAGE [REPEAT] ...`
//! also writes what the host made of the last run to FILE, for
//! `tests/resizer/test_host_matrix.py`: the manifest (JSON, one line) and
//! the variants' bytes after it, or `{"error":{"class":...,"message":...}}`
//! (then the exit status is 0 too: the refusal is the result), and prints
//! each run's `{"wall_ms": [...]}`.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pixport_lambda::wasi::{RunLimits, WasiRunner};

/// CPU time of this thread (the module runs on it), from the scheduler's
/// nanosecond counter.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// What `--out` writes: the manifest line and the variants, or the error.
fn outcome(result: &pixport_lambda::error::Result<pixport_lambda::wasi::ResizeOutput>) -> Vec<u8> {
    match result {
        Ok(out) => {
            let mut buf = serde_json::to_vec(&out.manifest).unwrap_or_default();
            buf.push(b'\n');
            for p in &out.payloads {
                buf.extend_from_slice(p);
            }
            buf
        }
        Err(e) => {
            serde_json::json!({"error": {"class": e.failure().code(), "message": e.to_string()}})
                .to_string()
                .into_bytes()
        }
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut out_file = None;
    let mut limits = RunLimits {
        memory_bytes: 1 << 30,
        time: Duration::from_secs(60),
    };
    while args.len() >= 2 && args[0].starts_with("--") {
        let value = args.remove(1);
        let flag = args.remove(0);
        let number = || value.parse::<u64>().ok();
        match (flag.as_str(), number()) {
            ("--out", _) => out_file = Some(value),
            ("--memory", Some(n)) => limits.memory_bytes = n as usize,
            ("--timeout-ms", Some(n)) => limits.time = Duration::from_millis(n),
            _ => {
                eprintln!("bad option {flag} {value}");
                return ExitCode::from(2);
            }
        }
    }
    let [module, image, rest @ ..] = args.as_slice() else {
        eprintln!("usage: wasi_host MODULE IMAGE [REPEAT]");
        return ExitCode::from(2);
    };
    let repeat: usize = rest.first().and_then(|r| r.parse().ok()).unwrap_or(0);
    let runner = match WasiRunner::load(Path::new(module)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (input, argv) = if image == "--version" {
        (Bytes::new(), vec!["--version".to_string()])
    } else {
        match std::fs::read(image) {
            Ok(b) => (Bytes::from(b), rest.iter().skip(1).cloned().collect()),
            Err(e) => {
                eprintln!("{image}: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let version_only = image == "--version";
    // `--version` prints no manifest, so only the image runs are checked.
    let once = || match runner.run(input.clone(), &argv, &limits) {
        Err(_) if version_only => Ok(()),
        other => other.map(|_| ()),
    };
    if let Some(path) = &out_file {
        // Every run must give the same result; the file holds the last one.
        let mut last = None;
        let mut wall = Vec::new();
        for _ in 0..repeat.max(1) {
            let t = Instant::now();
            let got = outcome(&runner.run(input.clone(), &argv, &limits));
            wall.push(t.elapsed().as_secs_f64() * 1000.0);
            if last.as_ref().is_some_and(|l| *l != got) {
                eprintln!("run: two runs of the same input differ");
                return ExitCode::FAILURE;
            }
            last = Some(got);
        }
        if let Err(e) = std::fs::write(path, last.unwrap_or_default()) {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
        println!("{}", serde_json::json!({ "wall_ms": wall }));
        return ExitCode::SUCCESS;
    }
    if let Err(e) = once() {
        eprintln!("run: {e}");
        return ExitCode::FAILURE;
    }
    if repeat == 0 {
        return ExitCode::SUCCESS;
    }
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let (t, c) = (Instant::now(), thread_cpu());
        if let Err(e) = once() {
            eprintln!("run: {e}");
            return ExitCode::FAILURE;
        }
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
        cpu.push((thread_cpu() - c).as_secs_f64() * 1000.0);
    }
    println!("{}", serde_json::json!({"wall_ms": wall, "cpu_ms": cpu}));
    ExitCode::SUCCESS
}
