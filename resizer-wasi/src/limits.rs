//! Size limits, checked on the header before any pixel buffer exists.
//!
//! A 50,000 x 50,000 header costs nothing to send but 7.5 GB to decode, so
//! every check here runs on the numbers the probe read, never on pixels.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input file.
    pub max_bytes: u64,
    /// Largest accepted width * height.
    pub max_pixels: u64,
    /// Largest accepted width or height.
    pub max_dimension: u32,
}

impl Default for Limits {
    /// 100 MP covers every current phone and camera (a 48 MP phone photo is
    /// 8000x6000); 64 MiB covers the largest JPEG/PNG they write. Worst case
    /// RGBA decode at the limit is 400 MB, within a 1 GB host cap.
    fn default() -> Self {
        Limits {
            max_bytes: 64 << 20,
            max_pixels: 100_000_000,
            max_dimension: 20_000,
        }
    }
}

impl Limits {
    pub fn check_bytes(&self, len: u64) -> Result<()> {
        if len > self.max_bytes {
            return Err(Error::OverLimits(format!(
                "input is larger than max-bytes {} bytes",
                self.max_bytes
            )));
        }
        Ok(())
    }

    pub fn check_dimensions(&self, width: u32, height: u32) -> Result<()> {
        if width == 0 || height == 0 {
            return Err(Error::Corrupt(format!(
                "image header says {width}x{height}"
            )));
        }
        if width > self.max_dimension || height > self.max_dimension {
            return Err(Error::OverLimits(format!(
                "{width}x{height} exceeds max-dimension {}",
                self.max_dimension
            )));
        }
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels {
            return Err(Error::OverLimits(format!(
                "{width}x{height} = {pixels} pixels exceeds max-pixels {}",
                self.max_pixels
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bomb_refused() {
        let l = Limits::default();
        assert_eq!(
            l.check_dimensions(50_000, 50_000).unwrap_err().class(),
            "over_limits"
        );
        assert_eq!(
            l.check_dimensions(12_000, 12_000).unwrap_err().class(),
            "over_limits"
        );
        l.check_dimensions(8000, 6000).unwrap();
    }

    #[test]
    fn zero_is_corrupt() {
        assert_eq!(
            Limits::default()
                .check_dimensions(0, 10)
                .unwrap_err()
                .class(),
            "corrupt"
        );
    }

    #[test]
    fn bytes() {
        let l = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        l.check_bytes(10).unwrap();
        assert_eq!(l.check_bytes(11).unwrap_err().class(), "over_limits");
    }
}
