//! GIF: the logical screen, which is what the decoder allocates.

use crate::HeadError;
use crate::bytes::le16;

pub fn screen(b: &[u8]) -> Result<(u32, u32), HeadError> {
    let w = le16(b, 6).ok_or(HeadError::Truncated)?;
    let h = le16(b, 8).ok_or(HeadError::Truncated)?;
    Ok((u32::from(w), u32::from(h)))
}
