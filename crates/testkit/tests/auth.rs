//! Authentication and tenant isolation over real processes (`auth.mode = "required"`): API keys
//! created through KeyService (and `batonctl keys`), JWTs (HS256 and ES256), roles, and two
//! tenants that must never see each other's runs — whatever header they send. Then TLS on the
//! gRPC listener with a certificate made here, spoken to by `batonctl --tls-ca`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use baton_proto::v1::admin_service_client::AdminServiceClient;
use baton_proto::v1::key_service_client::KeyServiceClient;
use baton_proto::v1::run_service_client::RunServiceClient;
use baton_proto::v1::{
    ApprovalDecision, CancelRunRequest, CreateKeyRequest, DiscardDeadLetterRequest, GetRunRequest,
    ListApprovalsRequest, ListDeadLettersRequest, ListKeysRequest, ListRunsRequest, ListStepsRequest, ListToolsRequest,
    ReconcileRunRequest, Reconciliation, RequeueDeadLetterRequest, ResolveApprovalRequest, RevokeKeyRequest, Role,
    RunStatus, SetToolSwitchRequest, SubmitRunRequest, WatchRunRequest,
};
use baton_testkit::runs::script;
use baton_testkit::{bin_path, Stack, StackOptions};
use ring::signature::{self as sig, KeyPair as _};
use serde_json::{json, Value};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

const WITHIN: Duration = Duration::from_secs(60);
const BOOTSTRAP: &str = "bootstrap-admin-key-of-the-auth-tests-0123456789";
const JWT_SECRET: &str = "hs256-secret-of-the-auth-tests-0123456789abcdef";

/// Auth on, with a bootstrap admin key, HS256 and an ES256 key (`{dir}/es256.pem`).
fn auth_options() -> StackOptions {
    let mut opts = StackOptions::default();
    let env = [
        ("BATON_AUTH_MODE", "required"),
        ("BATON_AUTH_BOOTSTRAP_ADMIN_KEY_ENV", "AUTH_TEST_BOOTSTRAP"),
        ("AUTH_TEST_BOOTSTRAP", BOOTSTRAP),
        ("BATON_AUTH_JWT_HS256_SECRET_ENV", "AUTH_TEST_JWT_SECRET"),
        ("AUTH_TEST_JWT_SECRET", JWT_SECRET),
        ("BATON_AUTH_JWT_ISSUER", "https://idp.test"),
        ("BATON_AUTH_JWT_AUDIENCE", "baton"),
        ("BATON_AUTH_JWT_LEEWAY_SECS", "0"),
        ("BATON_SWITCHES_REFRESH_MS", "200"),
    ];
    opts.env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    opts.config_toml = "[auth]\njwt_public_keys = [\"{dir}/es256.pem\"]\n".into();
    opts
}

fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn authed_for<T>(message: T, token: &str, tenant: &str) -> Request<T> {
    let mut request = authed(message, token);
    request.metadata_mut().insert("x-baton-tenant", tenant.parse().unwrap());
    request
}

async fn channel(stack: &Stack) -> Channel {
    Channel::from_shared(format!("http://127.0.0.1:{}", stack.grpc_port)).unwrap().connect().await.unwrap()
}

async fn keys_client(stack: &Stack) -> KeyServiceClient<Channel> {
    KeyServiceClient::new(channel(stack).await)
}

/// Creates a key with `admin`'s credential; returns (key id, secret).
async fn create_key(keys: &mut KeyServiceClient<Channel>, admin: &str, tenant: &str, role: Role) -> (String, String) {
    let req = CreateKeyRequest { tenant: tenant.into(), role: role as i32, name: format!("{tenant}-{role:?}") };
    let resp = keys.create_key(authed(req, admin)).await.unwrap().into_inner();
    (resp.key.unwrap().key_id, resp.secret)
}

fn now_secs() -> i64 {
    baton_testkit::now_ms() / 1000
}

fn claims(tenant: &str, role: &str) -> Value {
    json!({ "iss": "https://idp.test", "aud": "baton", "exp": now_secs() + 300, "sub": "svc", "tenant": tenant, "role": role })
}

/// A JWT with header `alg` and `claims`, signed by `sign`.
fn jwt(alg: &str, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let head = URL_SAFE_NO_PAD.encode(json!({ "alg": alg, "typ": "JWT" }).to_string());
    let message = format!("{head}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = URL_SAFE_NO_PAD.encode(sign(message.as_bytes()));
    format!("{message}.{signature}")
}

fn hs256(claims: &Value) -> String {
    jwt("HS256", claims, |m| {
        ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, JWT_SECRET.as_bytes()), m).as_ref().to_vec()
    })
}

/// A P-256 key pair and its public key as a PEM SubjectPublicKeyInfo.
fn es256_key() -> (sig::EcdsaKeyPair, String) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key = sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let prefix = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
    let mut spki: Vec<u8> =
        (0..prefix.len()).step_by(2).map(|i| u8::from_str_radix(&prefix[i..i + 2], 16).unwrap()).collect();
    spki.extend_from_slice(key.public_key().as_ref());
    (key, format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(spki)))
}

fn assert_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, what: &str) -> Status {
    let status = result.map(|_| ()).expect_err(what);
    assert_eq!(status.code(), code, "{what}: {status:?}");
    status
}

/// The message of `status` with `id` replaced, to compare the answer about a foreign run with
/// the answer about a run that does not exist.
fn shape(status: &Status, id: &str) -> String {
    status.message().replace(id, "<run>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_only_their_own_runs_whatever_credential_or_header() {
    let mut stack = Stack::infra("auth", auth_options()).await;
    let (es_key, es_pem) = es256_key();
    stack.write_file("es256.pem", &es_pem);
    stack.start_gateway().await;
    stack.start("worker").await;
    stack.start("scheduler").await;
    stack.start("reaper").await;
    let mut rpc: RunServiceClient<Channel> = stack.client().await;
    let mut admin: AdminServiceClient<Channel> = stack.admin().await;
    let mut keys = keys_client(&stack).await;

    // No credential, a bad one, a header alone: UNAUTHENTICATED on every service.
    let s = assert_code(rpc.list_runs(ListRunsRequest::default()).await, Code::Unauthenticated, "no credential");
    assert!(s.message().contains("authorization: Bearer"), "{}", s.message());
    assert_code(admin.list_tools(ListToolsRequest {}).await, Code::Unauthenticated, "admin, no credential");
    assert_code(keys.list_keys(ListKeysRequest::default()).await, Code::Unauthenticated, "keys, no credential");
    let s = assert_code(
        rpc.list_runs(authed(ListRunsRequest::default(), "baton_nope")).await,
        Code::Unauthenticated,
        "bad key",
    );
    assert!(s.message().contains("unknown API key"), "{}", s.message());
    let mut header_only = Request::new(ListRunsRequest::default());
    header_only.metadata_mut().insert("x-baton-tenant", "a".parse().unwrap());
    assert_code(rpc.list_runs(header_only).await, Code::Unauthenticated, "a tenant header is no credential");
    // Health and reflection stay open.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(&stack).await);
    let check = tonic_health::pb::HealthCheckRequest { service: String::new() };
    assert_eq!(health.check(check).await.unwrap().into_inner().status, 1, "SERVING without a credential");
    let services = reflected_services(&stack).await;
    assert!(services.iter().any(|s| s == "baton.v1.KeyService"), "{services:?}");

    // Keys, made with the bootstrap admin key.
    let (_, a_sub) = create_key(&mut keys, BOOTSTRAP, "a", Role::Submitter).await;
    let (_, a_op) = create_key(&mut keys, BOOTSTRAP, "a", Role::Operator).await;
    let (b_sub_id, b_sub) = create_key(&mut keys, BOOTSTRAP, "b", Role::Submitter).await;
    let (_, b_op) = create_key(&mut keys, BOOTSTRAP, "b", Role::Operator).await;
    let (b_admin_id, b_admin) = create_key(&mut keys, BOOTSTRAP, "b", Role::Admin).await;
    let (_, fleet_op) = create_key(&mut keys, BOOTSTRAP, "*", Role::Operator).await;
    assert!(a_sub.starts_with("baton_") && a_sub.len() == 6 + 64, "{a_sub}");

    // A fleet operator makes `sleep` wait for a person, so tenant A gets a run waiting on one.
    let switch = SetToolSwitchRequest {
        tool: "sleep".into(),
        requires_approval: Some(true),
        actor: "ops".into(),
        reason: "auth test".into(),
        ..Default::default()
    };
    admin.set_tool_switch(authed(switch, &fleet_op)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let submit = |spec, key: &str| SubmitRunRequest { spec: Some(spec), idempotency_key: key.into() };
    let a_wait = rpc
        .submit_run(authed(submit(script(&[("sleep", r#"{"ms":1}"#)]), "shared-key"), &a_sub))
        .await
        .unwrap()
        .into_inner()
        .run_id;
    let a_done =
        rpc.submit_run(authed(submit(script(&[("echo", "{}")]), ""), &a_sub)).await.unwrap().into_inner().run_id;
    let get = |id: &str| GetRunRequest { run_id: id.into(), latest_steps: 0 };
    let deadline = tokio::time::Instant::now() + WITHIN;
    let a_run = loop {
        let run = rpc.get_run(authed(get(&a_wait), &a_sub)).await.unwrap().into_inner();
        let done = rpc.get_run(authed(get(&a_done), &a_sub)).await.unwrap().into_inner();
        if run.wait_reason == "approval" && done.status() == RunStatus::Succeeded {
            break run;
        }
        assert!(tokio::time::Instant::now() < deadline, "{run:?}\n{done:?}\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let approval = a_run.pending.as_ref().and_then(|p| p.approval.clone()).unwrap();
    let b_run =
        rpc.submit_run(authed(submit(script(&[("echo", "{}")]), ""), &b_sub)).await.unwrap().into_inner().run_id;

    // Tenant B, with each of its credentials, on A's runs: NOT_FOUND, worded as for a run that
    // does not exist; lists without A's runs.
    let b_jwt = hs256(&claims("b", "operator"));
    let missing = "run-that-does-not-exist";
    for (who, b) in [("b submitter", &b_sub), ("b operator", &b_op), ("b JWT", &b_jwt)] {
        for id in [&a_wait, &a_done] {
            let absent = rpc.get_run(authed(get(missing), b)).await.unwrap_err();
            let s = assert_code(rpc.get_run(authed(get(id), b)).await, Code::NotFound, who);
            assert_eq!(shape(&s, id), shape(&absent, missing), "{who}: GetRun tells a foreign run from a missing one");
            let steps = ListStepsRequest { run_id: id.to_string(), ..Default::default() };
            assert_code(rpc.list_steps(authed(steps, b)).await, Code::NotFound, who);
            let watch = WatchRunRequest { run_id: id.to_string(), after_seq: 0 };
            assert_code(rpc.watch_run(authed(watch, b)).await, Code::NotFound, who);
            let cancel = CancelRunRequest { run_id: id.to_string(), reason: "mine now".into() };
            assert_code(rpc.cancel_run(authed(cancel, b)).await, Code::NotFound, who);
        }
        let runs = rpc.list_runs(authed(ListRunsRequest::default(), b)).await.unwrap().into_inner().runs;
        assert!(runs.iter().all(|r| r.tenant == "b" && r.run_id != a_wait && r.run_id != a_done), "{who}: {runs:?}");
        assert!(runs.iter().any(|r| r.run_id == b_run), "{who} sees its own run");
    }
    // The same idempotency key in tenant B is a different run.
    let dup =
        rpc.submit_run(authed(submit(script(&[("echo", "{}")]), "shared-key"), &b_sub)).await.unwrap().into_inner();
    assert!(dup.run_id != a_wait && !dup.deduplicated, "{dup:?}");
    // Approvals and reconciliation of A's run by B's operator: NOT_FOUND; B's list is empty.
    let resolve = |by: &str| ResolveApprovalRequest {
        run_id: a_wait.clone(),
        approval_id: approval.approval_id.clone(),
        action_hash: approval.action_hash.clone(),
        decision: ApprovalDecision::Approve as i32,
        actor: by.into(),
        comment: String::new(),
    };
    let reconcile = ReconcileRunRequest {
        run_id: a_wait.clone(),
        step: 0,
        decision: Reconciliation::Done as i32,
        output_json: "{}".into(),
        actor: "mallory".into(),
        comment: String::new(),
    };
    for b in [&b_op, &b_jwt] {
        assert_code(rpc.resolve_approval(authed(resolve("mallory"), b)).await, Code::NotFound, "B approves A's run");
        assert_code(rpc.reconcile_run(authed(reconcile.clone(), b)).await, Code::NotFound, "B reconciles A's run");
        let listed = rpc
            .list_approvals(authed(ListApprovalsRequest { limit: 0, ..Default::default() }, b))
            .await
            .unwrap()
            .into_inner();
        assert!(listed.approvals.is_empty(), "{listed:?}");
    }
    // Per-run admin RPCs need a fleet credential: B's are refused the same way for A's run and
    // for a run that does not exist.
    for b in [&b_op, &b_admin, &b_jwt] {
        for id in [&a_wait, missing] {
            let requeue = RequeueDeadLetterRequest { run_id: id.to_string() };
            let s = assert_code(admin.requeue_dead_letter(authed(requeue, b)).await, Code::PermissionDenied, "requeue");
            assert!(s.message().contains("for every tenant (*)"), "{}", s.message());
            let discard = DiscardDeadLetterRequest { run_id: id.to_string() };
            assert_code(admin.discard_dead_letter(authed(discard, b)).await, Code::PermissionDenied, "discard");
        }
        let list = ListDeadLettersRequest { tenant: "a".into(), ..Default::default() };
        assert_code(admin.list_dead_letters(authed(list, b)).await, Code::PermissionDenied, "list dead letters");
    }
    // `x-baton-tenant: a` with B's credential never reaches A's runs.
    for b in [&b_sub, &b_op, &b_jwt] {
        assert_code(rpc.get_run(authed_for(get(&a_wait), b, "a")).await, Code::InvalidArgument, "header a, get");
        let s = assert_code(
            rpc.list_runs(authed_for(ListRunsRequest::default(), b, "a")).await,
            Code::InvalidArgument,
            "list",
        );
        assert!(s.message().contains("not the tenant of this credential"), "{}", s.message());
        let cancel = CancelRunRequest { run_id: a_wait.clone(), reason: String::new() };
        assert_code(rpc.cancel_run(authed_for(cancel, b, "a")).await, Code::InvalidArgument, "header a, cancel");
        let spec = submit(script(&[("echo", "{}")]), "shared-key");
        assert_code(rpc.submit_run(authed_for(spec, b, "a")).await, Code::InvalidArgument, "header a, submit");
    }
    assert_code(
        rpc.resolve_approval(authed_for(resolve("mallory"), &b_op, "a")).await,
        Code::InvalidArgument,
        "approve",
    );
    let unchanged = rpc.get_run(authed(get(&a_wait), &a_sub)).await.unwrap().into_inner();
    assert_eq!(
        (unchanged.updated_at_ms, unchanged.status()),
        (a_run.updated_at_ms, RunStatus::Waiting),
        "nothing written"
    );

    // Roles: a submitter may not approve, reconcile or administer; an operator may not manage keys.
    for (what, result) in [
        ("approve", rpc.resolve_approval(authed(resolve("alice"), &a_sub)).await.map(|_| ())),
        ("reconcile", rpc.reconcile_run(authed(reconcile.clone(), &a_sub)).await.map(|_| ())),
        (
            "list approvals",
            rpc.list_approvals(authed(ListApprovalsRequest { limit: 0, ..Default::default() }, &a_sub))
                .await
                .map(|_| ()),
        ),
        ("list tools", admin.list_tools(authed(ListToolsRequest {}, &a_sub)).await.map(|_| ())),
    ] {
        let s = assert_code(result, Code::PermissionDenied, what);
        assert!(s.message().contains("operator or admin"), "{what}: {}", s.message());
    }
    let s =
        assert_code(keys.list_keys(authed(ListKeysRequest::default(), &a_op)).await, Code::PermissionDenied, "keys");
    assert!(s.message().contains("needs the admin role"), "{}", s.message());
    // A fleet operator names the tenant per call.
    let seen = rpc.get_run(authed_for(get(&a_wait), &fleet_op, "a")).await.unwrap().into_inner();
    assert_eq!(seen.tenant, "a");
    assert_code(rpc.get_run(authed_for(get(&a_wait), &fleet_op, "b")).await, Code::NotFound, "fleet, other tenant");

    // A's operator approves A's run, which then finishes.
    let resolved = rpc.resolve_approval(authed(resolve("alice"), &a_op)).await.unwrap().into_inner();
    assert!(resolved.approval.is_some());
    let listed = rpc
        .list_approvals(authed(ListApprovalsRequest { limit: 0, ..Default::default() }, &a_op))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.approvals.iter().all(|p| p.run_id != a_wait));

    // JWTs: B's token (HS256 or ES256) sees B's runs only; bad tokens are refused.
    let es = |c: &Value| {
        let rng = ring::rand::SystemRandom::new();
        jwt("ES256", c, |m| es_key.sign(&rng, m).unwrap().as_ref().to_vec())
    };
    for token in [hs256(&claims("b", "submitter")), es(&claims("b", "submitter"))] {
        let runs = rpc.list_runs(authed(ListRunsRequest::default(), &token)).await.unwrap().into_inner().runs;
        let ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
        assert!(ids.contains(&b_run.as_str()) && ids.contains(&dup.run_id.as_str()), "{ids:?}");
        assert!(runs.iter().all(|r| r.tenant == "b"), "{runs:?}");
        rpc.submit_run(authed(submit(script(&[("echo", "{}")]), ""), &token)).await.unwrap();
    }
    let mut expired = claims("b", "submitter");
    expired["exp"] = json!(now_secs() - 60);
    let mut wrong_audience = claims("b", "submitter");
    wrong_audience["aud"] = json!("someone-else");
    for (what, token, says) in [
        ("expired HS256", hs256(&expired), "expired"),
        ("expired ES256", es(&expired), "expired"),
        ("wrong audience", hs256(&wrong_audience), "audience"),
        ("forged", jwt("HS256", &claims("a", "admin"), |_| vec![0; 32]), "signature"),
    ] {
        let s =
            assert_code(rpc.list_runs(authed(ListRunsRequest::default(), &token)).await, Code::Unauthenticated, what);
        assert!(s.message().contains(says), "{what}: {}", s.message());
    }

    // Keys: B's admin manages B's keys only; a revoked key is refused at once.
    let b_keys = keys.list_keys(authed(ListKeysRequest::default(), &b_admin)).await.unwrap().into_inner().keys;
    assert_eq!(b_keys.len(), 3, "{b_keys:?}");
    assert!(b_keys.iter().all(|k| k.tenant == "b"));
    let all = keys.list_keys(authed(ListKeysRequest::default(), BOOTSTRAP)).await.unwrap().into_inner().keys;
    assert_eq!(all.len(), 6);
    let for_a = CreateKeyRequest { tenant: "a".into(), role: Role::Admin as i32, name: String::new() };
    assert_code(keys.create_key(authed(for_a, &b_admin)).await, Code::PermissionDenied, "B's admin makes A a key");
    let a_key_id = all.iter().find(|k| k.tenant == "a").unwrap().key_id.clone();
    let revoke_a = RevokeKeyRequest { key_id: a_key_id, reason: "mine now".into() };
    assert_code(keys.revoke_key(authed(revoke_a, &b_admin)).await, Code::NotFound, "B's admin revokes A's key");
    let revoke = RevokeKeyRequest { key_id: b_sub_id.clone(), reason: "leaked".into() };
    let revoked = keys.revoke_key(authed(revoke, &b_admin)).await.unwrap().into_inner().key.unwrap();
    assert!(revoked.revoked_at_ms > 0 && revoked.revoked_by == format!("key:{b_admin_id}"), "{revoked:?}");
    let s =
        assert_code(rpc.list_runs(authed(ListRunsRequest::default(), &b_sub)).await, Code::Unauthenticated, "revoked");
    assert!(s.message().contains("revoked"), "{}", s.message());
    let listed = keys.list_keys(authed(ListKeysRequest::default(), &b_admin)).await.unwrap().into_inner().keys;
    assert_eq!(listed.len(), 2, "revoked keys are left out unless asked for");
    let with_revoked = ListKeysRequest { tenant: String::new(), include_revoked: true };
    assert_eq!(keys.list_keys(authed(with_revoked, &b_admin)).await.unwrap().into_inner().keys.len(), 3);

    // Every key change is in the audit log, with who made it.
    let mut redis = redis::Client::open(stack.redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let audit: redis::streams::StreamRangeReply =
        redis::cmd("XRANGE").arg(baton_store::keys::AUDIT).arg("-").arg("+").query_async(&mut redis).await.unwrap();
    let entries: Vec<(String, String)> = audit
        .ids
        .iter()
        .filter(|e| e.get::<String>("action").is_some_and(|a| a.starts_with("apikey.")))
        .map(|e| (e.get::<String>("action").unwrap(), e.get::<String>("actor").unwrap()))
        .collect();
    let creates = entries.iter().filter(|(a, who)| a == "apikey.create" && who == "bootstrap").count();
    assert_eq!(creates, 6, "{entries:?}");
    assert!(entries.contains(&("apikey.revoke".into(), format!("key:{b_admin_id}"))), "{entries:?}");
    // The secrets are nowhere in Redis.
    let dump: Vec<(String, Vec<u8>)> =
        redis::cmd("HGETALL").arg(baton_store::keys::API_KEYS).query_async(&mut redis).await.unwrap();
    assert!(dump.iter().all(|(_, v)| !String::from_utf8_lossy(v).contains(&a_sub[6..])));
}

/// The services the gateway's reflection lists, asked without a credential.
async fn reflected_services(stack: &Stack) -> Vec<String> {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut client = ServerReflectionClient::new(channel(stack).await);
    let ask = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client.server_reflection_info(tokio_stream::iter([ask])).await.unwrap().into_inner();
    match answers.message().await.unwrap().and_then(|r| r.message_response) {
        Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect(),
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

/// A CA and a certificate it signed for 127.0.0.1 and localhost: (CA PEM, cert PEM, key PEM).
fn test_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "baton test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "baton gateway");
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// Runs `batonctl` with `args` and `env`, and no other BATON_* variables; (success, stdout, stderr).
async fn batonctl(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(bin_path("batonctl"));
    command.args(args);
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("BATON_")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let out = tokio::time::timeout(Duration::from_secs(30), command.output()).await.unwrap().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batonctl_manages_keys_over_tls() {
    let mut opts = StackOptions::default();
    opts.env.extend(
        [
            ("BATON_AUTH_MODE", "required"),
            ("BATON_AUTH_BOOTSTRAP_ADMIN_KEY_ENV", "AUTH_TEST_BOOTSTRAP"),
            ("AUTH_TEST_BOOTSTRAP", BOOTSTRAP),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    opts.config_toml = "[gateway]\ntls_cert = \"{dir}/cert.pem\"\ntls_key = \"{dir}/key.pem\"\n".into();
    let mut stack = Stack::infra("auth-tls", opts).await;
    let (ca, cert, key) = test_pki();
    let ca_path = stack.write_file("ca.pem", &ca).display().to_string();
    stack.write_file("cert.pem", &cert);
    stack.write_file("key.pem", &key);
    stack.start_gateway().await;
    let addr = format!("https://127.0.0.1:{}", stack.grpc_port);
    let tls = |rest: &[&str]| -> Vec<String> {
        ["--addr", addr.as_str(), "--tls-ca", ca_path.as_str()].iter().chain(rest).map(|s| s.to_string()).collect()
    };
    let call = |args: Vec<String>, key: Option<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match key {
            // The credential from the environment, as a deployment would pass it.
            Some(key) => batonctl(&args, &[("BATON_API_KEY", key.as_str())]).await,
            None => batonctl(&args, &[]).await,
        }
    };
    let boot = Some(BOOTSTRAP.to_string());

    // The bootstrap key creates a submitter key for acme; its secret is printed once.
    let create = tls(&["--json", "keys", "create", "--tenant", "acme", "--role", "submitter", "--name", "ci"]);
    let (ok, out, err) = call(create, boot.clone()).await;
    assert!(ok, "{out}\n{err}\n{}", stack.logs());
    let created: Value = serde_json::from_str(out.trim()).unwrap();
    let key_id = created["key"]["key_id"].as_str().unwrap().to_string();
    let secret = created["secret"].as_str().unwrap().to_string();
    assert_eq!((created["key"]["tenant"].as_str(), created["key"]["role"].as_str()), (Some("acme"), Some("submitter")));

    // The new key lists acme's runs (none yet); naming another tenant is refused.
    let (ok, out, err) = call(tls(&["--api-key", &secret, "list"]), None).await;
    assert!(ok, "{out}\n{err}");
    let (ok, _, err) = call(tls(&["--tenant", "other", "list"]), Some(secret.clone())).await;
    assert!(!ok && err.contains("INVALID_ARGUMENT"), "{err}");
    // A listing never shows a secret.
    let (ok, out, err) = call(tls(&["keys", "list"]), boot.clone()).await;
    assert!(ok && out.contains(&key_id) && !out.contains(&secret), "{out}\n{err}");
    let (ok, out, err) = call(tls(&["keys", "revoke", &key_id, "--reason", "leaked"]), boot.clone()).await;
    assert!(ok && out.starts_with(&format!("revoked {key_id}")), "{out}\n{err}");
    let (ok, _, err) = call(tls(&["list"]), Some(secret.clone())).await;
    assert!(!ok && err.contains("UNAUTHENTICATED") && err.contains("revoked"), "{err}");

    // Without a credential: UNAUTHENTICATED; without the CA, or in plaintext: no connection.
    let (ok, _, err) = call(tls(&["list"]), None).await;
    assert!(!ok && err.contains("UNAUTHENTICATED"), "{err}");
    let (ok, _, err) = call(vec!["--addr".into(), addr.clone(), "keys".into(), "list".into()], boot.clone()).await;
    assert!(!ok && err.contains("UNAVAILABLE"), "an unknown CA is not trusted: {err}");
    let plain = format!("http://127.0.0.1:{}", stack.grpc_port);
    let (ok, _, err) = call(vec!["--addr".into(), plain, "keys".into(), "list".into()], boot).await;
    assert!(!ok, "plaintext to a TLS listener: {err}");

    // Misconfigurations stop the gateway at start, each with its reason.
    for (extra, says) in [
        (vec![("BATON_GATEWAY_TLS_KEY", "")], "set both"),
        (vec![("AUTH_TEST_BOOTSTRAP", "short")], "at least 32"),
        (vec![("BATON_AUTH_JWT_HS256_SECRET_ENV", "AUTH_TEST_BOOTSTRAP")], "jwt_issuer and auth.jwt_audience"),
    ] {
        let (code, log) = stack.start_expecting_exit("gateway", &extra).await;
        assert!(code.is_some_and(|c| c != 0) && log.contains(says), "{extra:?}: {code:?}\n{log}");
    }
    // Auth off: the gateway says so, loudly.
    let port = baton_testkit::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let i = stack
        .start_with(
            "gateway",
            &[
                ("BATON_AUTH_MODE", "none"),
                ("BATON_GATEWAY_LISTEN", &listen),
                ("BATON_GATEWAY_TLS_CERT", ""),
                ("BATON_GATEWAY_TLS_KEY", ""),
            ],
        )
        .await;
    assert!(stack.services[i].log_text().contains("UNAUTHENTICATED GATEWAY"), "{}", stack.services[i].log_text());
}
