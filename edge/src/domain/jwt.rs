//! Sign-in with the adopter's identity provider: JWTs (RS256, ES256,
//! EdDSA) checked against the provider's published keys (JWKS).
//!
//! The rules, in the order they are checked (RFC 7515, 7517, 7519, 8725):
//!
//! - the header's `alg` is one the configuration allows (never `none`,
//!   never an HMAC: a public key must not become a shared secret), and the
//!   key that `kid` names (refreshed once when unknown: the provider
//!   rotated) is of that algorithm's type and curve, and says no other
//!   `alg`; the header cannot choose the key type;
//! - the signature is that key's over `header.payload` (WebCrypto);
//! - `iss` is the configured issuer, `aud` holds the configured audience,
//!   `exp` is to come and `nbf`/`iat` are not in the future, each within
//!   the configured leeway; `sub` is present.
//!
//! The caller's owner is its subject: `u-` and the first 20 bytes of
//! SHA-256 over `iss`, a newline and `sub` (hex), so it fits the `owner`
//! column, tells nothing of the subject, and stays the same across key
//! rotations and sign-ins. Its scopes come from the `scope` (space
//! separated) or `scp` (list) claim: `pixport:read`, `pixport:write`,
//! `pixport:admin`; a token that names none may read and write.

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::domain::identity::{Caller, Scopes};

/// The port: the identity provider's published keys (its JWKS), and the
/// runtime's check of a signature with one of them.
#[allow(async_fn_in_trait)]
pub trait KeySet {
    /// The key `kid` names (with no `kid`: the one key of `alg`'s type);
    /// an unknown `kid` makes the set be fetched again, at most so often.
    async fn find(&self, kid: Option<&str>, alg: Alg) -> Result<Option<Jwk>, JwtError>;
    /// Whether `signature` is `key`'s over `data`.
    async fn verify(
        &self,
        key: &Jwk,
        alg: Alg,
        data: &[u8],
        signature: &[u8],
    ) -> Result<bool, JwtError>;
}

/// A JWT signature algorithm pixport accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

impl Alg {
    pub fn parse(name: &str) -> Option<Alg> {
        match name {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            "EdDSA" => Some(Alg::EdDsa),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// Whether `key` is of this algorithm's type (and curve), and says no
    /// other algorithm or use.
    pub fn fits(self, key: &Jwk) -> bool {
        let kind = match self {
            Alg::Rs256 => key.kty == "RSA",
            Alg::Es256 => key.kty == "EC" && key.crv.as_deref() == Some("P-256"),
            Alg::EdDsa => key.kty == "OKP" && key.crv.as_deref() == Some("Ed25519"),
        };
        kind && key.alg.as_deref().is_none_or(|a| a == self.as_str())
            && key.use_.as_deref().is_none_or(|u| u == "sig")
    }
}

/// A public key as a JWKS lists it (the members pixport reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

impl Jwk {
    /// The key as WebCrypto imports it: only the public members, so
    /// `key_ops`, `ext` or private members a JWKS should not carry change
    /// nothing.
    pub fn public_json(&self) -> String {
        let mut o = serde_json::Map::new();
        for (k, v) in [
            ("kty", Some(&self.kty)),
            ("alg", self.alg.as_ref()),
            ("crv", self.crv.as_ref()),
            ("n", self.n.as_ref()),
            ("e", self.e.as_ref()),
            ("x", self.x.as_ref()),
            ("y", self.y.as_ref()),
        ] {
            if let Some(v) = v {
                o.insert(k.into(), v.clone().into());
            }
        }
        serde_json::Value::Object(o).to_string()
    }
}

/// A JWKS document.
#[derive(Debug, Deserialize)]
pub struct KeySetDoc {
    pub keys: Vec<serde_json::Value>,
}

impl KeySetDoc {
    /// The keys pixport can read; others (private, unknown types) are
    /// passed over, not refused: a provider may publish them.
    pub fn usable(self) -> Vec<Jwk> {
        self.keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .filter(|k| {
                [Alg::Rs256, Alg::Es256, Alg::EdDsa]
                    .iter()
                    .any(|a| a.fits(k))
            })
            .collect()
    }
}

/// What sign-ins are accepted (`JWT_*` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub issuer: String,
    pub audience: String,
    pub algorithms: Vec<Alg>,
    pub leeway_secs: u64,
}

/// Why a JWT is refused. The message is the client's: it names the rule,
/// never the key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    #[error("no key of the issuer matches the token")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is from another issuer")]
    Issuer,
    #[error("the token is for another audience")]
    Audience,
    #[error("the token names no subject")]
    Subject,
    /// The issuer's keys could not be fetched: not the client's fault.
    #[error("the issuer's keys are unavailable: {0}")]
    KeysUnavailable(String),
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    iat: Option<f64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Whether a bearer credential looks like a JWT (three base64url parts, a
/// JSON header): what is not is a server token or a grant.
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}

/// The owner id of a subject.
pub fn owner_of(issuer: &str, subject: &str) -> String {
    let d = Sha256::digest(format!("{issuer}\n{subject}").as_bytes());
    format!("u-{}", hex::encode(&d[..20]))
}

/// Checks `token` by `rules` against the issuer's `keys` at `now_secs`.
pub async fn verify<K: KeySet>(
    token: &str,
    rules: &Rules,
    keys: &K,
    now_secs: u64,
) -> Result<Caller, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode = |part: &str| B64URL.decode(part).map_err(|_| JwtError::Malformed);
    let header: Header = serde_json::from_slice(&decode(h)?).map_err(|_| JwtError::Malformed)?;
    if header.crit.is_some() {
        // No extension is understood, so none may be critical (RFC 7515 4.1.11).
        return Err(JwtError::Malformed);
    }
    let alg = Alg::parse(&header.alg)
        .filter(|a| rules.algorithms.contains(a))
        .ok_or(JwtError::Algorithm)?;
    let signature = decode(s)?;
    let key = keys
        .find(header.kid.as_deref(), alg)
        .await?
        .ok_or(JwtError::UnknownKey)?;
    if !alg.fits(&key) {
        return Err(JwtError::UnknownKey);
    }
    let signed = &token[..h.len() + 1 + p.len()];
    if !keys
        .verify(&key, alg, signed.as_bytes(), &signature)
        .await?
    {
        return Err(JwtError::Signature);
    }
    let claims: Claims = serde_json::from_slice(&decode(p)?).map_err(|_| JwtError::Malformed)?;
    check(&claims, rules, now_secs)?;
    let (iss, sub) = (
        claims.iss.unwrap_or_default(),
        claims.sub.unwrap_or_default(),
    );
    let words: Vec<&str> = match (&claims.scope, &claims.scp) {
        (Some(s), _) => s.split_whitespace().collect(),
        (None, Some(list)) => list.iter().map(String::as_str).collect(),
        (None, None) => Vec::new(),
    };
    let named = Scopes::parse(words.iter().copied());
    let mentions_pixport = words
        .iter()
        .any(|w| w.starts_with("pixport:") || matches!(*w, "read" | "write" | "admin"));
    let scopes = if mentions_pixport {
        named
    } else {
        Scopes::parse(["write"])
    };
    Ok(Caller {
        owner: owner_of(&iss, &sub),
        scopes,
        grant: None,
    })
}

fn check(c: &Claims, rules: &Rules, now: u64) -> Result<(), JwtError> {
    let (now, leeway) = (now as f64, rules.leeway_secs as f64);
    if c.iss.as_deref() != Some(rules.issuer.as_str()) {
        return Err(JwtError::Issuer);
    }
    let for_us = match &c.aud {
        Some(Audience::One(a)) => *a == rules.audience,
        Some(Audience::Many(list)) => list.contains(&rules.audience),
        None => false,
    };
    if !for_us {
        return Err(JwtError::Audience);
    }
    // An expiry is required: a sign-in that never ends is a password.
    match c.exp {
        Some(exp) if exp + leeway > now => {}
        _ => return Err(JwtError::Expired),
    }
    if c.nbf.is_some_and(|nbf| nbf - leeway > now) || c.iat.is_some_and(|iat| iat - leeway > now) {
        return Err(JwtError::NotYetValid);
    }
    if c.sub.as_deref().is_none_or(str::is_empty) {
        return Err(JwtError::Subject);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use futures_executor::block_on;
    use serde_json::json;

    use super::*;

    /// Keys in memory; a signature "verifies" when it is `valid-for-<kid>`
    /// (the real check is WebCrypto's, tested through `wrangler dev`).
    #[derive(Default)]
    struct Keys {
        keys: Vec<Jwk>,
        /// Keys that appear only once the set is fetched again.
        rotated_in: Vec<Jwk>,
        fetches: RefCell<u32>,
    }

    impl KeySet for Keys {
        async fn find(&self, kid: Option<&str>, _: Alg) -> Result<Option<Jwk>, JwtError> {
            let hit = |keys: &[Jwk]| keys.iter().find(|k| k.kid.as_deref() == kid).cloned();
            if let Some(k) = hit(&self.keys) {
                return Ok(Some(k));
            }
            *self.fetches.borrow_mut() += 1;
            Ok(hit(&self.rotated_in))
        }

        async fn verify(&self, key: &Jwk, _: Alg, _: &[u8], sig: &[u8]) -> Result<bool, JwtError> {
            Ok(sig == format!("valid-for-{}", key.kid.as_deref().unwrap_or("")).as_bytes())
        }
    }

    fn key(kid: &str, kty: &str, crv: Option<&str>) -> Jwk {
        Jwk {
            kty: kty.into(),
            kid: Some(kid.into()),
            alg: None,
            use_: None,
            crv: crv.map(str::to_string),
            n: Some("n".into()),
            e: Some("AQAB".into()),
            x: Some("x".into()),
            y: Some("y".into()),
        }
    }

    fn rules() -> Rules {
        Rules {
            issuer: "https://id.example".into(),
            audience: "pixport".into(),
            algorithms: vec![Alg::Rs256, Alg::Es256, Alg::EdDsa],
            leeway_secs: 60,
        }
    }

    const NOW: u64 = 1_800_000_000;

    fn token(header: serde_json::Value, claims: serde_json::Value, sig: &str) -> String {
        let enc = |v: serde_json::Value| B64URL.encode(v.to_string());
        format!("{}.{}.{}", enc(header), enc(claims), B64URL.encode(sig))
    }

    fn claims() -> serde_json::Value {
        json!({"iss": "https://id.example", "aud": "pixport", "sub": "user-1", "exp": NOW + 300, "iat": NOW})
    }

    fn keys() -> Keys {
        Keys {
            keys: vec![
                key("r1", "RSA", None),
                key("e1", "EC", Some("P-256")),
                key("d1", "OKP", Some("Ed25519")),
            ],
            ..Keys::default()
        }
    }

    fn check_token(t: &str, k: &Keys) -> Result<Caller, JwtError> {
        block_on(verify(t, &rules(), k, NOW))
    }

    #[test]
    fn a_signed_token_of_the_issuer_for_pixport_is_its_subject() {
        let k = keys();
        for (alg, kid) in [("RS256", "r1"), ("ES256", "e1"), ("EdDSA", "d1")] {
            let t = token(
                json!({"alg": alg, "kid": kid}),
                claims(),
                &format!("valid-for-{kid}"),
            );
            let c = check_token(&t, &k).unwrap();
            assert_eq!(c.owner, owner_of("https://id.example", "user-1"), "{alg}");
            assert_eq!(c.scopes.names(), ["read", "write"]);
        }
        assert!(owner_of("https://id.example", "user-1").len() <= 64);
        assert_ne!(
            owner_of("https://a.example", "1"),
            owner_of("https://b.example", "1")
        );
    }

    #[test]
    fn the_header_cannot_pick_the_algorithm_or_the_key_type() {
        let k = keys();
        for (header, why) in [
            (json!({"alg": "none", "kid": "r1"}), JwtError::Algorithm),
            (json!({"alg": "HS256", "kid": "r1"}), JwtError::Algorithm),
            (json!({"alg": "RS512", "kid": "r1"}), JwtError::Algorithm),
            // An RSA key asked to check an ES256 signature, and so on.
            (json!({"alg": "ES256", "kid": "r1"}), JwtError::UnknownKey),
            (json!({"alg": "EdDSA", "kid": "e1"}), JwtError::UnknownKey),
            (json!({"alg": "RS256", "kid": "d1"}), JwtError::UnknownKey),
            (
                json!({"alg": "RS256", "kid": "r1", "crit": ["exp"]}),
                JwtError::Malformed,
            ),
        ] {
            let t = token(header.clone(), claims(), "valid-for-r1");
            assert_eq!(check_token(&t, &k).err(), Some(why), "{header}");
        }
        // A configuration may narrow the list.
        let mut only_es = rules();
        only_es.algorithms = vec![Alg::Es256];
        let t = token(
            json!({"alg": "RS256", "kid": "r1"}),
            claims(),
            "valid-for-r1",
        );
        assert_eq!(
            block_on(verify(&t, &only_es, &k, NOW)).err(),
            Some(JwtError::Algorithm)
        );
        // A key that says it is for another algorithm.
        let mut pinned = keys();
        pinned.keys[0].alg = Some("RS384".into());
        assert_eq!(check_token(&t, &pinned).err(), Some(JwtError::UnknownKey));
    }

    #[test]
    fn every_claim_is_checked_within_the_leeway() {
        let k = keys();
        let with = |change: serde_json::Value| {
            let mut c = claims();
            for (name, v) in change.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(name);
                } else {
                    c[name] = v.clone();
                }
            }
            check_token(
                &token(json!({"alg": "RS256", "kid": "r1"}), c, "valid-for-r1"),
                &k,
            )
        };
        assert!(with(json!({"exp": NOW - 30})).is_ok(), "inside the leeway");
        assert_eq!(
            with(json!({"exp": NOW - 61})).err(),
            Some(JwtError::Expired)
        );
        assert_eq!(with(json!({"exp": null})).err(), Some(JwtError::Expired));
        assert_eq!(
            with(json!({"nbf": NOW + 120})).err(),
            Some(JwtError::NotYetValid)
        );
        assert_eq!(
            with(json!({"iat": NOW + 120})).err(),
            Some(JwtError::NotYetValid)
        );
        assert_eq!(
            with(json!({"iss": "https://evil.example"})).err(),
            Some(JwtError::Issuer)
        );
        assert_eq!(
            with(json!({"aud": "another-api"})).err(),
            Some(JwtError::Audience)
        );
        assert!(with(json!({"aud": ["another-api", "pixport"]})).is_ok());
        assert_eq!(with(json!({"aud": null})).err(), Some(JwtError::Audience));
        assert_eq!(with(json!({"sub": ""})).err(), Some(JwtError::Subject));
        let read = with(json!({"scope": "openid pixport:read"})).unwrap();
        assert_eq!(read.scopes.names(), ["read"]);
        let admin = with(json!({"scp": ["pixport:admin"]})).unwrap();
        assert!(admin.scopes.contains(Scopes::ADMIN));
    }

    #[test]
    fn a_forged_signature_or_an_unknown_key_is_refused_and_a_rotation_is_found() {
        let k = keys();
        let wrong = token(json!({"alg": "RS256", "kid": "r1"}), claims(), "forged");
        assert_eq!(check_token(&wrong, &k).err(), Some(JwtError::Signature));
        let new = token(
            json!({"alg": "ES256", "kid": "e2"}),
            claims(),
            "valid-for-e2",
        );
        assert_eq!(check_token(&new, &k).err(), Some(JwtError::UnknownKey));
        let rotated = Keys {
            rotated_in: vec![key("e2", "EC", Some("P-256"))],
            ..keys()
        };
        assert!(check_token(&new, &rotated).is_ok());
        assert_eq!(*rotated.fetches.borrow(), 1);
        for junk in ["", "a.b", "a.b.c.d", "eyJ.e30.x", "!!.!!.!!"] {
            assert!(check_token(junk, &k).is_err(), "{junk}");
        }
    }

    #[test]
    fn a_jwks_keeps_the_keys_pixport_can_use() {
        let doc: KeySetDoc = serde_json::from_value(json!({"keys": [
            {"kty": "RSA", "kid": "r", "n": "n", "e": "AQAB", "use": "sig"},
            {"kty": "RSA", "kid": "enc", "n": "n", "e": "AQAB", "use": "enc"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "x", "y": "y"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "x"},
            {"not": "a key"}
        ]}))
        .unwrap();
        let kids: Vec<String> = doc.usable().into_iter().filter_map(|k| k.kid).collect();
        assert_eq!(kids, ["r", "ed"]);
        let json = key("r1", "RSA", None).public_json();
        assert!(!json.contains("kid") && json.contains("\"n\""));
    }
}
