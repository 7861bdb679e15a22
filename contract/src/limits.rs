//! The limits an original must meet. The edge checks them on the file's head
//! before storing a multipart upload; a direct upload (`POST /uploads`) only
//! declares its size, so for it the resizer's checks on the decoded header
//! are the only ones. Both sides must hold the same numbers: the defaults
//! live here, and the Lambda hands every one to the resizer.
//!
//! The checks run on the numbers a header states, never on pixels: a
//! 50,000 x 50,000 header costs nothing to send but 7.5 GB to decode.

use std::fmt;

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

impl ImageLimits {
    /// Refuses a file of more than `max_bytes`.
    pub fn check_bytes(&self, bytes: u64) -> Result<(), LimitError> {
        if bytes > self.max_bytes {
            return Err(LimitError::Bytes {
                max: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Refuses a header whose width or height is over `max_dimension`, or
    /// whose pixel count is over `max_pixels`; a side of 0 is corrupt.
    pub fn check_dimensions(&self, width: u32, height: u32) -> Result<(), LimitError> {
        if width == 0 || height == 0 {
            return Err(LimitError::ZeroSide { width, height });
        }
        if width > self.max_dimension || height > self.max_dimension {
            return Err(LimitError::Dimension {
                width,
                height,
                max: self.max_dimension,
            });
        }
        if u64::from(width) * u64::from(height) > self.max_pixels {
            return Err(LimitError::Pixels {
                width,
                height,
                max: self.max_pixels,
            });
        }
        Ok(())
    }
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why [`ImageLimits`] refused an image. The messages name each limit by its
/// resizer flag; hosts branch on the variant (over a limit or corrupt),
/// never on the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitError {
    /// More bytes than `max_bytes`.
    Bytes { max: u64 },
    /// A side longer than `max_dimension`.
    Dimension { width: u32, height: u32, max: u32 },
    /// More pixels than `max_pixels`.
    Pixels { width: u32, height: u32, max: u64 },
    /// A header stating a side of 0 pixels: corrupt rather than over a limit.
    ZeroSide { width: u32, height: u32 },
}

impl LimitError {
    /// Over a limit (the `over_limits` failure), as opposed to corrupt.
    pub fn is_over_limits(&self) -> bool {
        !matches!(self, LimitError::ZeroSide { .. })
    }
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LimitError::Bytes { max } => write!(f, "input is larger than max-bytes {max} bytes"),
            LimitError::Dimension { width, height, max } => {
                write!(f, "{width}x{height} exceeds max-dimension {max}")
            }
            LimitError::Pixels { width, height, max } => write!(
                f,
                "{width}x{height} = {} pixels exceeds max-pixels {max}",
                u64::from(width) * u64::from(height)
            ),
            LimitError::ZeroSide { width, height } => {
                write!(f, "image header says {width}x{height}")
            }
        }
    }
}

impl std::error::Error for LimitError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bomb_refused_before_any_pixel() {
        let l = ImageLimits::DEFAULT;
        assert_eq!(
            l.check_dimensions(50_000, 50_000),
            Err(LimitError::Dimension {
                width: 50_000,
                height: 50_000,
                max: 20_000
            })
        );
        let e = l.check_dimensions(12_000, 12_000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "12000x12000 = 144000000 pixels exceeds max-pixels 100000000"
        );
        assert!(e.is_over_limits());
        assert_eq!(l.check_dimensions(8000, 6000), Ok(()));
        assert_eq!(l.check_dimensions(20_000, 5000), Ok(()), "at the limits");
        assert!(l.check_dimensions(20_001, 1).is_err());
    }

    #[test]
    fn a_zero_side_is_corrupt_not_over_limits() {
        let e = ImageLimits::DEFAULT.check_dimensions(0, 10).unwrap_err();
        assert_eq!(
            e,
            LimitError::ZeroSide {
                width: 0,
                height: 10
            }
        );
        assert!(!e.is_over_limits());
    }

    #[test]
    fn bytes_up_to_the_limit() {
        let l = ImageLimits {
            max_bytes: 10,
            ..ImageLimits::DEFAULT
        };
        assert_eq!(l.check_bytes(10), Ok(()));
        let e = l.check_bytes(11).unwrap_err();
        assert!(e.is_over_limits());
        assert_eq!(e.to_string(), "input is larger than max-bytes 10 bytes");
    }

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
