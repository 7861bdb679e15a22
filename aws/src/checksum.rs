//! Object checksums in the form S3's `x-amz-checksum-*` headers carry.
//!
//! A presigned PUT signs the checksum header, so the uploader cannot change
//! it, and S3 recomputes the checksum over the body it receives: a corrupted
//! or substituted body is rejected instead of stored.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// Base64 of the SHA-256 digest of `data`, the `x-amz-checksum-sha256` value.
pub fn sha256_base64(data: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(data))
}

/// Base64 of the big-endian CRC32C of `data`, the `x-amz-checksum-crc32c` value.
///
/// Much cheaper than SHA-256 for large uploads and still catches corruption;
/// use SHA-256 when the value must also resist deliberate substitution.
pub fn crc32c_base64(data: &[u8]) -> String {
    STANDARD.encode(crc32c::crc32c(data).to_be_bytes())
}

/// Which checksum S3 should verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Sha256,
    Crc32c,
}

impl ChecksumAlgorithm {
    /// The value of `x-amz-checksum-algorithm` / `x-amz-sdk-checksum-algorithm`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Sha256 => "SHA256",
            ChecksumAlgorithm::Crc32c => "CRC32C",
        }
    }

    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
        }
    }

    /// The element name in CompleteMultipartUpload's `<Part>`.
    pub(crate) fn xml_element(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Sha256 => "ChecksumSHA256",
            ChecksumAlgorithm::Crc32c => "ChecksumCRC32C",
        }
    }
}

/// A checksum value (base64, as S3 wants it) and its algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub value: String,
}

impl Checksum {
    pub fn sha256(base64_value: impl Into<String>) -> Self {
        Self {
            algorithm: ChecksumAlgorithm::Sha256,
            value: base64_value.into(),
        }
    }

    pub fn crc32c(base64_value: impl Into<String>) -> Self {
        Self {
            algorithm: ChecksumAlgorithm::Crc32c,
            value: base64_value.into(),
        }
    }

    /// Computes the checksum of `data`.
    pub fn of(algorithm: ChecksumAlgorithm, data: &[u8]) -> Self {
        let value = match algorithm {
            ChecksumAlgorithm::Sha256 => sha256_base64(data),
            ChecksumAlgorithm::Crc32c => crc32c_base64(data),
        };
        Self { algorithm, value }
    }

    pub fn header_name(&self) -> &'static str {
        self.algorithm.header_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_and_abc() {
        assert_eq!(
            sha256_base64(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            sha256_base64(b"abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    #[test]
    fn crc32c_check_value() {
        // The CRC-32C catalogue check value for "123456789" is 0xE3069283.
        assert_eq!(
            crc32c_base64(b"123456789"),
            STANDARD.encode([0xE3, 0x06, 0x92, 0x83])
        );
        assert_eq!(crc32c_base64(b""), "AAAAAA==");
    }

    #[test]
    fn checksum_of_picks_header() {
        let c = Checksum::of(ChecksumAlgorithm::Crc32c, b"123456789");
        assert_eq!(c.header_name(), "x-amz-checksum-crc32c");
        assert_eq!(c.value, "4waSgw==");
    }
}
