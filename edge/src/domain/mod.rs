//! The image lifecycle, apart from HTTP and from the Workers runtime.
//!
//! - [`upload::Uploads`]: the one upload service (form, direct PUT,
//!   browser multipart);
//! - [`images::Images`]: reading, listing, editing and deleting images;
//! - [`sweep`]: the cron that settles what a crash left half made;
//! - [`webhook::Webhooks`]: endpoints, and delivering their events;
//! - [`ports`]: the traits the services need from S3 and the database,
//!   one per aggregate, implemented in `adapters`;
//! - [`error::Error`]: what can go wrong, in the domain's words (no status
//!   codes: `http::error` maps them).
//!
//! Nothing here names `worker` or `http`: every service runs natively over
//! the memory adapters in unit tests (`tests/module_graph.rs` checks).

pub mod auth;
pub mod delete;
pub mod delivery;
pub mod error;
pub mod fields;
pub mod grant;
pub mod hmac;
pub mod id;
pub mod identity;
pub mod images;
pub mod jwt;
pub mod limits;
pub mod model;
pub mod ports;
pub mod quota;
pub mod reprocess;
pub mod sniff;
pub mod sweep;
pub mod upload;
pub mod webhook;
