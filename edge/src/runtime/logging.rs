//! Structured logs: `tracing` events as JSON lines on the Workers console,
//! where `wrangler tail` and Logpush pick them up.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

use tracing::Level;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Collects one formatted event and hands it to `console.log` when dropped.
pub struct ConsoleLine(Vec<u8>);

impl Write for ConsoleLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ConsoleLine {
    fn drop(&mut self) {
        let line = String::from_utf8_lossy(&self.0);
        let line = line.trim_end();
        if !line.is_empty() {
            worker::console_log!("{line}");
        }
    }
}

/// The most verbose level logged, as `tracing::Level` ordinals (error = 1
/// ... trace = 5); `info` until the isolate's config sets `LOG_LEVEL`.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(3);

fn ordinal(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// Sets the most verbose level logged (`LOG_LEVEL`). Each line is a
/// `console.log` call, which the runtime pays for in CPU (and Workers Logs
/// in lines): `warn` keeps refusals' causes and failures but drops the one
/// line per stored upload.
pub fn set_max_level(level: Level) {
    MAX_LEVEL.store(ordinal(level), Ordering::Relaxed);
}

pub fn init() {
    // No timestamps from the subscriber: its clock panics on wasm32, and the
    // Workers log pipeline stamps every line anyway.
    let lines = tracing_subscriber::fmt::layer()
        .json()
        .without_time()
        .with_ansi(false)
        .with_writer(|| ConsoleLine(Vec::new()))
        .with_filter(filter_fn(|meta| {
            ordinal(*meta.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
        }));
    let _ = tracing_subscriber::registry().with(lines).try_init();
}
