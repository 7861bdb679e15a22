//! One error type for the whole pipeline.
//!
//! Hosts (the Lambda runtime, the CLI, tests) branch on the *class* and the
//! exit code, never on the message, so both are part of the contract and must
//! not change once released; messages are for humans and may.

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad command line: the caller's bug, not the image's.
    #[error("{0}")]
    Usage(String),
    /// The bytes are not an image format we accept (also text named `.jpg`).
    #[error("{0}")]
    UnsupportedFormat(String),
    /// A format we accept, but the data is truncated or malformed.
    #[error("{0}")]
    Corrupt(String),
    /// Refused before decoding pixels: too many bytes, too wide/tall or too many pixels.
    #[error("{0}")]
    OverLimits(String),
    /// Reading the input or writing outputs failed.
    #[error("{0}")]
    Io(String),
    /// A bug in the resizer (an encoder refusing our own buffers and the like).
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// Stable machine-readable name of the failure class.
    pub fn class(&self) -> &'static str {
        match self {
            Error::Usage(_) => "usage",
            Error::UnsupportedFormat(_) => "unsupported_format",
            Error::Corrupt(_) => "corrupt",
            Error::OverLimits(_) => "over_limits",
            Error::Io(_) => "io",
            Error::Internal(_) => "internal",
        }
    }

    /// Process exit code for the class; 0 is success, 1 is left to traps/panics
    /// of the runtime so a host can tell "the module refused" from "it crashed".
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::UnsupportedFormat(_) => 3,
            Error::Corrupt(_) => 4,
            Error::OverLimits(_) => 5,
            Error::Io(_) => 6,
            Error::Internal(_) => 7,
        }
    }

    /// The single JSON line written to stderr on failure.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            class: &'a str,
            message: String,
            exit_code: i32,
        }
        #[derive(Serialize)]
        struct Wrapper<'a> {
            error: Body<'a>,
        }
        let w = Wrapper {
            error: Body {
                class: self.class(),
                message: self.to_string(),
                exit_code: self.exit_code(),
            },
        };
        serde_json::to_string(&w).unwrap_or_else(|_| {
            format!(
                "{{\"error\":{{\"class\":\"{}\",\"message\":\"\"}}}}",
                self.class()
            )
        })
    }
}

impl From<image::ImageError> for Error {
    /// `image` mixes "unsupported" and "corrupt" under several variants; map
    /// them onto our classes so every decoder reports the same way.
    fn from(e: image::ImageError) -> Self {
        use image::ImageError as E;
        match e {
            E::Decoding(d) => Error::Corrupt(format!("decode: {d}")),
            E::Limits(l) => Error::OverLimits(format!("decoder limit: {l}")),
            E::Unsupported(u) => Error::UnsupportedFormat(format!("{u}")),
            E::IoError(io) => {
                if io.kind() == std::io::ErrorKind::UnexpectedEof {
                    Error::Corrupt(format!("truncated: {io}"))
                } else {
                    Error::Corrupt(format!("decode: {io}"))
                }
            }
            E::Encoding(e) => Error::Internal(format!("encode: {e}")),
            E::Parameter(p) => Error::Internal(format!("parameter: {p}")),
        }
    }
}

impl From<pixport_contract::LimitError> for Error {
    /// Over a limit is `over_limits`; a header stating a side of 0 is corrupt.
    fn from(e: pixport_contract::LimitError) -> Self {
        if e.is_over_limits() {
            Error::OverLimits(e.to_string())
        } else {
            Error::Corrupt(e.to_string())
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;
    use pixport_contract::ImageLimits;

    #[test]
    fn limit_errors_keep_their_class() {
        let l = ImageLimits::DEFAULT;
        let over = Error::from(l.check_dimensions(50_000, 50_000).unwrap_err());
        assert_eq!(over.class(), "over_limits");
        assert_eq!(over.to_string(), "50000x50000 exceeds max-dimension 20000");
        let bytes = Error::from(l.check_bytes(l.max_bytes + 1).unwrap_err());
        assert_eq!(bytes.class(), "over_limits");
        assert_eq!(
            Error::from(l.check_dimensions(0, 1).unwrap_err()).class(),
            "corrupt"
        );
    }

    #[test]
    fn classes_and_codes_are_stable() {
        let all = [
            (Error::Usage(String::new()), "usage", 2),
            (
                Error::UnsupportedFormat(String::new()),
                "unsupported_format",
                3,
            ),
            (Error::Corrupt(String::new()), "corrupt", 4),
            (Error::OverLimits(String::new()), "over_limits", 5),
            (Error::Io(String::new()), "io", 6),
            (Error::Internal(String::new()), "internal", 7),
        ];
        for (e, class, code) in all {
            assert_eq!(e.class(), class);
            assert_eq!(e.exit_code(), code);
        }
    }

    #[test]
    fn json_shape() {
        let v: serde_json::Value =
            serde_json::from_str(&Error::Corrupt("bad \"huffman\"".into()).to_json()).unwrap();
        assert_eq!(v["error"]["class"], "corrupt");
        assert_eq!(v["error"]["message"], "bad \"huffman\"");
        assert_eq!(v["error"]["exit_code"], 4);
    }
}
