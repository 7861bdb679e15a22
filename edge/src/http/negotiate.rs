//! Picks which stored format of a variant a request gets, from its `Accept`.
//!
//! Image CDNs that answer `*/*` with WebP or AVIF hand modern formats to
//! clients that never said they decode them, and a shared cache then serves
//! that choice to everyone (the "cached wrong format" reports of imgproxy and
//! weserv users). So a modern format is sent only to a request that names its
//! media type; the universal formats (JPEG, PNG) also match `image/*` and
//! `*/*`. Among what the request accepts, the highest `q` wins and ties go to
//! the smallest files: AVIF, then WebP, then JPEG, then PNG.

/// One format the server holds for the requested width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer<'a> {
    /// `type/subtype`, lower case.
    pub media_type: &'a str,
    /// Whether only an exact `type/subtype` range in `Accept` selects it.
    pub named_only: bool,
}

/// One media range of an `Accept` header with its weight in thousandths.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Range {
    kind: String,
    subtype: String,
    q: u16,
}

/// The index in `offers` (ordered by the server's preference) of what to
/// send, or `None` when the request accepts none of them. A missing or blank
/// `Accept` accepts anything, which selects only a universal format.
pub fn choose(accept: Option<&str>, offers: &[Offer<'_>]) -> Option<usize> {
    let ranges = match accept.map(str::trim).filter(|a| !a.is_empty()) {
        Some(a) => parse(a),
        None => parse("*/*"),
    };
    let mut best: Option<(usize, u16)> = None;
    for (i, offer) in offers.iter().enumerate() {
        let q = weight(&ranges, offer);
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((i, q));
        }
    }
    best.map(|(i, _)| i)
}

/// The weight of the most specific range that matches `offer` (RFC 9110
/// 12.5.1); 0 when none does.
fn weight(ranges: &[Range], offer: &Offer<'_>) -> u16 {
    let Some((kind, subtype)) = offer.media_type.split_once('/') else {
        return 0;
    };
    let mut best: Option<(u8, u16)> = None;
    for r in ranges {
        let specificity = match (r.kind.as_str(), r.subtype.as_str()) {
            (k, s) if k == kind && s == subtype => 2,
            (k, "*") if k == kind && !offer.named_only => 1,
            ("*", "*") if !offer.named_only => 0,
            _ => continue,
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, r.q));
        }
    }
    best.map_or(0, |(_, q)| q)
}

/// Reads the ranges of an `Accept` value; entries it cannot read are
/// skipped rather than failing the request (clients send odd headers).
fn parse(accept: &str) -> Vec<Range> {
    accept
        .split(',')
        .filter_map(|entry| {
            let mut params = entry.split(';');
            let (kind, subtype) = params.next()?.trim().split_once('/')?;
            let (kind, subtype) = (kind.trim(), subtype.trim());
            if kind.is_empty() || subtype.is_empty() || (kind == "*" && subtype != "*") {
                return None;
            }
            let mut q = 1000;
            for p in params {
                if let Some((name, value)) = p.split_once('=')
                    && name.trim().eq_ignore_ascii_case("q")
                {
                    q = qvalue(value.trim())?;
                }
            }
            Some(Range {
                kind: kind.to_ascii_lowercase(),
                subtype: subtype.to_ascii_lowercase(),
                q,
            })
        })
        .collect()
}

/// `0`, `0.5`, `1.000`: a weight in thousandths; `None` for anything else.
fn qvalue(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_thousandths = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(frac_thousandths),
        "1" if frac_thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFERS: [Offer<'static>; 4] = [
        Offer {
            media_type: "image/avif",
            named_only: true,
        },
        Offer {
            media_type: "image/webp",
            named_only: true,
        },
        Offer {
            media_type: "image/jpeg",
            named_only: false,
        },
        Offer {
            media_type: "image/png",
            named_only: false,
        },
    ];

    fn pick(accept: Option<&str>) -> Option<&'static str> {
        choose(accept, &OFFERS).map(|i| OFFERS[i].media_type)
    }

    #[test]
    fn browsers_get_what_they_name() {
        // Chrome and Firefox (2024+) image requests.
        let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
        assert_eq!(pick(Some(chrome)), Some("image/avif"));
        // Safari 14-15: WebP but no AVIF.
        let safari = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5";
        assert_eq!(pick(Some(safari)), Some("image/webp"));
        // Old browsers: neither.
        assert_eq!(
            pick(Some("image/png,image/*;q=0.8,*/*;q=0.5")),
            Some("image/png")
        );
        assert_eq!(pick(Some("image/*")), Some("image/jpeg"));
    }

    #[test]
    fn wildcards_never_select_a_modern_format() {
        for accept in [None, Some(""), Some("*/*"), Some("image/*"), Some("  ")] {
            assert_eq!(pick(accept), Some("image/jpeg"), "{accept:?}");
        }
    }

    #[test]
    fn weights_decide_before_the_server_preference() {
        assert_eq!(
            pick(Some("image/avif;q=0.5, image/webp;q=0.9")),
            Some("image/webp")
        );
        assert_eq!(
            pick(Some("image/avif;q=0.5, image/jpeg")),
            Some("image/jpeg")
        );
        assert_eq!(pick(Some("image/avif, image/webp")), Some("image/avif"));
    }

    #[test]
    fn zero_refuses_even_under_a_wildcard() {
        assert_eq!(pick(Some("image/*, image/jpeg;q=0")), Some("image/png"));
        assert_eq!(pick(Some("image/avif;q=0, image/webp")), Some("image/webp"));
    }

    #[test]
    fn nothing_acceptable_is_none() {
        assert_eq!(pick(Some("application/json")), None);
        assert_eq!(pick(Some("image/gif")), None);
        assert_eq!(pick(Some("image/*;q=0")), None);
        assert_eq!(choose(Some("image/avif"), &OFFERS[2..]), None);
    }

    #[test]
    fn odd_headers_are_read_leniently() {
        assert_eq!(pick(Some("IMAGE/AVIF; Q=1.0")), Some("image/avif"));
        assert_eq!(pick(Some("garbage, image/webp")), Some("image/webp"));
        // An unreadable weight drops that range only.
        assert_eq!(pick(Some("image/avif;q=2, image/webp")), Some("image/webp"));
        assert_eq!(pick(Some("*/avif, image/webp;q=0.001")), Some("image/webp"));
    }

    #[test]
    fn qvalues() {
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("1.000"), Some(1000));
        assert_eq!(qvalue("0.8"), Some(800));
        assert_eq!(qvalue("0.125"), Some(125));
        for bad in ["1.5", "0.1234", "-1", "", "x", "0.a"] {
            assert_eq!(qvalue(bad), None, "{bad}");
        }
    }
}
