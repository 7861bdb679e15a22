//! Glue to the Workers runtime that the rest builds on: the request body
//! as a stream (`body`), buffers that live in the JS heap (`payload`), the
//! isolate's upload memory budget (`budget`), time (`clock`), the rate
//! limiting bindings (`ratelimit`), the data centre's HTTP cache (`cache`)
//! and logs (`logging`).
//!
//! Nothing here knows images, HTTP routes or AWS: every module has a native
//! stand-in where it touches JavaScript, so the domain's unit tests run
//! outside a Worker.

pub mod body;
pub mod budget;
pub mod cache;
pub mod clock;
pub mod logging;
pub mod payload;
pub mod ratelimit;
pub mod webcrypto;
