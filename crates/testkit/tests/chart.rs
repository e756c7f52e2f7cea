//! The Helm chart (`charts/baton`), for every `ci/*-values.yaml`: `helm lint --strict`, the
//! rendered objects valid for Kubernetes (`kubernetes-validate --strict`), the values schema
//! rejecting typos and wrong types, the rendered config file loading with Baton's real config
//! loader, and what every object must hold (labels, probes, security, grace, PDBs, the alerts
//! and dashboards from their one source files). No cluster: nothing is installed.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use baton_config::{Config, Sources};
use baton_testkit::{find_executable, TempDir};
use serde_json::Value as Json;
use serde_yaml::Value;

const SERVICES: [&str; 4] = ["gateway", "worker", "scheduler", "reaper"];
/// Custom resources: kubernetes-validate has no schema for them, the assertions below check them.
const CRDS: [&str; 3] = ["ServiceMonitor", "PrometheusRule", "ScaledObject"];
/// The Kubernetes version whose schemas the rendered objects are validated against.
const KUBERNETES: &str = "1.33.0";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn chart() -> PathBuf {
    repo().join("charts/baton")
}

/// Runs helm in the chart directory: (success, stdout, stderr).
fn helm(args: &[&str]) -> (bool, String, String) {
    let helm = find_executable("helm").expect("helm not found: run scripts/install-deps.sh");
    let out = Command::new(helm).args(args).current_dir(chart()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// `ci/*-values.yaml`, sorted (paths relative to the chart).
fn ci_values() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(chart().join("ci"))
        .unwrap()
        .map(|e| format!("ci/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|f| f.ends_with("-values.yaml"))
        .collect();
    files.sort();
    assert!(
        files.contains(&"ci/minimal-values.yaml".to_string()) && files.contains(&"ci/full-values.yaml".to_string())
    );
    files
}

/// `helm template` with a values file and extra flags; panics with helm's message on failure.
fn render(values: &str, extra: &[&str]) -> String {
    let mut args = vec!["template", "baton", ".", "--namespace", "agents", "-f", values];
    args.extend_from_slice(extra);
    let (ok, out, err) = helm(&args);
    assert!(ok, "helm {args:?}: {err}");
    out
}

/// The documents of a multi-document YAML stream (helm separates them with `---` lines).
fn documents(yaml: &str) -> Vec<Value> {
    let mut docs = vec![String::new()];
    for line in yaml.lines() {
        if line == "---" {
            docs.push(String::new());
        } else {
            let doc = docs.last_mut().unwrap();
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.iter().map(|d| serde_yaml::from_str::<Value>(d).unwrap()).filter(|v| !v.is_null()).collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"].as_str() == Some(kind)).collect()
}

/// The object of `kind` for one service (by its component label).
fn of_service<'a>(docs: &'a [Value], kind_: &str, service: &str) -> Option<&'a Value> {
    kind(docs, kind_)
        .into_iter()
        .find(|d| d["metadata"]["labels"]["app.kubernetes.io/component"].as_str() == Some(service))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter().fold(v, |v, k| &v[*k]).as_str().unwrap_or_else(|| panic!("no string at {path:?}"))
}

/// A value of a ci values file, by dotted path (None when the file does not set it).
fn ci_value(values: &str, dotted: &str) -> Option<Value> {
    let root: Value = serde_yaml::from_str(&std::fs::read_to_string(chart().join(values)).unwrap()).unwrap();
    dotted.split('.').try_fold(root, |v, k| v.get(k).cloned())
}

/// `BATON_*` variables the image presets (`ENV` in the Dockerfile): a pod inherits them unless
/// it sets them itself, and the environment outranks the config file.
fn image_presets() -> Vec<(String, String)> {
    let Ok(dockerfile) = std::fs::read_to_string(repo().join("Dockerfile")) else { return vec![] };
    let (mut presets, mut in_env) = (vec![], false);
    for line in dockerfile.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        in_env |= line.starts_with("ENV ");
        if in_env {
            for (k, v) in line.split_whitespace().filter_map(|t| t.split_once('=')) {
                if k.starts_with("BATON_") {
                    presets.push((k.to_string(), v.trim_matches('"').to_string()));
                }
            }
            in_env = line.ends_with('\\');
        }
    }
    presets
}

/// The config one service's pod runs with: the rendered config file, loaded by the real loader
/// with the pod's environment (the image's presets, then the container's env: literal values
/// as they are, Secret references as placeholders). Proves every key is real.
fn load_rendered_config(docs: &[Value], service: &str, dir: &TempDir) -> Config {
    let config_map = kind(docs, "ConfigMap").into_iter().find(|c| c["data"]["baton.toml"].is_string()).unwrap();
    let file = dir.path().join("baton.toml");
    std::fs::write(&file, str_at(config_map, &["data", "baton.toml"])).unwrap();
    if let Some(manifest) = config_map["data"]["tools.toml"].as_str() {
        baton_config::manifest::parse_manifest(manifest).unwrap_or_else(|e| panic!("rendered tool manifest: {e}"));
    }
    let deployment = of_service(docs, "Deployment", service).unwrap();
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap();
    let mut pod_env = image_presets();
    pod_env.extend(env.iter().map(|e| {
        let name = str_at(e, &["name"]).to_string();
        let value = match e["value"].as_str() {
            Some(v) => v.to_string(),
            None if name == "BATON_REDIS_URL" => "redis://:secret@redis:6379".into(),
            // The pod's name, from the downward API.
            None if e["valueFrom"]["fieldRef"]["fieldPath"].as_str() == Some("metadata.name") => {
                format!("baton-{service}-6d5f8c7b9-x2k4q")
            }
            None => "from-a-secret".into(),
        };
        (name, value)
    }));
    baton_config::load(&Sources { file: Some(file), env: pod_env, overrides: vec![] })
        .unwrap_or_else(|e| panic!("{service}: the rendered config does not load: {e}"))
}

fn ops_listen(config: &Config, service: &str) -> String {
    match service {
        "gateway" => config.gateway.ops_listen.clone(),
        "worker" => config.worker.ops_listen.clone(),
        "scheduler" => config.scheduler.ops_listen.clone(),
        _ => config.reaper.ops_listen.clone(),
    }
}

fn drain_grace_ms(config: &Config, service: &str) -> u64 {
    match service {
        "gateway" => config.gateway.drain_grace_ms,
        "worker" => config.worker.drain_grace_ms,
        "scheduler" => config.scheduler.drain_grace_ms,
        _ => config.reaper.drain_grace_ms,
    }
}

#[test]
fn lint_passes_for_every_ci_values_file() {
    for values in ci_values() {
        let (ok, out, err) = helm(&["lint", "--strict", ".", "-f", &values]);
        assert!(ok, "helm lint --strict -f {values}:\n{out}{err}");
    }
}

#[test]
fn rendered_objects_pass_kubernetes_validate() {
    for values in ci_values() {
        let rendered = render(&values, &[]);
        let docs = documents(&rendered);
        let (ok, out) = kubernetes_validate(&rendered);
        assert!(ok, "{values}: kubernetes-validate --strict failed:\n{out}");
        let builtin = docs.iter().filter(|d| !CRDS.contains(&d["kind"].as_str().unwrap())).count();
        assert_eq!(out.lines().filter(|l| l.contains(" passed for resource ")).count(), builtin, "{values}:\n{out}");
        // Only the custom resources may go without a schema (a mistyped apiVersion would too).
        for line in out.lines().filter(|l| l.starts_with("WARN")) {
            assert!(CRDS.iter().any(|k| line.contains(&format!("kind {k} with"))), "{values}: {line}");
        }
    }
    // The validation bites: an unknown field of a Deployment fails it.
    let broken = render("ci/minimal-values.yaml", &[]).replacen("readinessProbe:", "readinesProbe:", 1);
    let (ok, out) = kubernetes_validate(&broken);
    assert!(!ok && out.contains("readinesProbe"), "a misspelled field passed:\n{out}");
}

fn kubernetes_validate(yaml: &str) -> (bool, String) {
    use std::io::Write as _;
    let mut child = Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict", "-k", KUBERNETES, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 not found");
    child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("No module named"), "kubernetes-validate not installed: run scripts/install-deps.sh\n{err}");
    (out.status.success(), format!("{}{err}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn every_service_gets_a_hardened_probed_deployment_a_service_and_a_pdb() {
    for values in ci_values() {
        let docs = documents(&render(&values, &[]));
        let dir = TempDir::new("chart");
        let deployments = kind(&docs, "Deployment");
        assert_eq!(deployments.len(), SERVICES.len(), "{values}");
        for service in SERVICES {
            let at = format!("{values}: {service}");
            let config = load_rendered_config(&docs, service, &dir);
            let d = of_service(&docs, "Deployment", service).unwrap_or_else(|| panic!("{at}: no Deployment"));
            for labels in [&d["metadata"]["labels"], &d["spec"]["template"]["metadata"]["labels"]] {
                for (label, want) in [
                    ("app.kubernetes.io/name", Some("baton")),
                    ("app.kubernetes.io/instance", Some("baton")),
                    ("app.kubernetes.io/component", Some(service)),
                    ("app.kubernetes.io/managed-by", Some("Helm")),
                    ("app.kubernetes.io/version", None),
                    ("helm.sh/chart", None),
                ] {
                    let got = labels[label].as_str().unwrap_or_else(|| panic!("{at}: no label {label}"));
                    assert!(want.is_none_or(|w| w == got), "{at}: {label}={got}");
                }
            }
            let pod = &d["spec"]["template"]["spec"];
            let c = &pod["containers"][0];
            assert_eq!(c["args"], serde_yaml::from_str::<Value>(&format!("[{service}]")).unwrap(), "{at}");
            assert_eq!(pod["enableServiceLinks"].as_bool(), Some(false), "{at}: service links inject BATON_* vars");
            assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(false), "{at}");
            // Probes on the ops port, which the config makes the service listen on, outside loopback.
            assert_eq!(str_at(c, &["livenessProbe", "httpGet", "path"]), "/healthz", "{at}");
            assert_eq!(str_at(c, &["readinessProbe", "httpGet", "path"]), "/readyz", "{at}");
            for probe in ["livenessProbe", "readinessProbe"] {
                assert_eq!(str_at(c, &[probe, "httpGet", "port"]), "ops", "{at}");
            }
            let ops_port = c["ports"].as_sequence().unwrap().iter().find(|p| p["name"] == "ops").unwrap();
            let listen: SocketAddr = ops_listen(&config, service).parse().unwrap();
            assert!(!listen.ip().is_loopback(), "{at}: listens on {listen}");
            assert_eq!(ops_port["containerPort"].as_u64(), Some(u64::from(listen.port())), "{at}");
            if service == "gateway" {
                let grpc = c["ports"].as_sequence().unwrap().iter().find(|p| p["name"] == "grpc").unwrap();
                let listen: SocketAddr = config.gateway.listen.parse().unwrap();
                assert!(!listen.ip().is_loopback(), "{at}: gRPC on {listen}");
                assert_eq!(grpc["containerPort"].as_u64(), Some(u64::from(listen.port())), "{at}");
            }
            // Hardened.
            assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true), "{at}");
            assert_eq!(str_at(pod, &["securityContext", "seccompProfile", "type"]), "RuntimeDefault", "{at}");
            let sc = &c["securityContext"];
            assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true), "{at}");
            assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{at}");
            assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false), "{at}");
            assert_eq!(sc["capabilities"]["drop"][0].as_str(), Some("ALL"), "{at}");
            assert!(c["resources"]["requests"]["memory"].is_string(), "{at}: no resources");
            // The bounded drain finishes before SIGKILL.
            let grace_s = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
            assert!(grace_s * 1000 > drain_grace_ms(&config, service), "{at}: grace {grace_s}s");
            // Config mounted read-only, and named by BATON_CONFIG.
            let mount = c["volumeMounts"].as_sequence().unwrap().iter().find(|m| m["name"] == "config").unwrap();
            assert_eq!(
                (str_at(mount, &["mountPath"]), mount["readOnly"].as_bool()),
                ("/etc/baton", Some(true)),
                "{at}"
            );
            let env = c["env"].as_sequence().unwrap();
            assert!(env.iter().any(|e| e["name"] == "BATON_CONFIG" && e["value"] == "/etc/baton/baton.toml"), "{at}");
            for (preset, _) in image_presets() {
                assert!(env.iter().any(|e| e["name"] == preset.as_str()), "{at}: the image's {preset} is in force");
            }
            let checksum = str_at(&d["spec"]["template"]["metadata"], &["annotations", "checksum/config"]);
            assert_eq!(checksum.len(), 64, "{at}");
            // A Service with the ops port, and a PDB (unless the values switch it off).
            let svc = of_service(&docs, "Service", service).unwrap_or_else(|| panic!("{at}: no Service"));
            assert!(svc["spec"]["ports"].as_sequence().unwrap().iter().any(|p| p["name"] == "ops"), "{at}");
            assert_eq!(svc["spec"]["selector"], d["spec"]["selector"]["matchLabels"], "{at}");
            let pdb = of_service(&docs, "PodDisruptionBudget", service);
            let pdb_wanted =
                ci_value(&values, &format!("{service}.pdb.enabled")).and_then(|v| v.as_bool()) != Some(false);
            assert_eq!(pdb.is_some(), pdb_wanted, "{at}: PodDisruptionBudget");
            if let Some(pdb) = pdb {
                assert_eq!(pdb["spec"]["selector"]["matchLabels"], d["spec"]["selector"]["matchLabels"], "{at}");
            }
        }
    }
}

#[test]
fn rendered_config_loads_and_keeps_the_binaries_defaults() {
    for values in ci_values() {
        let docs = documents(&render(&values, &[]));
        let dir = TempDir::new("chart");
        for service in SERVICES {
            load_rendered_config(&docs, service, &dir);
        }
    }
    // The minimal values change nothing but the endpoints and listen addresses, and make every
    // write wait for a replica (the dev default trusts the primary alone): otherwise the
    // chart's defaults are the binaries' own.
    let docs = documents(&render("ci/minimal-values.yaml", &[]));
    let dir = TempDir::new("chart");
    let config = load_rendered_config(&docs, "worker", &dir);
    let mut expected = Config::default();
    expected.kafka.brokers = "kafka-0.kafka:9092,kafka-1.kafka:9092".into();
    expected.redis.url = "redis://redis-master:6379".into();
    expected.redis.min_replicas_acked = 1;
    expected.gateway.listen = "0.0.0.0:50051".into();
    expected.gateway.ops_listen = "0.0.0.0:9460".into();
    expected.worker.ops_listen = "0.0.0.0:9461".into();
    // Named after its pod: restarted in it, a worker takes over from its killed instance.
    expected.worker.name = "baton-worker-6d5f8c7b9-x2k4q".into();
    expected.scheduler.ops_listen = "0.0.0.0:9462".into();
    expected.reaper.ops_listen = "0.0.0.0:9463".into();
    assert_eq!(config, expected);
    // The Secret's Redis URL is not also in the file, and a changed config rolls every pod.
    let full = documents(&render("ci/full-values.yaml", &[]));
    let config_map = kind(&full, "ConfigMap").into_iter().find(|c| c["data"]["baton.toml"].is_string()).unwrap();
    let toml = str_at(config_map, &["data", "baton.toml"]);
    assert!(!toml.lines().any(|l| l.starts_with("url =")), "redis.url rendered although from a Secret:\n{toml}");
    let checksums = |docs: &[Value]| -> Vec<String> {
        kind(docs, "Deployment")
            .iter()
            .map(|d| str_at(&d["spec"]["template"]["metadata"], &["annotations", "checksum/config"]).to_string())
            .collect()
    };
    let changed = documents(&render("ci/minimal-values.yaml", &["--set", "worker.config.concurrency=8"]));
    let (before, after) = (checksums(&docs), checksums(&changed));
    assert_eq!(before, checksums(&documents(&render("ci/minimal-values.yaml", &[]))), "checksum not deterministic");
    assert!(before.iter().zip(&after).all(|(b, a)| b != a), "{before:?} {after:?}");
}

#[test]
fn optional_objects_render_from_their_sources() {
    let minimal = documents(&render("ci/minimal-values.yaml", &[]));
    for k in CRDS.iter().chain(&["HorizontalPodAutoscaler"]) {
        assert!(kind(&minimal, k).is_empty(), "{k} rendered by default");
    }
    assert!(!minimal.iter().any(|d| d["metadata"]["labels"]["grafana_dashboard"].is_string()), "dashboards by default");
    assert!(of_service(&minimal, "Deployment", "worker").unwrap()["spec"]["replicas"].is_number());

    let full = documents(&render("ci/full-values.yaml", &[]));
    let dir = TempDir::new("chart");
    let config = load_rendered_config(&full, "worker", &dir);
    // PrometheusRule: exactly the groups of alerts/baton.rules.yaml, so every alert.
    let rules: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart().join("alerts/baton.rules.yaml")).unwrap()).unwrap();
    let rule = kind(&full, "PrometheusRule")[0];
    assert_eq!(rule["spec"]["groups"], rules["groups"]);
    let alerts: Vec<&str> = rules["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .filter_map(|r| r["alert"].as_str())
        .collect();
    assert!(alerts.len() >= 10, "{alerts:?}");
    assert_eq!(rule["metadata"]["labels"]["release"].as_str(), Some("kube-prometheus-stack"));
    // Dashboards: every JSON file, unchanged, in a ConfigMap the Grafana sidecar picks up.
    let dashboards = full.iter().find(|d| d["metadata"]["labels"]["grafana_dashboard"].as_str() == Some("1")).unwrap();
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(chart().join("dashboards")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let want: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let got: Json = serde_json::from_str(str_at(dashboards, &["data", name.as_str()])).unwrap();
        assert_eq!(got, want, "{name}");
        files.insert(name);
    }
    assert!(files.len() >= 3, "{files:?}");
    assert_eq!(dashboards["data"].as_mapping().unwrap().len(), files.len());
    // ServiceMonitor: selects every Service, on their ops port.
    let monitor = kind(&full, "ServiceMonitor")[0];
    assert_eq!(str_at(&monitor["spec"]["endpoints"][0], &["port"]), "ops");
    assert_eq!(str_at(&monitor["spec"]["endpoints"][0], &["path"]), "/metrics");
    for svc in kind(&full, "Service") {
        for (k, v) in monitor["spec"]["selector"]["matchLabels"].as_mapping().unwrap() {
            assert_eq!(&svc["metadata"]["labels"][k.as_str().unwrap()], v, "{:?}", svc["metadata"]["name"]);
        }
    }
    // KEDA: the lag of the lane's task topic, for the lane's consumer group (the bus's names).
    let scaled = kind(&full, "ScaledObject")[0];
    let trigger = &scaled["spec"]["triggers"][0];
    let topics = baton_bus::Topics::new(&config.kafka.topic_prefix);
    assert_eq!(str_at(trigger, &["type"]), "kafka");
    assert_eq!(str_at(trigger, &["metadata", "topic"]), topics.tasks(&config.worker.lane));
    assert_eq!(str_at(trigger, &["metadata", "consumerGroup"]), topics.worker_group(&config.worker.lane));
    assert_eq!(str_at(trigger, &["metadata", "bootstrapServers"]), config.kafka.brokers);
    let worker = of_service(&full, "Deployment", "worker").unwrap();
    assert_eq!(str_at(scaled, &["spec", "scaleTargetRef", "name"]), str_at(worker, &["metadata", "name"]));
    assert!(worker["spec"]["replicas"].is_null(), "replicas set although KEDA scales the workers");
    // Secrets by reference, OTLP endpoint from the values.
    let env = worker["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap();
    let redis = env.iter().find(|e| e["name"] == "BATON_REDIS_URL").unwrap();
    assert_eq!(str_at(redis, &["valueFrom", "secretKeyRef", "name"]), "baton-secrets");
    assert!(env.iter().any(|e| e["name"] == "OTEL_EXPORTER_OTLP_ENDPOINT" && e["value"].is_string()));
    assert!(kind(&full, "Secret").is_empty(), "the chart must not create Secrets");

    let hpa_docs = documents(&render("ci/hpa-values.yaml", &[]));
    let hpa = kind(&hpa_docs, "HorizontalPodAutoscaler")[0];
    assert_eq!(str_at(hpa, &["apiVersion"]), "autoscaling/v2");
    let worker = of_service(&hpa_docs, "Deployment", "worker").unwrap();
    assert_eq!(str_at(hpa, &["spec", "scaleTargetRef", "name"]), str_at(worker, &["metadata", "name"]));
    assert!(worker["spec"]["replicas"].is_null(), "replicas set although the HPA scales the workers");
}

#[test]
fn wrong_or_missing_values_are_rejected_with_a_clear_message() {
    let fails = |args: &[&str], expect: &str| {
        let mut all = vec!["template", "baton", "."];
        all.extend_from_slice(args);
        let (ok, _, err) = helm(&all);
        assert!(!ok, "helm {all:?} succeeded");
        assert!(err.contains(expect), "helm {all:?}: expected {expect:?} in:\n{err}");
    };
    let min = ["-f", "ci/minimal-values.yaml"];
    for (set, expect) in [
        ("worker.replicas=lots", "/worker/replicas"),
        ("worker.replica=3", "'replica' not allowed"),
        ("gateway.config.drain_grace=5000", "'drain_grace' not allowed"),
        ("kafka.partiton=3", "'partiton' not allowed"),
        ("kafka.assignment_strategy=sticky", "/kafka/assignment_strategy"),
        ("telemetry.log_format=xml", "/telemetry/log_format"),
        ("redis.url=http://redis:6379", "/redis/url"),
        ("scheduler.ports.ops=70000", "/scheduler/ports/ops"),
        ("kafka.brokers=kafka", "/kafka/brokers"),
    ] {
        fails(&[min[0], min[1], "--set", set], expect);
    }
    let (ok, out, err) =
        helm(&["lint", "--strict", ".", "-f", "ci/minimal-values.yaml", "--set", "worker.replicas=lots"]);
    assert!(!ok && format!("{out}{err}").contains("/worker/replicas"), "lint accepted a wrong type:\n{out}{err}");
    fails(&[], "kafka.brokers is required");
    fails(&["--set", "kafka.brokers=k:9092"], "redis.url is required");
    fails(&[min[0], min[1], "--set", "worker.autoscaling.enabled=true,worker.keda.enabled=true"], "exclusive");
}

#[test]
fn the_schema_types_every_value_and_closes_every_object_it_lists() {
    let values: Value = serde_yaml::from_str(&std::fs::read_to_string(chart().join("values.yaml")).unwrap()).unwrap();
    let schema: Json =
        serde_json::from_str(&std::fs::read_to_string(chart().join("values.schema.json")).unwrap()).unwrap();
    let mut checked = 0;
    walk(&schema, &schema, &values, "", &mut checked);
    assert!(checked > 100, "only {checked} values checked");
}

/// Every key of `value` is a property of `node` (refs resolved), down to free-form objects.
fn walk(root: &Json, node: &Json, value: &Value, path: &str, checked: &mut usize) {
    let node = match node["$ref"].as_str() {
        Some(r) => r.trim_start_matches("#/").split('/').fold(root, |n, k| &n[k]),
        None => node,
    };
    *checked += 1;
    let Some(map) = value.as_mapping().filter(|m| !m.is_empty()) else {
        assert!(node.get("type").is_some() || node.get("oneOf").is_some(), "{path}: untyped in values.schema.json");
        return;
    };
    let Some(props) = node["properties"].as_object() else {
        // A free-form Kubernetes object (resources, affinity, security context): no keys listed.
        assert_eq!(node["type"], "object", "{path}");
        return;
    };
    assert_eq!(node["additionalProperties"], Json::Bool(false), "{path}: unknown keys would be accepted");
    for (k, v) in map {
        let k = k.as_str().unwrap();
        let child = props.get(k).unwrap_or_else(|| panic!("{path}.{k} is not in values.schema.json"));
        walk(root, child, v, &format!("{path}.{k}"), checked);
    }
}

#[test]
fn readme_values_table_is_up_to_date() {
    let out =
        Command::new("python3").arg("scripts/chart-readme.py").arg("--check").current_dir(repo()).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
