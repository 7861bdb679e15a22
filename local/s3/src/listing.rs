//! `encoding-type=url` for listings. XML 1.0 cannot carry every byte a key
//! may hold, so S3 clients (botocore, the AWS SDKs, pixport-aws) ask for
//! url-encoded keys and decode what comes back whenever the response says
//! `EncodingType=url`. s3s-fs echoes the header but returns raw keys, so
//! clients then decoded keys that were never encoded: `+` became a space and
//! `%25` a `%`. This module encodes exactly the fields S3 encodes.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use s3s::dto::{
    CommonPrefix, EncodingType, ListMultipartUploadsOutput, ListObjectsOutput, ListObjectsV2Output,
};

/// What S3 leaves alone: the unreserved characters. A space is written `+`
/// (S3 does, and every client decodes `+` as a space), so a literal `+`
/// must be `%2B`.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b' ');

/// One value as S3 writes it under `encoding-type=url`.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, ENCODE)
        .to_string()
        .replace(' ', "+")
}

/// Whether the request asked for url-encoded keys.
pub fn wants_url(encoding: Option<&EncodingType>) -> bool {
    encoding.is_some_and(|e| e.as_str() == EncodingType::URL)
}

/// Whether an `encoding-type` value is one S3 accepts (only `url`; s3s passes
/// any value through, S3 answers anything else with `InvalidArgument`).
pub fn is_known(encoding: Option<&EncodingType>) -> bool {
    encoding.is_none_or(|e| e.as_str() == EncodingType::URL)
}

fn enc_opt(v: &mut Option<String>) {
    if let Some(s) = v.as_mut() {
        *s = encode(s);
    }
}

fn enc_prefixes(p: &mut Option<Vec<CommonPrefix>>) {
    for cp in p.iter_mut().flatten() {
        enc_opt(&mut cp.prefix);
    }
}

/// ListObjectsV2: `Delimiter`, `Prefix`, `StartAfter`, `Contents/Key`,
/// `CommonPrefixes/Prefix` (the continuation tokens are opaque, never encoded).
pub fn encode_v2(o: &mut ListObjectsV2Output) {
    enc_opt(&mut o.delimiter);
    enc_opt(&mut o.prefix);
    enc_opt(&mut o.start_after);
    for obj in o.contents.iter_mut().flatten() {
        enc_opt(&mut obj.key);
    }
    enc_prefixes(&mut o.common_prefixes);
}

/// ListObjects (v1): `Delimiter`, `Marker`, `NextMarker`, `Prefix`,
/// `Contents/Key`, `CommonPrefixes/Prefix`.
pub fn encode_v1(o: &mut ListObjectsOutput) {
    enc_opt(&mut o.delimiter);
    enc_opt(&mut o.marker);
    enc_opt(&mut o.next_marker);
    enc_opt(&mut o.prefix);
    for obj in o.contents.iter_mut().flatten() {
        enc_opt(&mut obj.key);
    }
    enc_prefixes(&mut o.common_prefixes);
}

/// ListMultipartUploads: `Delimiter`, `KeyMarker`, `NextKeyMarker`, `Prefix`,
/// `Upload/Key`, `CommonPrefixes/Prefix`.
pub fn encode_uploads(o: &mut ListMultipartUploadsOutput) {
    enc_opt(&mut o.delimiter);
    enc_opt(&mut o.key_marker);
    enc_opt(&mut o.next_key_marker);
    enc_opt(&mut o.prefix);
    for u in o.uploads.iter_mut().flatten() {
        enc_opt(&mut u.key);
    }
    enc_prefixes(&mut o.common_prefixes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::Object;

    #[test]
    fn encodes_what_decoders_would_mangle() {
        assert_eq!(
            encode("dir/ünï cödé+plus %25.jpg"),
            "dir%2F%C3%BCn%C3%AF+c%C3%B6d%C3%A9%2Bplus+%2525.jpg"
        );
        assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode("\u{1}<&>"), "%01%3C%26%3E");
    }

    #[test]
    fn v2_encodes_keys_prefixes_and_echoed_inputs_but_not_tokens() {
        let mut o = ListObjectsV2Output {
            contents: Some(vec![Object {
                key: Some("a b+c".into()),
                ..Default::default()
            }]),
            common_prefixes: Some(vec![CommonPrefix {
                prefix: Some("p q/".into()),
            }]),
            prefix: Some("a ".into()),
            delimiter: Some("/".into()),
            start_after: Some("%".into()),
            next_continuation_token: Some("a b+c".into()),
            ..Default::default()
        };
        encode_v2(&mut o);
        assert_eq!(o.contents.unwrap()[0].key.as_deref(), Some("a+b%2Bc"));
        assert_eq!(
            o.common_prefixes.unwrap()[0].prefix.as_deref(),
            Some("p+q%2F")
        );
        assert_eq!(o.prefix.as_deref(), Some("a+"));
        assert_eq!(o.delimiter.as_deref(), Some("%2F"));
        assert_eq!(o.start_after.as_deref(), Some("%25"));
        assert_eq!(o.next_continuation_token.as_deref(), Some("a b+c"));
    }

    #[test]
    fn only_url_is_an_encoding() {
        assert!(wants_url(Some(&EncodingType::from_static("url"))));
        assert!(!wants_url(None));
        assert!(is_known(None));
        assert!(!is_known(Some(&EncodingType::from_static("base64"))));
    }
}
