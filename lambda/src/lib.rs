//! pixport's resize Lambda: S3 `ObjectCreated` on `originals/<id>` ->
//! `resizer.wasm` under wasmtime -> `variants/<id>/<width>.<ext>` + row `ready`.

pub mod aws;
pub mod config;
pub mod error;
pub mod event;
pub mod handler;
pub mod invocation;
pub mod metrics;
pub mod ports;
pub mod retry;
pub mod wake;
pub mod wasi;
