//! One module per resource. Each handler parses the request, calls one
//! domain service and renders what it returns.

pub mod browser;
pub mod delivery;
pub mod grants;
pub mod images;
pub mod reprocess;
pub mod system;
pub mod uploads;
pub mod webhook;
