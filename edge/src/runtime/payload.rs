//! Upload bytes held in the JavaScript heap instead of wasm linear memory.
//!
//! Wasm memory only grows: a buffer held there once stays reserved by the
//! isolate for good, so 50 concurrent 3.4 MB uploads left 442 MiB of linear
//! memory behind. A JS `Uint8Array` goes back to the isolate when the garbage
//! collector frees it, and it is what `fetch` takes as a body anyway, so the
//! bytes cross from wasm to JS once, chunk by chunk as they arrive. Native
//! builds (the unit tests) hold them in a `Vec`.
//!
//! They are hashed where they are, by the runtime's native SHA-256
//! (`crypto.subtle.digest`, `crypto.DigestStream`): SHA-256 compiled to wasm
//! was most of an upload's CPU time, and hashing in wasm would also mean
//! holding the bytes there. Native builds hash with `sha2`.

#[cfg(target_arch = "wasm32")]
type Store = js_sys::Uint8Array;
#[cfg(not(target_arch = "wasm32"))]
type Store = Vec<u8>;

/// A buffer of a fixed capacity being filled. Its storage grows as bytes
/// arrive, doubling from `FIRST_STORE` up to the capacity, instead of being
/// allocated whole at the start: a client that declares a large body and
/// sends little must not make the isolate hold the whole of it
/// (`budget::Metered` grants memory for at most twice what has arrived).
pub struct PayloadBuffer {
    store: Store,
    len: usize,
    cap: usize,
}

/// The storage a buffer starts with (or its capacity, if smaller).
pub const FIRST_STORE: usize = 1 << 20;

impl PayloadBuffer {
    pub fn with_capacity(cap: usize) -> Self {
        PayloadBuffer {
            store: alloc(cap.min(FIRST_STORE)),
            len: 0,
            cap,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Appends as much of `bytes` as fits; returns how many it took.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.cap - self.len);
        self.reserve(self.len + n);
        #[cfg(target_arch = "wasm32")]
        self.store
            .subarray(self.len as u32, (self.len + n) as u32)
            .copy_from(&bytes[..n]);
        #[cfg(not(target_arch = "wasm32"))]
        self.store.extend_from_slice(&bytes[..n]);
        self.len += n;
        n
    }

    /// Raises the capacity to `cap`; the storage follows as bytes arrive.
    pub fn grow(&mut self, cap: usize) {
        self.cap = self.cap.max(cap);
    }

    /// Makes the storage hold at least `need` bytes (at most the capacity):
    /// twice what it held, or `need` if more, so the bytes are copied a few
    /// times at most.
    fn reserve(&mut self, need: usize) {
        #[cfg(target_arch = "wasm32")]
        {
            let have = self.store.length() as usize;
            if need <= have {
                return;
            }
            let bigger = alloc(need.max(have.saturating_mul(2)).min(self.cap));
            bigger.set(&self.store.subarray(0, self.len as u32), 0);
            self.store = bigger;
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let have = self.store.capacity();
            if need > have {
                let to = need.max(have.saturating_mul(2)).min(self.cap);
                self.store.reserve_exact(to - self.store.len());
            }
        }
    }

    pub fn freeze(self) -> Payload {
        #[cfg(target_arch = "wasm32")]
        let store = self.store.subarray(0, self.len as u32);
        #[cfg(not(target_arch = "wasm32"))]
        let store = self.store;
        Payload {
            store,
            len: self.len,
        }
    }
}

fn alloc(cap: usize) -> Store {
    #[cfg(target_arch = "wasm32")]
    return js_sys::Uint8Array::new_with_length(cap as u32);
    #[cfg(not(target_arch = "wasm32"))]
    return Vec::with_capacity(cap);
}

/// The finished bytes of an object or a part, ready to send.
pub struct Payload {
    store: Store,
    len: usize,
}

impl Payload {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes as a `fetch` body: on wasm the JS array itself, no copy.
    pub fn to_js(&self) -> wasm_bindgen::JsValue {
        #[cfg(target_arch = "wasm32")]
        return self.store.clone().into();
        #[cfg(not(target_arch = "wasm32"))]
        return js_sys::Uint8Array::from(self.store.as_slice()).into();
    }

    /// A copy of the bytes in wasm memory, for tests.
    #[cfg(any(test, feature = "fuzz"))]
    pub fn to_vec(&self) -> Vec<u8> {
        #[cfg(target_arch = "wasm32")]
        return self.store.to_vec();
        #[cfg(not(target_arch = "wasm32"))]
        return self.store.clone();
    }
}

/// A SHA-256 digest, or why the runtime could not make one.
pub type Digest = Result<[u8; 32], String>;

/// The SHA-256 of one finished object or part.
pub async fn sha256(p: &Payload) -> Digest {
    #[cfg(target_arch = "wasm32")]
    return js::digest(js::subtle_digest("SHA-256", &p.to_js()).map_err(js::describe)?).await;
    #[cfg(not(target_arch = "wasm32"))]
    return Ok(sha2::Sha256::digest(&p.store).into());
}

/// The SHA-256 of a file sent in several payloads, fed one at a time.
pub struct RunningSha256 {
    #[cfg(target_arch = "wasm32")]
    stream: js::DigestStream,
    #[cfg(target_arch = "wasm32")]
    writer: js::Writer,
    #[cfg(not(target_arch = "wasm32"))]
    sha: sha2::Sha256,
}

impl RunningSha256 {
    pub fn new() -> Result<Self, String> {
        #[cfg(target_arch = "wasm32")]
        {
            let stream = js::DigestStream::new("SHA-256").map_err(js::describe)?;
            let writer = stream.get_writer();
            Ok(RunningSha256 { stream, writer })
        }
        #[cfg(not(target_arch = "wasm32"))]
        Ok(RunningSha256 {
            sha: sha2::Sha256::new(),
        })
    }

    pub async fn update(&mut self, p: &Payload) -> Result<(), String> {
        #[cfg(target_arch = "wasm32")]
        {
            use worker::wasm_bindgen_futures::JsFuture;
            JsFuture::from(self.writer.write(&p.to_js()))
                .await
                .map_err(js::describe)?;
        }
        #[cfg(not(target_arch = "wasm32"))]
        self.sha.update(&p.store);
        Ok(())
    }

    pub async fn finish(self) -> Digest {
        #[cfg(target_arch = "wasm32")]
        {
            use worker::wasm_bindgen_futures::JsFuture;
            JsFuture::from(self.writer.close())
                .await
                .map_err(js::describe)?;
            js::digest(self.stream.digest()).await
        }
        #[cfg(not(target_arch = "wasm32"))]
        Ok(self.sha.finalize().into())
    }
}

#[cfg(not(target_arch = "wasm32"))]
use sha2::Digest as _;

/// The runtime's digest API, as workerd has it.
#[cfg(target_arch = "wasm32")]
mod js {
    use wasm_bindgen::JsValue;
    use wasm_bindgen::prelude::wasm_bindgen;
    use worker::wasm_bindgen_futures::JsFuture;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = digest, catch)]
        pub fn subtle_digest(algorithm: &str, data: &JsValue) -> Result<js_sys::Promise, JsValue>;

        /// workerd's `WritableStream` that hashes what is written to it.
        #[wasm_bindgen(js_namespace = crypto)]
        pub type DigestStream;
        #[wasm_bindgen(constructor, js_namespace = crypto, catch)]
        pub fn new(algorithm: &str) -> Result<DigestStream, JsValue>;
        #[wasm_bindgen(method, getter)]
        pub fn digest(this: &DigestStream) -> js_sys::Promise;
        #[wasm_bindgen(method, js_name = getWriter)]
        pub fn get_writer(this: &DigestStream) -> Writer;

        pub type Writer;
        #[wasm_bindgen(method)]
        pub fn write(this: &Writer, chunk: &JsValue) -> js_sys::Promise;
        #[wasm_bindgen(method)]
        pub fn close(this: &Writer) -> js_sys::Promise;
    }

    pub fn describe(e: JsValue) -> String {
        format!("SHA-256 digest failed: {e:?}")
    }

    /// Waits for an `ArrayBuffer` of 32 bytes.
    pub async fn digest(p: js_sys::Promise) -> super::Digest {
        let buf = JsFuture::from(p).await.map_err(describe)?;
        let bytes = js_sys::Uint8Array::new(&buf).to_vec();
        bytes
            .try_into()
            .map_err(|_| "SHA-256 digest has the wrong length".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_takes_what_fits_and_keeps_it_when_grown() {
        let mut b = PayloadBuffer::with_capacity(4);
        assert_eq!(b.push(b"abc"), 3);
        assert_eq!(b.push(b"def"), 1);
        assert_eq!(b.len(), 4);
        b.grow(8);
        assert_eq!((b.capacity(), b.push(b"efghij")), (8, 4));
        let p = b.freeze();
        assert_eq!(p.len(), 8);
        assert_eq!(p.to_vec(), b"abcdefgh");
    }

    #[test]
    fn storage_follows_the_bytes_not_the_capacity() {
        let mut b = PayloadBuffer::with_capacity(5 << 20);
        assert!(
            b.store.capacity() <= FIRST_STORE,
            "not the whole capacity up front"
        );
        let chunk = vec![1u8; 600 << 10];
        b.push(&chunk);
        b.push(&chunk);
        // Doubled once: 2 MiB for 1.2 MB, never more than twice what arrived.
        assert!(b.store.capacity() <= 2 * b.len().max(FIRST_STORE));
        while b.len() < b.capacity() {
            b.push(&chunk);
        }
        assert_eq!(b.len(), 5 << 20);
        assert!(b.store.capacity() <= 5 << 20 | (1 << 10));
    }

    #[test]
    fn a_file_hashed_in_payloads_matches_it_hashed_whole() {
        use futures_executor::block_on as run;
        let whole = |b: &[u8]| {
            let mut p = PayloadBuffer::with_capacity(b.len());
            p.push(b);
            p.freeze()
        };
        let mut running = RunningSha256::new().unwrap();
        for part in [&b"abc"[..], b"defgh"] {
            run(running.update(&whole(part))).unwrap();
        }
        let all = run(sha256(&whole(b"abcdefgh"))).unwrap();
        assert_eq!(run(running.finish()).unwrap(), all);
        assert_eq!(
            hex::encode(all),
            "9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab"
        );
    }
}
