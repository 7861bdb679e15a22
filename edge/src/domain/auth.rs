//! The one place a credential becomes a caller, and a caller's scope is
//! checked against what a route needs.

use crate::domain::error::{Error, Result};
use crate::domain::grant::{self, GrantKeys};
use crate::domain::identity::{Caller, Scopes, Tokens};
use crate::domain::jwt::{self, JwtError, KeySet, Rules};

/// The ways in a deployment has configured.
pub struct Authenticator<'a, K> {
    pub tokens: &'a Tokens,
    /// Sign-in JWTs: the rules and the issuer's keys.
    pub jwt: Option<(&'a Rules, &'a K)>,
    pub grants: Option<&'a GrantKeys>,
}

impl<K: KeySet> Authenticator<'_, K> {
    /// The caller a bearer credential stands for. No credential, or a
    /// server token that is none of the configured ones, is an anonymous
    /// caller (`None`: public reads stay open); a JWT or a grant that does
    /// not hold is refused with the rule it broke.
    pub async fn caller(&self, bearer: Option<&str>, now_secs: u64) -> Result<Option<Caller>> {
        let Some(credential) = bearer else {
            return Ok(None);
        };
        if grant::looks_like_grant(credential) {
            let keys = self
                .grants
                .ok_or_else(|| Error::Unauthenticated("upload grants are not enabled".into()))?;
            let g = keys.open(credential, now_secs)?;
            return Ok(Some(Caller {
                owner: g.owner.clone(),
                scopes: Scopes::UPLOAD,
                grant: Some(g),
            }));
        }
        if jwt::looks_like_jwt(credential)
            && let Some((rules, keys)) = self.jwt
        {
            return match jwt::verify(credential, rules, keys, now_secs).await {
                Ok(c) => Ok(Some(c)),
                Err(JwtError::KeysUnavailable(why)) => Err(Error::IdentityUnavailable(why)),
                Err(e) => Err(Error::Unauthenticated(e.to_string())),
            };
        }
        Ok(self.tokens.authenticate(credential))
    }
}

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone; a caller, if any, sees more (its own rows and fields).
    Nobody,
    /// Any authenticated caller.
    AnyCaller,
    Read,
    Write,
    /// Write, or an upload grant (the upload routes).
    Upload,
    Admin,
}

/// Whether `caller` may use a route that needs `need`: `Unauthorized`
/// (`None` returned as `Err(None)`) without a caller, `Forbidden` with one
/// that lacks the scope.
pub fn allow(caller: Option<&Caller>, need: Need) -> std::result::Result<(), Option<Error>> {
    let scopes = match (need, caller) {
        (Need::Nobody, _) => return Ok(()),
        (_, None) => return Err(None),
        (_, Some(c)) => c.scopes,
    };
    let ok = match need {
        Need::Nobody | Need::AnyCaller => true,
        Need::Read => scopes.contains(Scopes::READ),
        Need::Write => scopes.contains(Scopes::WRITE),
        Need::Upload => scopes.contains(Scopes::WRITE) || scopes.contains(Scopes::UPLOAD),
        Need::Admin => scopes.contains(Scopes::ADMIN),
    };
    if ok {
        Ok(())
    } else {
        let what = match need {
            Need::Read => "read images",
            Need::Write => "change images or settings",
            Need::Upload => "upload",
            Need::Admin => "use operator routes",
            Need::Nobody | Need::AnyCaller => "do this",
        };
        Err(Some(Error::Forbidden(what.into())))
    }
}

#[cfg(test)]
mod tests {
    use futures_executor::block_on;

    use super::*;
    use crate::domain::grant::Request;
    use crate::domain::jwt::{Alg, Jwk};
    use crate::domain::upload::testing::{code, limits};

    struct NoKeys;

    impl KeySet for NoKeys {
        async fn find(
            &self,
            _: Option<&str>,
            _: Alg,
        ) -> std::result::Result<Option<Jwk>, JwtError> {
            Err(JwtError::KeysUnavailable("down".into()))
        }
        async fn verify(
            &self,
            _: &Jwk,
            _: Alg,
            _: &[u8],
            _: &[u8],
        ) -> std::result::Result<bool, JwtError> {
            Ok(false)
        }
    }

    const SECRET: &str = "a-secret-of-thirty-two-characters-or-more";

    #[test]
    fn each_credential_finds_its_caller_or_says_why_not() {
        let tokens = Tokens::parse("alice=t1,ro:read=t2").unwrap();
        let grants = GrantKeys::parse(SECRET).unwrap().unwrap();
        let rules = Rules {
            issuer: "https://id.example".into(),
            audience: "pixport".into(),
            algorithms: vec![Alg::Rs256],
            leeway_secs: 0,
        };
        let auth = Authenticator {
            tokens: &tokens,
            jwt: Some((&rules, &NoKeys)),
            grants: Some(&grants),
        };
        let now = 1_800_000_000;
        let who = |c: Option<&str>| block_on(auth.caller(c, now));
        assert_eq!(who(None).unwrap(), None);
        assert_eq!(who(Some("unknown")).unwrap(), None);
        assert_eq!(who(Some("t1")).unwrap().unwrap().owner, "alice");
        let (g, _) = grants
            .mint(
                "alice",
                "01JABCDEFGHJKMNPQRSTVWXYZ0",
                Request::default(),
                &limits(),
                now,
            )
            .unwrap();
        let by_grant = who(Some(&g)).unwrap().unwrap();
        assert_eq!(
            (by_grant.owner.as_str(), by_grant.scopes),
            ("alice", Scopes::UPLOAD)
        );
        assert_eq!(
            code(&who(Some("pxg_forged.x")).unwrap_err()),
            "unauthorized"
        );
        let jwt = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln";
        assert_eq!(code(&who(Some(jwt)).unwrap_err()), "identity_unavailable");
        let without = Authenticator::<NoKeys> {
            tokens: &tokens,
            jwt: None,
            grants: None,
        };
        assert_eq!(
            code(&block_on(without.caller(Some(&g), now)).unwrap_err()),
            "unauthorized"
        );
        assert_eq!(block_on(without.caller(Some(jwt), now)).unwrap(), None);
    }

    #[test]
    fn each_route_need_is_checked_against_the_scopes() {
        let with = |scopes| Caller {
            owner: "o".into(),
            scopes,
            grant: None,
        };
        let (read, write, upload) = (
            with(Scopes::parse(["read"])),
            with(Scopes::parse(["write"])),
            with(Scopes::UPLOAD),
        );
        assert!(allow(None, Need::Nobody).is_ok());
        assert!(matches!(allow(None, Need::Read), Err(None)));
        assert!(allow(Some(&read), Need::Read).is_ok());
        assert!(matches!(
            allow(Some(&read), Need::Write),
            Err(Some(Error::Forbidden(_)))
        ));
        assert!(matches!(
            allow(Some(&read), Need::Upload),
            Err(Some(Error::Forbidden(_)))
        ));
        assert!(allow(Some(&write), Need::Upload).is_ok());
        assert!(allow(Some(&upload), Need::Upload).is_ok());
        assert!(matches!(allow(Some(&upload), Need::Read), Err(Some(_))));
        assert!(matches!(allow(Some(&write), Need::Admin), Err(Some(_))));
        assert!(allow(Some(&upload), Need::AnyCaller).is_ok());
    }
}
