//! `srcset` strings per format, so a page can put each straight into a
//! `<picture>`'s `<source type=...>` without knowing the variant layout.

use serde_json::{Map, Value};

/// `{"<format>": "<url> <w>w, ..."}`, narrowest first, one entry per format
/// the variants exist in. `variants` yields (format name, width, URL).
pub fn by_format<'a>(
    variants: impl IntoIterator<Item = (&'a str, u32, &'a str)>,
) -> Map<String, Value> {
    let mut grouped: Vec<(&str, Vec<(u32, &str)>)> = Vec::new();
    for (format, width, url) in variants {
        match grouped.iter_mut().find(|(f, _)| *f == format) {
            Some((_, list)) => list.push((width, url)),
            None => grouped.push((format, vec![(width, url)])),
        }
    }
    grouped
        .into_iter()
        .map(|(format, mut list)| {
            list.sort_by_key(|&(w, _)| w);
            let set: Vec<String> = list.iter().map(|(w, url)| format!("{url} {w}w")).collect();
            (format.to_string(), Value::String(set.join(", ")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_string_per_format_narrowest_first() {
        let set = by_format([
            ("jpeg", 1920, "https://x/1920.jpg"),
            ("jpeg", 320, "https://x/320.jpg"),
            ("png", 320, "https://x/320.png"),
            ("jpeg", 640, "https://x/640.jpg?a=1&b=2"),
        ]);
        assert_eq!(
            set["jpeg"],
            "https://x/320.jpg 320w, https://x/640.jpg?a=1&b=2 640w, https://x/1920.jpg 1920w"
        );
        assert_eq!(set["png"], "https://x/320.png 320w");
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn no_variants_no_entries() {
        assert!(by_format([]).is_empty());
    }
}
