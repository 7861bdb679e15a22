use thiserror::Error;

/// Start-up failures; request-path failures are S3 errors returned to the client.
#[derive(Debug, Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("s3s-fs: {0}")]
    Fs(String),
    #[error("IAM policies: {0}")]
    Iam(#[from] pixport_local_iam::Error),
    #[error(transparent)]
    PortsEnv(#[from] pixport_local_env::Error),
}
