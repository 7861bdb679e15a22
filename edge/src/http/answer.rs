//! What a handler answers: a status, a JSON body or an object's bytes, and
//! headers. `http::respond` turns it into the runtime's response.

use serde_json::Value;
use worker::ResponseBody;

/// A successful answer.
pub struct Answer {
    pub status: u16,
    pub body: Option<Value>,
    /// A stored object streamed to the client as S3 sent it (never with `body`).
    pub object: Option<ResponseBody>,
    pub headers: Vec<(&'static str, String)>,
}

impl Answer {
    pub fn json(status: u16, body: Value) -> Self {
        Answer {
            body: Some(body),
            ..Answer::empty(status)
        }
    }

    pub fn empty(status: u16) -> Self {
        Answer {
            status,
            body: None,
            object: None,
            headers: Vec::new(),
        }
    }

    pub fn object(object: ResponseBody) -> Self {
        Answer {
            object: Some(object),
            ..Answer::empty(200)
        }
    }

    pub fn with_headers(mut self, headers: Vec<(&'static str, String)>) -> Self {
        self.headers.extend(headers);
        self
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}
