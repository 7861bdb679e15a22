//! Upload bytes held in the JavaScript heap instead of wasm linear memory.
//!
//! Wasm memory only grows: a buffer held there once stays reserved by the
//! isolate for good, so 50 concurrent 3.4 MB uploads left 442 MiB of linear
//! memory behind. A JS `Uint8Array` goes back to the isolate when the garbage
//! collector frees it, and it is what `fetch` takes as a body anyway, so the
//! bytes cross from wasm to JS once, chunk by chunk as they arrive. Native
//! builds (the unit tests) hold them in a `Vec`.

#[cfg(target_arch = "wasm32")]
type Store = js_sys::Uint8Array;
#[cfg(not(target_arch = "wasm32"))]
type Store = Vec<u8>;

/// A fixed-capacity buffer being filled: allocated once at the size it will
/// need, so it neither doubles its way up nor over-reserves.
pub struct PayloadBuffer {
    store: Store,
    len: usize,
    cap: usize,
}

impl PayloadBuffer {
    pub fn with_capacity(cap: usize) -> Self {
        PayloadBuffer {
            store: alloc(cap),
            len: 0,
            cap,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Appends as much of `bytes` as fits; returns how many it took.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.cap - self.len);
        #[cfg(target_arch = "wasm32")]
        self.store
            .subarray(self.len as u32, (self.len + n) as u32)
            .copy_from(&bytes[..n]);
        #[cfg(not(target_arch = "wasm32"))]
        self.store.extend_from_slice(&bytes[..n]);
        self.len += n;
        n
    }

    /// Moves the bytes into a larger buffer of `cap` bytes.
    pub fn grow(&mut self, cap: usize) {
        if cap <= self.cap {
            return;
        }
        let mut bigger = alloc(cap);
        #[cfg(target_arch = "wasm32")]
        bigger.set(&self.store.subarray(0, self.len as u32), 0);
        #[cfg(not(target_arch = "wasm32"))]
        bigger.extend_from_slice(&self.store);
        std::mem::swap(&mut self.store, &mut bigger);
        self.cap = cap;
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
}
