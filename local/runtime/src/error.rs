use thiserror::Error;

/// Start-up failures; request-path failures are Lambda-style JSON errors.
#[derive(Debug, Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error(transparent)]
    PortsEnv(#[from] pixport_local_env::Error),
}
