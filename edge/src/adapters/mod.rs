//! The ports' implementations: S3 (`s3`) and the RDS Data API (`dataapi`,
//! `dataapi::webhooks`) through the runtime's `fetch` (`transport`),
//! webhook POSTs (`receiver`), the Cloudflare API's cache purge (`purge`),
//! the wake-up signal objects (`wake`), and
//! everything in memory for the native unit tests and fuzzing (`memory`).

pub mod dataapi;
pub mod jwks;
#[cfg(any(test, feature = "fuzz"))]
pub mod memory;
pub mod purge;
pub mod receiver;
pub mod s3;
pub mod transport;
pub mod wake;
