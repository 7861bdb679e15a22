use thiserror::Error;

/// Why a policy file could not be loaded. Request-time denials are not
/// errors but [`crate::Decision`]s.
#[derive(Debug, Error)]
pub enum Error {
    #[error("{0}: {1}")]
    Read(String, #[source] std::io::Error),
    #[error("{0}: not a pixport IAM file: {1}")]
    Parse(String, #[source] serde_json::Error),
    /// A statement this evaluator cannot evaluate exactly; refused so that
    /// nothing in the template is silently ignored.
    #[error("principal {principal}, statement {statement}: {message}")]
    Invalid {
        principal: String,
        statement: String,
        message: String,
    },
    #[error("access key {0} belongs to more than one principal")]
    DuplicateKey(String),
}
