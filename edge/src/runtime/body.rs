//! The request body as a stream of large chunks.
//!
//! Read through a default reader, workerd hands the body over in small
//! chunks, and each one costs a promise, a copy into wasm, an allocation and
//! multer's bookkeeping. A BYOB reader's `readAtLeast` (a workerd extension)
//! answers with everything already buffered, up to a whole buffer, and the
//! buffer it hands back is reused for the next read, so the bytes cross into
//! wasm in a few large copies. It asks for at least one byte, not a full
//! buffer: a client that pauses must still have what it sent processed (the
//! file part stored when it ends, before later fields arrive), or the order
//! the upload's consistency rests on would depend on the client's pace.
//! Where the body offers no BYOB reader, the default one is used.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use js_sys::{Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::Request;
use worker::wasm_bindgen_futures::JsFuture;

/// Bytes per read: a few reads per part, small beside the upload's buffer
/// (`config::UPLOAD_OVERHEAD` counts it).
pub const CHUNK_BYTES: u32 = 64 * 1024;

#[wasm_bindgen]
extern "C" {
    #[derive(Clone)]
    type ByobReader;
    #[wasm_bindgen(method, js_name = readAtLeast)]
    fn read_at_least(this: &ByobReader, min: u32, view: &Uint8Array) -> js_sys::Promise;
}

pub type Chunk = Result<Bytes, std::io::Error>;
pub type Chunks = Box<dyn Stream<Item = Chunk> + Unpin>;

/// The body's bytes in chunks of at most `CHUNK_BYTES`, and what lets a
/// handler that stops reading early let the rest of it go (`Rest`).
pub fn chunks(req: &mut Request) -> worker::Result<(Chunks, Rest)> {
    if let Some(reader) = req.inner().body().and_then(|b| byob_reader(&b)) {
        let pending = Pending::default();
        let rest = Rest(Some((reader.clone(), pending.clone())));
        let chunks: Chunks = Box::new(Box::pin(futures_util::stream::unfold(
            Some((reader, js_sys::ArrayBuffer::new(CHUNK_BYTES), pending)),
            read,
        )));
        return Ok((chunks, rest));
    }
    let chunks: Chunks = Box::new(req.stream()?.map(|r| {
        r.map(Bytes::from)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }));
    Ok((chunks, Rest(None)))
}

/// The unread rest of a request body.
///
/// A handler that answers before the client has sent its whole body (a
/// refusal on the file's first bytes, a quota) must still read the rest,
/// or the runtime resets the connection and the client, still sending,
/// never sees the answer. The bytes are read and dropped in the runtime:
/// they never cross into wasm.
pub struct Rest(Option<(ByobReader, Pending)>);

/// The read the chunk stream had in flight when its reader (multer) was
/// dropped: a reader takes one read at a time, so the rest waits for it.
type Pending = Rc<RefCell<Option<js_sys::Promise>>>;

impl Rest {
    /// The rest of a body nothing has read yet.
    pub fn of(req: &Request) -> Rest {
        Rest(
            req.inner()
                .body()
                .and_then(|b| byob_reader(&b))
                .map(|r| (r, Pending::default())),
        )
    }

    /// Reads and drops what is left, up to about `max` bytes (a client
    /// sending more gets the reset after all).
    pub async fn discard(self, max: u64) {
        let Some((reader, pending)) = self.0 else {
            return;
        };
        let in_flight = pending.borrow_mut().take();
        if let Some(read) = in_flight {
            match JsFuture::from(read).await {
                Ok(r) if !is_done(&r) => {}
                _ => return,
            }
        }
        let mut buf = js_sys::ArrayBuffer::new(CHUNK_BYTES);
        let mut seen = 0u64;
        while seen <= max {
            let Ok(result) = JsFuture::from(reader.read_at_least(1, &Uint8Array::new(&buf))).await
            else {
                return;
            };
            let Some(chunk) = Reflect::get(&result, &"value".into())
                .ok()
                .filter(|v| !v.is_undefined())
                .map(JsCast::unchecked_into::<Uint8Array>)
            else {
                return;
            };
            if is_done(&result) {
                return;
            }
            seen += u64::from(chunk.length());
            buf = chunk.buffer();
        }
    }
}

fn byob_reader(body: &worker::web_sys::ReadableStream) -> Option<ByobReader> {
    let opts = Object::new();
    Reflect::set(&opts, &"mode".into(), &"byob".into()).ok()?;
    let get_reader: Function = Reflect::get(body, &"getReader".into())
        .ok()?
        .dyn_into()
        .ok()?;
    let reader = get_reader.call1(body, &opts).ok()?;
    let has_read_at_least = Reflect::get(&reader, &"readAtLeast".into())
        .ok()
        .is_some_and(|f| f.is_function());
    has_read_at_least.then(|| reader.unchecked_into())
}

type State = Option<(ByobReader, js_sys::ArrayBuffer, Pending)>;

fn is_done(result: &JsValue) -> bool {
    Reflect::get(result, &"done".into())
        .ok()
        .and_then(|d| d.as_bool())
        .unwrap_or(true)
}

async fn read(state: State) -> Option<(Chunk, State)> {
    let (reader, buf, pending) = state?;
    let view = Uint8Array::new(&buf);
    let read = reader.read_at_least(1, &view);
    pending.replace(Some(read.clone()));
    let result = JsFuture::from(read).await;
    pending.replace(None);
    let result = match result {
        Ok(r) => r,
        Err(e) => return Some((Err(std::io::Error::other(describe(&e))), None)),
    };
    let done = is_done(&result);
    let value = Reflect::get(&result, &"value".into()).ok()?;
    if value.is_undefined() {
        return None;
    }
    let chunk: Uint8Array = value.unchecked_into();
    if chunk.length() == 0 {
        return None;
    }
    let bytes = Bytes::from(chunk.to_vec());
    let next = (!done).then(|| (reader, chunk.buffer(), pending));
    Some((Ok(bytes), next))
}

fn describe(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| "reading the request body failed".into())
}
