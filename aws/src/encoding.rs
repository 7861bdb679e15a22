//! Percent-encoding as SigV4 defines it, and S3 object keys in URL paths.
//!
//! SigV4 signs the URL *as sent*, so the encoding here has to be exactly the
//! one S3 re-derives when it checks the signature: RFC 3986 unreserved bytes
//! stay, every other byte of the UTF-8 form becomes `%XX` (upper-case hex).
//! In particular `+` is `%2B` (a literal `+` would be read as a space in a
//! query) and `%` is `%25`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::Error;

/// Everything except `A-Z a-z 0-9 - _ . ~`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// As [`UNRESERVED`] but keeps `/`, which separates path segments in keys.
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// Encodes a query-string name or value.
pub fn encode_query_component(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Encodes an S3 object key for the URL path, keeping `/` literal.
///
/// Rejects keys a URL cannot carry faithfully: the empty key, and keys with
/// `.` or `..` segments, which WHATWG URL parsers (the Workers `fetch`) and
/// many HTTP clients collapse even when percent-encoded, so the request would
/// reach a different key than the one signed.
pub fn encode_key(key: &str) -> Result<String, Error> {
    if key.is_empty() {
        return Err(Error::InvalidInput("object key is empty".into()));
    }
    if key.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(Error::InvalidInput(format!(
            "object key {key:?} has a '.' or '..' segment, which URL parsers rewrite"
        )));
    }
    Ok(utf8_percent_encode(key, PATH).to_string())
}

/// Decodes a value S3 returned with `encoding-type=url` (`+` is a space there).
pub fn decode_s3_url_value(s: &str) -> Result<String, Error> {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|e| Error::InvalidInput(format!("S3 returned a non-UTF-8 url-encoded value: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_slashes_and_unreserved() {
        assert_eq!(encode_key("a/b-c_d.e~f").unwrap(), "a/b-c_d.e~f");
    }

    #[test]
    fn keys_encode_space_plus_percent() {
        assert_eq!(encode_key("a b+c%d").unwrap(), "a%20b%2Bc%25d");
        assert_eq!(encode_key("100%").unwrap(), "100%25");
        assert_eq!(encode_key("%20").unwrap(), "%2520");
    }

    #[test]
    fn keys_encode_unicode_as_utf8() {
        assert_eq!(
            encode_key("ü/日本.jpg").unwrap(),
            "%C3%BC/%E6%97%A5%E6%9C%AC.jpg"
        );
        assert_eq!(encode_key("😀").unwrap(), "%F0%9F%98%80");
    }

    #[test]
    fn keys_encode_reserved_and_sub_delims() {
        assert_eq!(
            encode_key("!*'();:@&=$,?#[]").unwrap(),
            "%21%2A%27%28%29%3B%3A%40%26%3D%24%2C%3F%23%5B%5D"
        );
        assert_eq!(encode_key("a\nb\u{7f}").unwrap(), "a%0Ab%7F");
    }

    #[test]
    fn keys_keep_empty_segments() {
        assert_eq!(encode_key("a//b").unwrap(), "a//b");
        assert_eq!(encode_key("/lead").unwrap(), "/lead");
        assert_eq!(encode_key("trail/").unwrap(), "trail/");
        assert_eq!(encode_key("/").unwrap(), "/");
    }

    #[test]
    fn keys_allow_dots_inside_segments() {
        assert_eq!(encode_key("...").unwrap(), "...");
        assert_eq!(encode_key("a..b/.c").unwrap(), "a..b/.c");
    }

    #[test]
    fn keys_reject_empty_and_dot_segments() {
        for bad in ["", ".", "..", "a/./b", "a/../b", "a/..", "./a"] {
            assert!(
                matches!(encode_key(bad), Err(Error::InvalidInput(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn query_components_encode_slash_and_plus() {
        assert_eq!(encode_query_component("a/b+c=d e~"), "a%2Fb%2Bc%3Dd%20e~");
    }

    #[test]
    fn s3_url_values_decode_plus_as_space() {
        assert_eq!(decode_s3_url_value("a+b%2Bc%C3%BC").unwrap(), "a b+cü");
        assert!(decode_s3_url_value("%FF").is_err());
    }
}
