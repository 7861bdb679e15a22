//! Every variant is sRGB. A phone's Display P3 photo or a camera's Adobe RGB
//! one carries a profile saying how to read its numbers; a browser that
//! drops or ignores it shows the picture washed out, and a profile kept on
//! a stripped variant is one more thing to trust. So the source's RGB
//! profile is converted to sRGB (moxcms, relative colorimetric, as
//! littleCMS by default) and the variants carry no profile at all.
//!
//! The conversion runs on each resized variant, not on the decoded image:
//! at 12 MP that is ~2.7 MP of pixels instead of 6 (JPEG shrink-on-load) or
//! 12. A profile that is sRGB in all but name (most cameras embed one) costs
//! nothing: it is recognised by converting a probe grid.

use std::sync::Arc;

use moxcms::{
    ColorProfile, DataColorSpace, Layout as CmsLayout, RenderingIntent, Transform8BitExecutor,
    TransformOptions,
};

use crate::decode::{Layout, Pixels};
use crate::error::{Error, Result};

/// A conversion of one source's pixels to sRGB.
pub struct ToSrgb {
    transform: Arc<Transform8BitExecutor>,
    layout: Layout,
}

impl std::fmt::Debug for ToSrgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToSrgb")
            .field("layout", &self.layout)
            .finish()
    }
}

fn options() -> TransformOptions {
    TransformOptions {
        rendering_intent: RenderingIntent::RelativeColorimetric,
        ..TransformOptions::default()
    }
}

impl ToSrgb {
    /// `None` when there is nothing to convert: grey pixels, a profile that
    /// is not RGB, one moxcms cannot read (the caller then keeps it on the
    /// outputs as before), or one that is already sRGB.
    pub fn new(icc: &[u8], layout: Layout) -> Option<ToSrgb> {
        let cms_layout = match layout {
            Layout::Gray => return None,
            Layout::Rgb => CmsLayout::Rgb,
            Layout::Rgba => CmsLayout::Rgba,
        };
        let profile = ColorProfile::new_from_slice(icc).ok()?;
        if profile.color_space != DataColorSpace::Rgb {
            return None;
        }
        let srgb = ColorProfile::new_srgb();
        let transform = profile
            .create_transform_8bit(cms_layout, &srgb, cms_layout, options())
            .ok()?;
        let t = ToSrgb { transform, layout };
        (!t.is_identity()).then_some(t)
    }

    /// Whether the conversion moves no colour of a 9 x 9 x 9 grid by more
    /// than one level (an sRGB profile, or one rounding differently).
    fn is_identity(&self) -> bool {
        let channels = self.layout.channels();
        let levels = [0u8, 32, 64, 96, 128, 160, 192, 224, 255];
        let mut grid = Vec::with_capacity(levels.len().pow(3) * channels);
        for r in levels {
            for g in levels {
                for b in levels {
                    grid.extend_from_slice(&[r, g, b, 255][..channels]);
                }
            }
        }
        let mut out = vec![0u8; grid.len()];
        self.transform.transform(&grid, &mut out).is_ok()
            && grid.iter().zip(&out).all(|(a, b)| a.abs_diff(*b) <= 1)
    }

    /// The same pixels in sRGB, interleaved (a JPEG's planes are converted
    /// to RGB first: colour management needs all three channels together).
    pub fn apply(&self, pixels: Pixels) -> Result<Pixels> {
        let src = match pixels {
            Pixels::Planar(ycc) => ycc.to_rgb(),
            Pixels::Packed(px) => px,
        };
        let mut dst = vec![0u8; src.len()];
        self.transform
            .transform(&src, &mut dst)
            .map_err(|e| Error::Internal(format!("colour conversion: {e}")))?;
        Ok(Pixels::Packed(dst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn icc(profile: &ColorProfile) -> Vec<u8> {
        profile.encode().unwrap()
    }

    #[test]
    fn srgb_profile_is_left_alone() {
        assert!(ToSrgb::new(&icc(&ColorProfile::new_srgb()), Layout::Rgb).is_none());
    }

    #[test]
    fn grey_and_garbage_are_left_alone() {
        let p3 = icc(&ColorProfile::new_display_p3());
        assert!(ToSrgb::new(&p3, Layout::Gray).is_none());
        assert!(ToSrgb::new(b"not a profile at all", Layout::Rgb).is_none());
        assert!(ToSrgb::new(&p3[..p3.len() / 2], Layout::Rgb).is_none());
    }

    #[test]
    fn p3_red_is_more_saturated_than_srgb_can_show() {
        let t = ToSrgb::new(&icc(&ColorProfile::new_display_p3()), Layout::Rgb).unwrap();
        let Pixels::Packed(px) = t
            .apply(Pixels::Packed(vec![255, 0, 0, 128, 128, 128]))
            .unwrap()
        else {
            panic!("packed")
        };
        // P3's red is outside sRGB: clipped to full red with green and blue at 0.
        assert_eq!(px[0], 255);
        assert!(px[1] == 0 && px[2] == 0, "{px:?}");
        // Both share the D65 white and the sRGB curve: greys stay grey.
        assert!(px[3..].iter().all(|&v| v.abs_diff(128) <= 1), "{px:?}");
    }

    #[test]
    fn adobe_rgb_green_moves_and_alpha_is_kept() {
        let t = ToSrgb::new(&icc(&ColorProfile::new_adobe_rgb()), Layout::Rgba).unwrap();
        let Pixels::Packed(px) = t.apply(Pixels::Packed(vec![60, 120, 60, 77])).unwrap() else {
            panic!("packed")
        };
        assert_eq!(px[3], 77);
        // A mid Adobe green is a stronger green in sRGB numbers.
        assert!(px[1] > 120 && px[0] < 60, "{px:?}");
    }
}
