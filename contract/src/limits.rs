//! The limits an original must meet. The edge checks them on the file's head
//! before storing a multipart upload; a direct upload (`POST /uploads`) only
//! declares its size, so for it the resizer's checks on the decoded header
//! are the only ones. Both sides must hold the same numbers: the defaults
//! live here, and the Lambda hands every one to the resizer.

/// Bytes, pixels and pixels per side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    pub max_bytes: u64,
    pub max_pixels: u64,
    pub max_dimension: u32,
}

impl ImageLimits {
    /// The edge's `MAX_UPLOAD_BYTES`, `MAX_IMAGE_PIXELS` and
    /// `MAX_IMAGE_DIMENSION` defaults (wrangler.toml).
    pub const DEFAULT: ImageLimits = ImageLimits {
        max_bytes: 100_000_000,
        max_pixels: 100_000_000,
        max_dimension: 20_000,
    };

    /// The resizer's flags for these limits.
    pub fn resizer_args(&self) -> Vec<String> {
        vec![
            "--max-bytes".into(),
            self.max_bytes.to_string(),
            "--max-pixels".into(),
            self.max_pixels.to_string(),
            "--max-dimension".into(),
            self.max_dimension.to_string(),
        ]
    }
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_limit_becomes_a_resizer_flag() {
        let l = ImageLimits {
            max_bytes: 1,
            max_pixels: 2,
            max_dimension: 3,
        };
        assert_eq!(
            l.resizer_args(),
            [
                "--max-bytes",
                "1",
                "--max-pixels",
                "2",
                "--max-dimension",
                "3"
            ]
        );
    }
}
