//! The one request style: an operation builds its signed request against
//! a target (an S3 [`Bucket`](crate::s3::Bucket) or a Data API
//! [`Database`](crate::dataapi::Database), each bundling its endpoint
//! configuration and credentials) and reads its own response.
//!
//! A host needs one generic function to run any call:
//! `op.request(target, now)`, send it, `op.parse(status, headers, body)`.

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};

use crate::{Error, Service};

pub trait Operation {
    /// The service the request goes to; every failure names it.
    const SERVICE: Service;
    /// What the request is addressed to, with the credentials that sign it.
    type Target;
    type Output;

    /// The signed request, as of `now` (this crate never reads a clock).
    fn request(&self, target: &Self::Target, now: SystemTime) -> Result<Request<Bytes>, Error>;

    /// Reads the response the host got back for a request of this type.
    fn parse(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<Self::Output, Error>;
}
