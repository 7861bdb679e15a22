//! Bounds on the parts of a multipart body that `multer` buffers whole.
//!
//! multer keeps every byte it has read while it looks for the first
//! boundary (the preamble) and for the blank line that ends a part's
//! headers, and rescans that buffer on every new chunk. Nothing else in a
//! body is held like that: a part's content is handed on chunk by chunk. So
//! junk before the first boundary, or inside one part's headers, grows an
//! isolate's memory by its whole size (70 MB of it took a release worker
//! from 1 to 225 MiB of wasm memory, and wasm memory never shrinks) and its
//! CPU quadratically. [`Framed`] watches the body on its way into multer and
//! ends it with [`FramingError`] once the preamble or one part's headers pass
//! their bound, so multer never holds more than the bound plus one chunk.
//!
//! Clients send no preamble and a few hundred bytes of headers per part (a
//! `Content-Disposition` with a file name and a `Content-Type`); the bounds
//! leave room for long, percent-encoded file names.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use memchr::memmem;

/// The most bytes before the first boundary.
pub const MAX_PREAMBLE_BYTES: usize = 8 * 1024;
/// The most bytes of one part's headers, from its boundary to the blank line.
pub const MAX_PART_HEADER_BYTES: usize = 16 * 1024;

/// Why a body was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("no multipart boundary in the first {MAX_PREAMBLE_BYTES} bytes")]
    Preamble,
    #[error("a part's headers are over {MAX_PART_HEADER_BYTES} bytes")]
    PartHeaders,
}

/// What the body's error becomes: the inner stream's error, or the bound
/// that was passed (multer hands it back inside `StreamReadFailed`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `FramingError` inside a multer stream error, if that is what it is.
pub fn framing_error(e: &multer::Error) -> Option<FramingError> {
    match e {
        multer::Error::StreamReadFailed(inner) => inner.downcast_ref::<FramingError>().copied(),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter.
    Preamble,
    /// Just after a delimiter: `--` closes the body, anything else opens a part.
    AfterDelimiter,
    /// A part's headers, up to the blank line.
    Headers,
    /// A part's content, up to the next delimiter.
    Content,
    /// After the closing delimiter: multer reads no further.
    Epilogue,
}

/// The scanner: which region of the body the bytes seen so far end in.
#[derive(Debug)]
pub struct Scanner {
    /// `\r\n--<boundary>`: a delimiter is always at the start of a line.
    delimiter: Vec<u8>,
    state: State,
    /// Bytes of the bounded region (preamble or headers) seen so far.
    region: usize,
    /// The last bytes of the current region, fewer than the needle, so a
    /// needle split across two chunks is still found.
    carry: Vec<u8>,
}

impl Scanner {
    pub fn new(boundary: &str) -> Scanner {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Scanner {
            delimiter,
            state: State::Preamble,
            region: 0,
            // The body may open with the delimiter itself: read it as if a
            // line break came before the first byte.
            carry: b"\r\n".to_vec(),
        }
    }

    /// Looks at the next chunk; an error once a bound is passed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), FramingError> {
        let mut pos = 0;
        while pos < chunk.len() {
            let rest = &chunk[pos..];
            match self.state {
                State::Epilogue => return Ok(()),
                State::AfterDelimiter => {
                    // Two bytes decide; the first may have ended the last chunk.
                    self.carry.push(rest[0]);
                    pos += 1;
                    if self.carry.len() == 2 {
                        if self.carry == b"--" {
                            self.state = State::Epilogue;
                        } else {
                            // Both bytes are the headers' first: a part
                            // with none is `\r\n\r\n` straight away.
                            self.region = 2;
                            self.state = State::Headers;
                        }
                    }
                }
                State::Preamble | State::Headers | State::Content => {
                    let (needle, bound): (&[u8], _) = match self.state {
                        State::Preamble => (
                            &self.delimiter,
                            Some((MAX_PREAMBLE_BYTES, FramingError::Preamble)),
                        ),
                        State::Headers => (
                            b"\r\n\r\n",
                            Some((MAX_PART_HEADER_BYTES, FramingError::PartHeaders)),
                        ),
                        _ => (&self.delimiter, None),
                    };
                    let found = find(&self.carry, rest, needle);
                    self.region += found.unwrap_or(rest.len());
                    // What the bound is about: the bytes before the needle.
                    let held = match found {
                        Some(_) => self.region.saturating_sub(needle.len()),
                        None => self.region,
                    };
                    if let Some((max, error)) = bound
                        && held > max
                    {
                        return Err(error);
                    }
                    match found {
                        Some(end) => {
                            pos += end;
                            self.carry.clear();
                            self.region = 0;
                            self.state = match self.state {
                                State::Headers => State::Content,
                                _ => State::AfterDelimiter,
                            };
                        }
                        None => {
                            let keep = needle.len() - 1;
                            self.carry.extend_from_slice(rest);
                            let drop = self.carry.len().saturating_sub(keep);
                            self.carry.drain(..drop);
                            pos = chunk.len();
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Where `needle` ends in `chunk` (an index just past it), given the
/// `carry` of fewer than `needle.len()` bytes seen just before the chunk.
fn find(carry: &[u8], chunk: &[u8], needle: &[u8]) -> Option<usize> {
    if !carry.is_empty() {
        // A match that starts in `carry` ends in `chunk`'s first bytes, and
        // comes before any match wholly inside `chunk`.
        let head = &chunk[..chunk.len().min(needle.len() - 1)];
        let mut window = Vec::with_capacity(carry.len() + head.len());
        window.extend_from_slice(carry);
        window.extend_from_slice(head);
        if let Some(at) = memmem::find(&window, needle) {
            return Some(at + needle.len() - carry.len());
        }
    }
    memmem::find(chunk, needle).map(|at| at + needle.len())
}

/// A body stream that ends with [`FramingError`] once the multipart
/// preamble or a part's headers pass their bound.
pub struct Framed<B> {
    inner: B,
    scanner: Scanner,
    failed: bool,
}

impl<B> Framed<B> {
    pub fn new(inner: B, boundary: &str) -> Framed<B> {
        Framed {
            inner,
            scanner: Scanner::new(boundary),
            failed: false,
        }
    }
}

impl<B, E> Stream for Framed<B>
where
    B: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<BoxError>,
{
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match self.scanner.feed(&chunk) {
                Ok(()) => Poll::Ready(Some(Ok(chunk))),
                Err(e) => {
                    self.failed = true;
                    Poll::Ready(Some(Err(Box::new(e))))
                }
            },
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const B: &str = "----pixportBoundary7MA4YWxkTrZu0gW";

    fn form(parts: &[(&str, &[u8])], preamble: &[u8]) -> Vec<u8> {
        let mut body = preamble.to_vec();
        for (headers, content) in parts {
            if body.is_empty() {
                body.extend_from_slice(format!("--{B}\r\n").as_bytes());
            } else {
                body.extend_from_slice(format!("\r\n--{B}\r\n").as_bytes());
            }
            body.extend_from_slice(headers.as_bytes());
            body.extend_from_slice(b"\r\n\r\n");
            body.extend_from_slice(content);
        }
        body.extend_from_slice(format!("\r\n--{B}--\r\n").as_bytes());
        body
    }

    fn feed_in(body: &[u8], size: usize) -> Result<State, FramingError> {
        let mut s = Scanner::new(B);
        for chunk in body.chunks(size) {
            s.feed(chunk)?;
        }
        Ok(s.state)
    }

    fn photo_form() -> Vec<u8> {
        let jpeg: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        form(
            &[
                ("Content-Disposition: form-data; name=\"title\"", b"Sea"),
                (
                    "Content-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg",
                    &jpeg,
                ),
                ("Content-Disposition: form-data; name=\"tags\"", b"sea,sky"),
            ],
            b"",
        )
    }

    #[test]
    fn a_well_formed_body_passes_in_any_chunking() {
        let body = photo_form();
        for size in [1, 2, 3, 5, 7, 41, 64, 1000, 65536, body.len()] {
            assert_eq!(
                feed_in(&body, size),
                Ok(State::Epilogue),
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn a_delimiter_lookalike_inside_content_is_content() {
        // `--boundary` not at a line start, and a line starting with a prefix.
        let content = format!("x--{B}\r\n--{}\r\n", &B[..10]);
        let body = form(
            &[(
                "Content-Disposition: form-data; name=\"a\"",
                content.as_bytes(),
            )],
            b"",
        );
        for size in [1, 3, 64, body.len()] {
            assert_eq!(feed_in(&body, size), Ok(State::Epilogue));
        }
    }

    #[test]
    fn a_short_preamble_and_a_part_without_headers_pass() {
        let mut body = b"This is a preamble.".to_vec();
        body.extend_from_slice(format!("\r\n--{B}\r\n\r\nno headers\r\n--{B}--").as_bytes());
        for size in [1, 2, 7, body.len()] {
            assert_eq!(feed_in(&body, size), Ok(State::Epilogue));
        }
    }

    #[test]
    fn the_preamble_is_bounded() {
        let junk = vec![b'a'; MAX_PREAMBLE_BYTES];
        let body = form(
            &[("Content-Disposition: form-data; name=\"a\"", b"1")],
            &junk,
        );
        assert_eq!(feed_in(&body, 1000), Ok(State::Epilogue), "at the bound");

        let junk = vec![b'a'; MAX_PREAMBLE_BYTES + 1];
        let body = form(
            &[("Content-Disposition: form-data; name=\"a\"", b"1")],
            &junk,
        );
        for size in [1, 1000, body.len()] {
            assert_eq!(feed_in(&body, size), Err(FramingError::Preamble));
        }
    }

    #[test]
    fn each_parts_headers_are_bounded() {
        let long = format!(
            "Content-Disposition: form-data; name=\"file\"; filename=\"{}.jpg\"",
            "%E6%97%A5".repeat(1000)
        );
        assert!(long.len() < MAX_PART_HEADER_BYTES);
        // Under the bound in every part, however many parts.
        let parts: Vec<(&str, &[u8])> = (0..10).map(|_| (long.as_str(), &b"x"[..])).collect();
        assert_eq!(feed_in(&form(&parts, b""), 777), Ok(State::Epilogue));

        let huge = format!("X-Junk: {}", "a".repeat(MAX_PART_HEADER_BYTES));
        let body = form(
            &[
                ("Content-Disposition: form-data; name=\"a\"", b"1"),
                (&huge, b"2"),
            ],
            b"",
        );
        for size in [1, 4096, body.len()] {
            assert_eq!(feed_in(&body, size), Err(FramingError::PartHeaders));
        }
    }

    #[test]
    fn content_is_not_bounded() {
        let big = vec![b'\r'; 3 << 20];
        let body = form(
            &[(
                "Content-Disposition: form-data; name=\"f\"; filename=\"x\"",
                &big,
            )],
            b"",
        );
        assert_eq!(feed_in(&body, 65536), Ok(State::Epilogue));
    }

    /// A source of `total` junk bytes in 64 KiB chunks that counts what was
    /// pulled from it.
    fn junk_source(
        prefix: Vec<u8>,
        total: usize,
        pulled: Arc<AtomicUsize>,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send {
        let mut sent = 0usize;
        let mut prefix = Some(prefix);
        futures_util::stream::poll_fn(move |_| {
            if let Some(p) = prefix.take() {
                pulled.fetch_add(p.len(), Ordering::Relaxed);
                return Poll::Ready(Some(Ok(Bytes::from(p))));
            }
            if sent >= total {
                return Poll::Ready(None);
            }
            let n = (total - sent).min(65536);
            sent += n;
            pulled.fetch_add(n, Ordering::Relaxed);
            Poll::Ready(Some(Ok(Bytes::from(vec![b'z'; n]))))
        })
    }

    fn first_error(prefix: Vec<u8>) -> (Option<FramingError>, usize) {
        let pulled = Arc::new(AtomicUsize::new(0));
        let body = Framed::new(junk_source(prefix, 70_000_000, pulled.clone()), B);
        let mut form = multer::Multipart::new(body, B);
        let e = futures_executor::block_on(async {
            loop {
                match form.next_field().await {
                    Ok(Some(mut f)) => while let Ok(Some(_)) = f.chunk().await {},
                    Ok(None) => return None,
                    Err(e) => return Some(e),
                }
            }
        });
        (
            e.as_ref().and_then(framing_error),
            pulled.load(Ordering::Relaxed),
        )
    }

    #[test]
    fn multer_stops_at_the_bound_before_70_mb_of_preamble() {
        let (e, pulled) = first_error(Vec::new());
        assert_eq!(e, Some(FramingError::Preamble));
        assert!(pulled <= MAX_PREAMBLE_BYTES + 65536, "read {pulled} bytes");
    }

    #[test]
    fn multer_stops_at_the_bound_inside_70_mb_of_part_headers() {
        let prefix =
            format!("--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\nX: ").into_bytes();
        let (e, pulled) = first_error(prefix);
        assert_eq!(e, Some(FramingError::PartHeaders));
        assert!(
            pulled <= MAX_PART_HEADER_BYTES + 2 * 65536,
            "read {pulled} bytes"
        );
    }

    #[test]
    fn multer_reads_a_framed_form_as_it_is() {
        let body = photo_form();
        let chunks: Vec<Result<Bytes, std::io::Error>> = body
            .chunks(4093)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let framed = Framed::new(futures_util::stream::iter(chunks), B);
        let mut form = multer::Multipart::new(framed, B);
        let fields = futures_executor::block_on(async {
            let mut out = Vec::new();
            while let Some(mut f) = form.next_field().await.expect("field") {
                let name = f.name().unwrap_or_default().to_string();
                let mut n = 0;
                while let Some(c) = f.chunk().await.expect("chunk") {
                    n += c.len();
                }
                out.push((name, n));
            }
            out
        });
        assert_eq!(
            fields,
            vec![
                ("title".into(), 3),
                ("file".into(), 200_000),
                ("tags".into(), 7)
            ]
        );
    }
}
