//! IAM for the local AWS stand-ins: who each local access key is, and what
//! the policies of `deploy/template.yaml` let it do.
//!
//! `local/iam.py` resolves the template (CloudFormation tags, parameters,
//! the local bucket and ARNs) into one JSON file, `iam.json` in the stack's
//! state folder; the S3 and Data API stand-ins load it with
//! [`Identities::load`] and ask [`Principal::decide`] before serving a
//! request, so a permission the template lacks fails a local test the way
//! it would fail in AWS. Evaluation follows AWS's rules for identity-based
//! policies: default deny, an explicit `Deny` wins over any `Allow`,
//! `Action`/`NotAction` matched case-insensitively with `*` and `?`,
//! `Resource`/`NotResource` case-sensitively, and every `Condition` block
//! must hold (operators in [`Operator`]; any other is refused at load, not
//! ignored).
//!
//! [`Counters`] counts requests per principal and operation for the
//! stand-ins' `/__pixport/counters` endpoint.

mod counters;
mod error;
mod eval;
mod policy;

pub use counters::Counters;
pub use error::Error;
pub use eval::{Context, Decision, Request, wildcard_match};
pub use policy::{Effect, Identities, Operator, Principal, Statement};
