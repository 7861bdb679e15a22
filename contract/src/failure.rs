//! Why a resize failed, as the row's public `failure_reason` says it.
//!
//! `failure_reason` is shown to clients, so it holds only a stable code and
//! a fixed message: `"<code>: <message>"`. The detail (S3 URLs naming the
//! bucket and so the account, Data API messages, wasm trap backtraces) goes
//! to the Lambda's log under the image id. The edge renders any stored
//! reason through `Failure::public_reason` too, so a row written before this
//! rule, or by hand, cannot leak either.

/// The public failure classes. The resizer's own classes map onto them;
/// anything unknown is `Internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Corrupt,
    OverLimits,
    UnsupportedFormat,
    Timeout,
    NotFound,
    Transient,
    Internal,
}

impl Failure {
    pub const ALL: [Failure; 7] = [
        Failure::Corrupt,
        Failure::OverLimits,
        Failure::UnsupportedFormat,
        Failure::Timeout,
        Failure::NotFound,
        Failure::Transient,
        Failure::Internal,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Failure::Corrupt => "corrupt",
            Failure::OverLimits => "over_limits",
            Failure::UnsupportedFormat => "unsupported_format",
            Failure::Timeout => "timeout",
            Failure::NotFound => "not_found",
            Failure::Transient => "transient",
            Failure::Internal => "internal",
        }
    }

    /// Fixed text: never built from an error's own message.
    pub fn message(self) -> &'static str {
        match self {
            Failure::Corrupt => "the image is corrupt or truncated",
            Failure::OverLimits => "the image is over the byte, dimension or pixel limits",
            Failure::UnsupportedFormat => "the image format is not supported",
            Failure::Timeout => "the image was not processed in time",
            Failure::NotFound => "the original was not found in storage",
            Failure::Transient => "storage or the database stayed unavailable",
            Failure::Internal => "the image could not be processed",
        }
    }

    /// The class an error names (the resizer's, or the host's own), mapped
    /// to a public one. Host-side classes that describe our own setup
    /// (`store`, `config`, `io`, `usage`, ...) are all `Internal`.
    pub fn from_class(class: &str) -> Self {
        Failure::ALL
            .into_iter()
            .find(|f| f.code() == class)
            .unwrap_or(Failure::Internal)
    }

    /// What a row's `failure_reason` holds: `"<code>: <message>"`.
    pub fn reason(self) -> String {
        format!("{}: {}", self.code(), self.message())
    }

    /// A stored reason as a client may see it: only its leading code is
    /// read, the rest is replaced by the fixed message.
    pub fn public_reason(stored: &str) -> String {
        let class = stored.split(':').next().unwrap_or_default().trim();
        Failure::from_class(class).reason()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_round_trip() {
        let codes: Vec<_> = Failure::ALL.iter().map(|f| f.code()).collect();
        assert_eq!(
            codes,
            [
                "corrupt",
                "over_limits",
                "unsupported_format",
                "timeout",
                "not_found",
                "transient",
                "internal"
            ]
        );
        for f in Failure::ALL {
            assert_eq!(Failure::from_class(f.code()), f);
            assert_eq!(Failure::public_reason(&f.reason()), f.reason());
        }
    }

    #[test]
    fn stored_detail_never_reaches_the_public_reason() {
        let leaky = [
            "store: S3 403 AccessDenied https://pixport-images-123456789012-eu-west-1.s3.amazonaws.com/originals/x",
            "internal: module trapped: wasm backtrace:\n 0: 0x1234 - resizer!decode",
            "transient: Data API: Cannot add or update a child row: a foreign key constraint fails (`pixport`.`image_tags`) (gave up after 12 attempts)",
            "config: DB_SECRET_ARN arn:aws:secretsmanager:eu-west-1:123456789012:secret:x",
            "no colon at all https://example.com",
        ];
        for stored in leaky {
            let public = Failure::public_reason(stored);
            assert!(
                Failure::ALL.iter().any(|f| f.reason() == public),
                "{public}"
            );
            for secret in ["http", "123456789012", "trapped", "pixport", "arn:"] {
                assert!(!public.contains(secret), "{public}");
            }
        }
        assert_eq!(
            Failure::public_reason("store: x"),
            "internal: the image could not be processed"
        );
        assert_eq!(
            Failure::public_reason("corrupt: decode: bad marker")
                .split(':')
                .next(),
            Some("corrupt")
        );
    }
}
