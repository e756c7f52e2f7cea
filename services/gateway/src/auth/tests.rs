//! Unit tests of the pure parts of authentication: the method table, role and scope checks,
//! tenant resolution, bearer parsing, and JWT verification with HS256, RS256 and ES256 tokens
//! built here by hand (so the verifier is checked against an independent encoder).
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self as sig, KeyPair as _};
use serde_json::{json, Value};
use tonic::Code;

use super::*;

const SECRET: &str = "an-hs256-secret-of-at-least-32-bytes!";

fn cred(scope: &str, role: Role) -> Credential {
    Credential { scope: scope.into(), role, principal: "key:k1".into() }
}

fn now() -> i64 {
    baton_telemetry::now_ms() / 1000
}

/// A JWT with header `alg`, `claims`, signed by `sign`.
fn token(alg: &str, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let head = URL_SAFE_NO_PAD.encode(json!({ "alg": alg, "typ": "JWT" }).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let message = format!("{head}.{body}");
    let signature = URL_SAFE_NO_PAD.encode(sign(message.as_bytes()));
    format!("{message}.{signature}")
}

fn hs256(secret: &str) -> impl Fn(&[u8]) -> Vec<u8> + '_ {
    move |m| ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes()), m).as_ref().to_vec()
}

fn claims(tenant: &str, role: &str) -> Value {
    json!({ "iss": "https://idp.test", "aud": "baton", "exp": now() + 300, "sub": "svc-b", "tenant": tenant, "role": role })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn auth_config(keys: Vec<String>) -> baton_config::Auth {
    baton_config::Auth {
        mode: AuthMode::Required,
        jwt_hs256_secret_env: "JWT_SECRET".into(),
        jwt_public_keys: keys,
        jwt_issuer: "https://idp.test".into(),
        jwt_audience: "baton".into(),
        jwt_leeway_secs: 0,
        ..Default::default()
    }
}

fn env(name: &str) -> Option<String> {
    match name {
        "JWT_SECRET" => Some(SECRET.into()),
        "BOOT" => Some("b".repeat(40)),
        "SHORT" => Some("too-short".into()),
        _ => None,
    }
}

fn verifier(keys: Vec<String>) -> jwt::JwtVerifier {
    jwt::JwtVerifier::from_config(&auth_config(keys), &env).unwrap().unwrap()
}

/// Writes `text` to a fresh file under the temp dir and returns its path.
fn temp_file(name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!("baton-auth-test-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// The DER inside the first PEM block labelled `label` of `text`.
fn pem_block(text: &str, label: &str) -> (String, Vec<u8>) {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).unwrap();
    let stop = text.find(&end).unwrap() + end.len();
    let block = &text[start..stop];
    let body: String = block.lines().filter(|l| !l.starts_with("-----")).collect();
    (format!("{block}\n"), STANDARD.decode(body).unwrap())
}

#[test]
fn roles_are_ordered_and_named() {
    assert!(Role::Submitter < Role::Operator && Role::Operator < Role::Admin);
    for role in [Role::Submitter, Role::Operator, Role::Admin] {
        assert_eq!(Role::parse(role.name()), Some(role));
        assert_eq!(Role::from_proto(role.to_proto() as i32), Some(role));
    }
    assert_eq!(Role::parse(" ADMIN "), Some(Role::Admin));
    assert_eq!((Role::parse("root"), Role::from_proto(0), Role::from_proto(99)), (None, None, None));
}

#[test]
fn every_method_has_a_need() {
    let role = |role, fleet| Need::Role { role, fleet };
    let table = [
        ("/grpc.health.v1.Health/Check", Need::Open),
        ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", Need::Open),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", Need::Open),
        ("/baton.v1.RunService/SubmitRun", role(Role::Submitter, false)),
        ("/baton.v1.RunService/WatchRun", role(Role::Submitter, false)),
        ("/baton.v1.RunService/CancelRun", role(Role::Submitter, false)),
        ("/baton.v1.RunService/ResolveApproval", role(Role::Operator, false)),
        ("/baton.v1.RunService/ListApprovals", role(Role::Operator, false)),
        ("/baton.v1.RunService/ReconcileRun", role(Role::Operator, false)),
        ("/baton.v1.AdminService/RequeueDeadLetter", role(Role::Operator, true)),
        ("/baton.v1.AdminService/SetLaneSwitch", role(Role::Operator, true)),
        ("/baton.v1.KeyService/CreateKey", role(Role::Admin, false)),
        ("/baton.v1.Unknown/Anything", role(Role::Admin, true)),
        ("garbage", role(Role::Admin, true)),
    ];
    for (path, want) in table {
        assert_eq!(need(path), want, "{path}");
    }
}

#[test]
fn roles_and_scopes_are_enforced_with_a_clear_message() {
    let submit = "/baton.v1.RunService/SubmitRun";
    let approve = "/baton.v1.RunService/ResolveApproval";
    let admin = "/baton.v1.AdminService/ListDeadLetters";
    let keys = "/baton.v1.KeyService/ListKeys";
    permit(submit, &cred("b", Role::Submitter)).unwrap();
    permit(approve, &cred("b", Role::Operator)).unwrap();
    permit(admin, &cred("*", Role::Operator)).unwrap();
    permit(keys, &cred("b", Role::Admin)).unwrap();
    permit("/grpc.health.v1.Health/Check", &cred("b", Role::Submitter)).unwrap();

    let e = permit(approve, &cred("b", Role::Submitter)).unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("needs the operator or admin role"), "{}", e.message());
    let e = permit(admin, &cred("b", Role::Admin)).unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("for every tenant (*)"), "{}", e.message());
    assert!(e.message().contains("admin for tenant \"b\""), "{}", e.message());
    let e = permit(keys, &cred("*", Role::Operator)).unwrap_err();
    assert!(e.message().contains("needs the admin role;"), "{}", e.message());
}

#[test]
fn the_tenant_comes_from_the_credential_never_from_the_header() {
    assert_eq!(resolve_tenant("b", None).unwrap(), "b");
    assert_eq!(resolve_tenant("b", Some("b")).unwrap(), "b");
    let e = resolve_tenant("b", Some("a")).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("not the tenant of this credential"), "{}", e.message());
    // A credential for every tenant names it per call.
    assert_eq!(resolve_tenant("*", Some("a")).unwrap(), "a");
    assert_eq!(resolve_tenant("*", None).unwrap(), "default");
    assert_eq!(resolve_tenant("*", Some("a b")).unwrap_err().code(), Code::InvalidArgument);
}

#[test]
fn bearer_tokens_are_parsed_strictly() {
    let headers = |value: Option<&str>| {
        let mut h = http::HeaderMap::new();
        if let Some(v) = value {
            h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
        }
        h
    };
    assert_eq!(bearer(&headers(Some("Bearer abc"))).unwrap(), "abc");
    assert_eq!(bearer(&headers(Some("bearer  abc "))).unwrap(), "abc");
    assert!(bearer(&headers(None)).unwrap_err().contains("no credential"));
    assert!(bearer(&headers(Some("Basic YTpi"))).is_err());
    assert!(bearer(&headers(Some("Bearer"))).is_err());
    assert!(bearer(&headers(Some("Bearer "))).is_err());
}

#[test]
fn secrets_are_stored_as_sha256_hex() {
    assert_eq!(secret_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

#[test]
fn an_hs256_token_carries_tenant_and_role() {
    let v = verifier(vec![]);
    let c = v.verify(&token("HS256", &claims("b", "submitter"), hs256(SECRET))).unwrap();
    assert_eq!(c, Credential { scope: "b".into(), role: Role::Submitter, principal: "jwt:svc-b".into() });
    let c = v.verify(&token("HS256", &claims("*", "operator"), hs256(SECRET))).unwrap();
    assert_eq!((c.scope.as_str(), c.role), ("*", Role::Operator));
    // An audience list naming the gateway among others is fine.
    let many = with(claims("b", "admin"), "aud", json!(["other", "baton"]));
    assert_eq!(v.verify(&token("HS256", &many, hs256(SECRET))).unwrap().role, Role::Admin);
}

#[test]
fn bad_tokens_are_refused_with_the_reason() {
    let v = verifier(vec![]);
    let good = claims("b", "submitter");
    let refused = |alg: &str, c: &Value, secret: &str| v.verify(&token(alg, c, hs256(secret))).unwrap_err();
    let cases = [
        (refused("HS256", &with(good.clone(), "exp", json!(now() - 60)), SECRET), "expired"),
        (refused("HS256", &with(good.clone(), "aud", json!("someone-else")), SECRET), "audience"),
        (refused("HS256", &with(good.clone(), "iss", json!("https://evil.test")), SECRET), "issuer"),
        (refused("HS256", &with(good.clone(), "nbf", json!(now() + 600)), SECRET), "not valid yet"),
        (refused("HS256", &good, "another-secret-of-at-least-32-bytes!!"), "signature"),
        (refused("HS256", &with(good.clone(), "tenant", json!(7)), SECRET), "tenant"),
        (refused("HS256", &with(good.clone(), "tenant", json!("a b")), SECRET), "tenant"),
        (refused("HS256", &with(good.clone(), "role", json!("root")), SECRET), "not a role"),
        // The type confusion of CVE-2026-25537: a claim of the wrong type is not "absent".
        (refused("HS256", &with(good.clone(), "exp", json!("9999999999")), SECRET), "exp"),
        (refused("HS256", &with(good.clone(), "nbf", json!("9999999999")), SECRET), "nbf"),
        (refused("RS256", &good, SECRET), "not accepted"),
        (refused("none", &good, SECRET), "malformed"),
    ];
    for (message, want) in cases {
        assert!(message.contains(want), "{message:?} does not say {want:?}");
    }
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert!(refused("HS256", &no_exp, SECRET).contains("exp"));
    // Unsigned: header and claims only.
    let t = token("HS256", &good, hs256(SECRET));
    let unsigned = format!("{}.", t.rsplit_once('.').unwrap().0);
    assert!(v.verify(&unsigned).is_err());
}

#[test]
fn es256_and_rs256_tokens_verify_against_configured_public_keys() {
    let rng = SystemRandom::new();
    let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec = sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // SubjectPublicKeyInfo of a P-256 key: the fixed algorithm prefix, then the point.
    let mut spki = hex_decode("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    spki.extend_from_slice(ec.public_key().as_ref());
    let ec_path = temp_file("es256.pem", &pem("PUBLIC KEY", &spki));

    let fixture = include_str!("testdata/rs256-test-key.pem");
    let (public_pem, _) = pem_block(fixture, "PUBLIC KEY");
    let (_, private_der) = pem_block(fixture, "PRIVATE KEY");
    let rsa = sig::RsaKeyPair::from_pkcs8(&private_der).unwrap();
    let rsa_path = temp_file("rs256.pem", &public_pem);

    let v = verifier(vec![ec_path, rsa_path]);
    assert_eq!(v.algorithms(), ["HS256", "RS256", "ES256"]);
    let es_sign = |m: &[u8]| ec.sign(&rng, m).unwrap().as_ref().to_vec();
    let rs_sign = |m: &[u8]| {
        let mut out = vec![0; rsa.public().modulus_len()];
        rsa.sign(&sig::RSA_PKCS1_SHA256, &rng, m, &mut out).unwrap();
        out
    };
    assert_eq!(v.verify(&token("ES256", &claims("b", "submitter"), es_sign)).unwrap().scope, "b");
    assert_eq!(v.verify(&token("RS256", &claims("c", "operator"), rs_sign)).unwrap().role, Role::Operator);
    // Algorithm confusion: a token that names HS256 and is "signed" with the public key as
    // the HMAC secret is checked against the HS256 secret only, and fails.
    let confused = token("HS256", &claims("b", "admin"), |m| {
        ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, public_pem.as_bytes()), m).as_ref().to_vec()
    });
    assert!(v.verify(&confused).unwrap_err().contains("signature"));
    // A token signed with one key kind but naming another algorithm fails.
    assert!(v.verify(&token("ES256", &claims("b", "admin"), rs_sign)).is_err());
    let expired = with(claims("b", "submitter"), "exp", json!(now() - 60));
    assert!(v.verify(&token("ES256", &expired, es_sign)).unwrap_err().contains("expired"));
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn jwt_config_is_checked_at_start() {
    assert!(jwt::JwtVerifier::from_config(&baton_config::Auth::default(), &env).unwrap().is_none());
    let short = baton_config::Auth { jwt_hs256_secret_env: "SHORT".into(), ..auth_config(vec![]) };
    let e = jwt::JwtVerifier::from_config(&short, &env).err().unwrap().to_string();
    assert!(e.contains("at least 32 bytes"), "{e}");
    let no_audience = baton_config::Auth { jwt_audience: String::new(), ..auth_config(vec![]) };
    let e = jwt::JwtVerifier::from_config(&no_audience, &env).err().unwrap().to_string();
    assert!(e.contains("jwt_audience"), "{e}");
    let not_a_key = auth_config(vec![temp_file("not-a-key.pem", "hello")]);
    let e = jwt::JwtVerifier::from_config(&not_a_key, &env).err().unwrap().to_string();
    assert!(e.contains("not an RSA or EC P-256 public key"), "{e}");
}

#[tokio::test]
async fn the_layer_admits_by_bootstrap_key_or_jwt_and_leaves_health_open() {
    // The Redis URL is never dialled: these credentials need no lookup.
    let store = baton_store::Store::new(&baton_config::Redis::default()).unwrap();
    let config = baton_config::Auth { bootstrap_admin_key_env: "BOOT".into(), ..auth_config(vec![]) };
    let auth = Authenticator::from_config(&config, &env, store.clone()).unwrap();
    let headers = |token: Option<String>, tenant: Option<&str>| {
        let mut h = http::HeaderMap::new();
        if let Some(t) = token {
            h.insert(http::header::AUTHORIZATION, format!("Bearer {t}").parse().unwrap());
        }
        if let Some(t) = tenant {
            h.insert(TENANT_HEADER, t.parse().unwrap());
        }
        h
    };
    let health = auth.admit("/grpc.health.v1.Health/Check", &headers(None, None)).await.unwrap();
    assert_eq!(health, Identity::Open);
    let none = auth.admit("/baton.v1.RunService/ListRuns", &headers(None, Some("a"))).await.unwrap_err();
    assert_eq!(none.code(), Code::Unauthenticated);
    let boot = Some("b".repeat(40));
    let Identity::Caller(c) =
        auth.admit("/baton.v1.AdminService/ListTools", &headers(boot.clone(), None)).await.unwrap()
    else {
        panic!("not a caller")
    };
    assert_eq!(
        (c.tenant.as_str(), c.credential.scope.as_str(), c.credential.principal.as_str()),
        ("default", "*", "bootstrap")
    );
    let Identity::Caller(c) = auth.admit("/baton.v1.RunService/GetRun", &headers(boot, Some("a"))).await.unwrap()
    else {
        panic!("not a caller")
    };
    assert_eq!(c.tenant, "a");
    let jwt = Some(token("HS256", &claims("b", "submitter"), hs256(SECRET)));
    let Identity::Caller(c) = auth.admit("/baton.v1.RunService/GetRun", &headers(jwt.clone(), None)).await.unwrap()
    else {
        panic!("not a caller")
    };
    assert_eq!(c.tenant, "b");
    let e = auth.admit("/baton.v1.RunService/GetRun", &headers(jwt.clone(), Some("a"))).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = auth.admit("/baton.v1.AdminService/ListTools", &headers(jwt, None)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // Off: everyone is anonymous and the header decides (today's behaviour).
    let off = Authenticator::from_config(&baton_config::Auth::default(), &env, store.clone()).unwrap();
    let anon = off.admit("/baton.v1.KeyService/CreateKey", &headers(None, Some("a"))).await.unwrap();
    assert_eq!(anon, Identity::Anonymous);
    // A bootstrap key too short to be safe stops the gateway.
    let short = baton_config::Auth { bootstrap_admin_key_env: "SHORT".into(), ..auth_config(vec![]) };
    assert!(Authenticator::from_config(&short, &env, store).is_err());
}
