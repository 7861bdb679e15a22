//! Structured logs: `tracing` events as JSON lines on the Workers console,
//! where `wrangler tail` and Logpush pick them up.

use std::io::Write;

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

pub fn init() {
    // No timestamps from the subscriber: its clock panics on wasm32, and the
    // Workers log pipeline stamps every line anyway.
    let _ = tracing_subscriber::fmt()
        .json()
        .without_time()
        .with_ansi(false)
        .with_writer(|| ConsoleLine(Vec::new()))
        .try_init();
}
