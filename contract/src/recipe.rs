//! What a resize makes: the widths, the quality and the formats, as one
//! string recorded in each row (`images.recipe`).
//!
//! A deployment changes its recipe by changing the Lambda's
//! `PIXPORT_WIDTHS`, `PIXPORT_QUALITY` or `PIXPORT_VARIANT_FORMATS`; rows
//! made by another recipe are then the ones a reprocess redoes
//! (docs/delivery.md, "Reprocess"). The string is canonical (widths and
//! formats in the order configured, the format set as it parses back), so
//! two deployments with the same settings record the same recipe.

use std::fmt;

use crate::outputs::OutputSet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    pub widths: Vec<u32>,
    pub quality: u8,
    pub formats: OutputSet,
}

/// `w=1920,640,320;q=82;f=auto,webp,avif:640`.
impl fmt::Display for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("w=")?;
        for (i, w) in self.widths.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{w}")?;
        }
        write!(f, ";q={};f={}", self.quality, self.formats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_recipe_reads_as_its_settings() {
        let r = Recipe {
            widths: vec![1920, 640, 320],
            quality: 82,
            formats: OutputSet::default(),
        };
        assert_eq!(r.to_string(), "w=1920,640,320;q=82;f=auto,webp,avif:640");
        let other = Recipe {
            widths: vec![800, 400],
            ..r.clone()
        };
        assert_ne!(other.to_string(), r.to_string());
    }
}
