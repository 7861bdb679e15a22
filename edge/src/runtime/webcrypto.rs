//! Signature checks through the runtime's WebCrypto (`crypto.subtle`):
//! RSASSA-PKCS1-v1_5 with SHA-256, ECDSA P-256 with SHA-256 and Ed25519,
//! the algorithms of RS256, ES256 and EdDSA JWTs. The key arrives as a
//! JWK (JSON text) and is imported for `verify` only; nothing is hashed
//! or compared in wasm.

/// A signature algorithm WebCrypto checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RsaSha256,
    EcdsaP256Sha256,
    Ed25519,
}

/// Whether `signature` is `key`'s (a public JWK, as JSON) over `data`.
/// `Err` when the key cannot be imported or the runtime fails.
#[cfg(target_arch = "wasm32")]
pub async fn verify(
    key_jwk: &str,
    algorithm: Algorithm,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, String> {
    use wasm_bindgen::JsValue;
    use worker::wasm_bindgen_futures::JsFuture;

    let describe = |what: &str, e: JsValue| format!("{what}: {e:?}");
    let jwk = js_sys::JSON::parse(key_jwk).map_err(|e| describe("the key is no JSON", e))?;
    let (import, check) = algorithms(algorithm).map_err(|e| describe("algorithm", e))?;
    let usages = js_sys::Array::of1(&JsValue::from_str("verify"));
    let key = js::import_key("jwk", &jwk, &import, false, &usages)
        .map_err(|e| describe("importKey", e))?;
    let key = JsFuture::from(key)
        .await
        .map_err(|e| describe("importKey", e))?;
    let sig = js_sys::Uint8Array::from(signature);
    let data = js_sys::Uint8Array::from(data);
    let ok = js::verify(&check, &key, &sig, &data).map_err(|e| describe("verify", e))?;
    let ok = JsFuture::from(ok)
        .await
        .map_err(|e| describe("verify", e))?;
    Ok(ok.as_bool().unwrap_or(false))
}

/// Native builds (unit tests, fuzzing) have no WebCrypto: nothing verifies.
#[cfg(not(target_arch = "wasm32"))]
pub async fn verify(
    _key_jwk: &str,
    _algorithm: Algorithm,
    _data: &[u8],
    _signature: &[u8],
) -> Result<bool, String> {
    Err("WebCrypto exists only in the Workers runtime".into())
}

/// The `importKey` and `verify` algorithm objects.
#[cfg(target_arch = "wasm32")]
fn algorithms(a: Algorithm) -> Result<(js_sys::Object, js_sys::Object), wasm_bindgen::JsValue> {
    use js_sys::{Object, Reflect};
    use wasm_bindgen::JsValue;
    let object = |pairs: &[(&str, &str)]| -> Result<Object, JsValue> {
        let o = Object::new();
        for (k, v) in pairs {
            Reflect::set(&o, &JsValue::from_str(k), &JsValue::from_str(v))?;
        }
        Ok(o)
    };
    Ok(match a {
        Algorithm::RsaSha256 => (
            object(&[("name", "RSASSA-PKCS1-v1_5"), ("hash", "SHA-256")])?,
            object(&[("name", "RSASSA-PKCS1-v1_5")])?,
        ),
        Algorithm::EcdsaP256Sha256 => (
            object(&[("name", "ECDSA"), ("namedCurve", "P-256")])?,
            object(&[("name", "ECDSA"), ("hash", "SHA-256")])?,
        ),
        Algorithm::Ed25519 => (
            object(&[("name", "Ed25519")])?,
            object(&[("name", "Ed25519")])?,
        ),
    })
}

#[cfg(target_arch = "wasm32")]
mod js {
    use wasm_bindgen::JsValue;
    use wasm_bindgen::prelude::wasm_bindgen;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = importKey, catch)]
        pub fn import_key(
            format: &str,
            key: &JsValue,
            algorithm: &js_sys::Object,
            extractable: bool,
            usages: &js_sys::Array,
        ) -> Result<js_sys::Promise, JsValue>;

        #[wasm_bindgen(js_namespace = ["crypto", "subtle"], js_name = verify, catch)]
        pub fn verify(
            algorithm: &js_sys::Object,
            key: &JsValue,
            signature: &js_sys::Uint8Array,
            data: &js_sys::Uint8Array,
        ) -> Result<js_sys::Promise, JsValue>;
    }
}
