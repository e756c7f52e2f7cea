//! The compose deployment (`docker-compose.yml`, `compose/`, `Dockerfile`): images pinned, every
//! long-running service health-checked and waited for, ports, environment, topics and scrape
//! targets consistent with the services' config defaults, the dashboards and alert rules of
//! charts/baton mounted, and the local override (scripts/compose-smoke.sh) swapping every public
//! image. When `docker-compose` is installed, it validates both files too (`config -q`, no engine).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use baton_testkit::find_executable;
use serde_yaml::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A YAML file of the repository with its merge keys (`<<: *anchor`) applied.
fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut value: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    value.apply_merge().unwrap();
    value
}

fn services(compose: &Value) -> BTreeMap<String, Value> {
    compose["services"]
        .as_mapping()
        .expect("services")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone()))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| s.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| scalar(x))).collect())
        .unwrap_or_default()
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// The environment of a service as name → value (map or `NAME=value` list form).
fn env(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Mapping(m) => m.iter().map(|(k, v)| (scalar(k), scalar(v))).collect(),
        Value::Sequence(s) => {
            s.iter().filter_map(|x| x.as_str()?.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))).collect()
        }
        _ => BTreeMap::new(),
    }
}

/// Services of the Baton image (the Dockerfile), by the program they run.
fn baton_services(services: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    services
        .iter()
        .filter(|(_, s)| s["image"].as_str().is_some_and(|i| i.starts_with("baton:")))
        .map(|(name, s)| {
            let program = strings(&s["entrypoint"]).get(1).cloned().or_else(|| strings(&s["command"]).first().cloned());
            (name.clone(), program.unwrap_or_default())
        })
        .collect()
}

fn long_running(service: &Value) -> bool {
    service["profiles"].is_null() && service["restart"].as_str() != Some("no")
}

/// Published ports as `host port == container port` (the services' ports are the same on the
/// host and in the container); panics on a mapping that moves a port.
fn published(service: &Value) -> Vec<u16> {
    strings(&service["ports"])
        .iter()
        .map(|p| {
            let parts: Vec<&str> = p.rsplitn(3, ':').collect();
            let container = port_of(parts[0]);
            assert_eq!(parts.get(1).map(|h| port_of(h)), Some(container), "port mapping {p} moves the port");
            container
        })
        .collect()
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap_or_else(|_| panic!("no port in {addr}"))
}

/// `ENV` assignments of the Dockerfile's runtime stages.
fn dockerfile_env() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ENV "))
        .flat_map(|l| l.split_whitespace().filter_map(|kv| kv.split_once('=')).collect::<Vec<_>>())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The ops port each service's config default binds, and the gRPC port of the gateway.
fn default_ports() -> (BTreeMap<&'static str, u16>, u16) {
    let c = baton_config::Config::default();
    let ops = [
        ("gateway", port_of(&c.gateway.ops_listen)),
        ("worker", port_of(&c.worker.ops_listen)),
        ("scheduler", port_of(&c.scheduler.ops_listen)),
        ("reaper", port_of(&c.reaper.ops_listen)),
    ];
    (ops.into_iter().collect(), port_of(&c.gateway.listen))
}

#[test]
fn every_image_is_pinned_and_the_baton_image_carries_the_workspace_version() {
    let compose = yaml("docker-compose.yml");
    for (name, s) in services(&compose) {
        let image = s["image"].as_str().unwrap_or_else(|| panic!("{name}: no image"));
        let (_, tag) = image
            .rsplit_once('/')
            .map_or(image, |(_, last)| last)
            .split_once(':')
            .unwrap_or_else(|| panic!("{name}: image {image} has no tag"));
        assert!(!tag.is_empty() && tag != "latest" && !tag.contains('$'), "{name}: image {image} is not pinned");
        if image.starts_with("baton:") {
            assert_eq!(tag, env!("CARGO_PKG_VERSION"), "{name}: the Baton image is tagged with the workspace version");
            assert_eq!(s["build"]["context"].as_str(), Some("."), "{name}: built from the repository's Dockerfile");
        }
    }
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    for arg in dockerfile.lines().filter_map(|l| l.strip_prefix("ARG ").filter(|a| a.contains("_IMAGE="))) {
        let (_, image) = arg.split_once('=').unwrap();
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
        assert!(!tag.is_empty() && tag != "latest", "Dockerfile: {arg} is not pinned");
    }
}

#[test]
fn every_long_running_service_is_health_checked_and_waited_for() {
    let compose = yaml("docker-compose.yml");
    let services = services(&compose);
    // The OpenTelemetry collector image is distroless: no shell and no probe binary to run.
    let unprobeable = ["otel-collector"];
    for (name, s) in &services {
        let test = strings(&s["healthcheck"]["test"]);
        if long_running(s) && !unprobeable.contains(&name.as_str()) {
            assert!(test.len() > 1 && test[0].starts_with("CMD"), "{name}: no healthcheck");
        }
        let Some(deps) = s["depends_on"].as_mapping() else {
            assert!(s["depends_on"].is_null(), "{name}: depends_on must name a condition for each dependency");
            continue;
        };
        for (dep, how) in deps {
            let dep = dep.as_str().unwrap();
            let target = services.get(dep).unwrap_or_else(|| panic!("{name} depends on unknown {dep}"));
            let expected = if !long_running(target) {
                "service_completed_successfully"
            } else if target["healthcheck"].is_mapping() {
                "service_healthy"
            } else {
                "service_started"
            };
            assert_eq!(how["condition"].as_str(), Some(expected), "{name} → {dep}");
        }
    }
    // Every Baton service waits for Redis and for the topics; the load generator for the gateway.
    for (name, program) in baton_services(&services) {
        let deps = &services[&name]["depends_on"];
        if program == "loadtest" {
            assert_eq!(deps["gateway"]["condition"].as_str(), Some("service_healthy"), "{name}");
        } else {
            assert!(deps["redis"].is_mapping() && deps["kafka-init"].is_mapping(), "{name}: {deps:?}");
        }
    }
    // Redis fsyncs every write before answering it: a host crash loses nothing acknowledged.
    let redis: Vec<&str> =
        services["redis"]["command"].as_sequence().unwrap().iter().filter_map(|a| a.as_str()).collect();
    let setting = |flag: &str| redis.iter().position(|a| *a == flag).and_then(|i| redis.get(i + 1)).copied();
    assert_eq!(setting("--appendonly"), Some("yes"), "{redis:?}");
    assert_eq!(setting("--appendfsync"), Some("always"), "{redis:?}");
    // …and a replica of it exists for the writes to wait for.
    let replica: Vec<&str> =
        services["redis-replica"]["command"].as_sequence().unwrap().iter().filter_map(|a| a.as_str()).collect();
    let at = replica.iter().position(|a| *a == "--replicaof").expect("redis-replica replicates redis");
    assert_eq!((replica[at + 1], replica[at + 2]), ("redis", "6379"));
}

#[test]
fn ports_env_and_health_probes_match_the_config_defaults() {
    let compose = yaml("docker-compose.yml");
    let services = services(&compose);
    let (ops, grpc) = default_ports();
    let image_env = dockerfile_env();
    let programs = baton_services(&services);
    assert_eq!(
        programs.values().cloned().collect::<BTreeSet<_>>(),
        ["gateway", "worker", "scheduler", "reaper", "loadtest"].map(String::from).into(),
        "{programs:?}"
    );
    for (name, program) in &programs {
        let s = &services[name];
        let mut vars: Vec<(String, String)> = image_env.clone().into_iter().collect();
        vars.extend(env(s));
        // The same loader the services use must accept every BATON_* variable.
        let config = baton_config::load(&baton_config::Sources { env: vars.clone(), ..Default::default() })
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if program == "loadtest" {
            let addr = env(s).get("BATON_ADDR").cloned().unwrap_or_default();
            assert_eq!(addr, format!("http://gateway:{grpc}"), "{name}: BATON_ADDR");
            assert_eq!(strings(&s["entrypoint"]), ["baton-entrypoint", "loadtest"], "{name}");
            continue;
        }
        // Listens on every interface, on the default ports.
        let listen = match program.as_str() {
            "gateway" => &config.gateway.ops_listen,
            "worker" => &config.worker.ops_listen,
            "scheduler" => &config.scheduler.ops_listen,
            _ => &config.reaper.ops_listen,
        };
        assert_eq!(listen, &format!("0.0.0.0:{}", ops[program.as_str()]), "{name}: ops_listen");
        assert_eq!(
            strings(&s["healthcheck"]["test"]),
            ["CMD", "baton-entrypoint", "ready", &ops[program.as_str()].to_string()]
        );
        let (host, port) = config.kafka.brokers.split_once(':').unwrap();
        assert!(services.contains_key(host) && port == "9092", "{name}: kafka.brokers {}", config.kafka.brokers);
        assert_eq!(config.redis.url, "redis://redis:6379", "{name}");
        assert_eq!(config.redis.min_replicas_acked, 1, "{name}: writes wait for the replica");
        let otlp = env(s).get("OTEL_EXPORTER_OTLP_ENDPOINT").cloned().unwrap_or_default();
        assert_eq!(otlp, "http://otel-collector:4317", "{name}: OTEL_EXPORTER_OTLP_ENDPOINT");
        let published = published(s);
        match program.as_str() {
            "gateway" => {
                assert_eq!(config.gateway.listen, format!("0.0.0.0:{grpc}"));
                assert_eq!(published, [grpc, ops["gateway"]], "{name}: ports");
            }
            "worker" => {
                // Scalable: no fixed name, no host port.
                assert!(s["container_name"].is_null() && s["ports"].is_null(), "{name} cannot be scaled");
                assert_eq!(strings(&s["expose"]), [ops["worker"].to_string()]);
            }
            other => assert_eq!(published, [ops[other]], "{name}: ports"),
        }
    }
    // The OTLP endpoint is the collector's gRPC receiver.
    let otel = yaml("compose/otel-collector.yaml");
    assert_eq!(port_of(otel["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].as_str().unwrap()), 4317);
    assert!(otel["service"]["pipelines"]["traces"]["receivers"].as_sequence().unwrap().contains(&"otlp".into()));
    // The entrypoint knows every program the compose file starts.
    let entrypoint = std::fs::read_to_string(repo().join("docker/baton-entrypoint")).unwrap();
    for program in ["worker)", "gateway|scheduler|reaper)", "batonctl)", "loadtest)", "ready)"] {
        assert!(entrypoint.contains(program), "docker/baton-entrypoint has no case {program}");
    }
}

/// The topics of `kafka-init` in a compose file: names after `--topic`/`topic create`, plus the
/// partitions and replication it asks for.
fn init_topics(compose: &Value) -> (BTreeSet<String>, String) {
    let init = &compose["services"]["kafka-init"];
    let script = [strings(&init["entrypoint"]), strings(&init["command"])].concat().join(" ");
    let list = script
        .split("for topic in ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("kafka-init: no `for topic in ...;` loop in {script}"));
    (list.split_whitespace().map(str::to_string).collect(), script)
}

#[test]
fn the_topic_job_creates_the_topics_the_services_use() {
    let config = baton_config::Config::default();
    let topics = baton_bus::Topics::new(&config.kafka.topic_prefix);
    let mut expected: BTreeSet<String> = config.runs.lanes.iter().map(|l| topics.tasks(l)).collect();
    expected.extend(config.scheduler.retry_tiers_ms.iter().map(|t| topics.retry(&baton_core::retry::tier_label(*t))));
    expected.insert(topics.dlq());
    expected.insert(topics.events());
    for file in ["docker-compose.yml", "compose/local.override.yml"] {
        let mut compose = yaml("docker-compose.yml");
        if file != "docker-compose.yml" {
            let local = yaml(file);
            if !local["services"]["kafka-init"].is_mapping() {
                continue;
            }
            compose["services"]["kafka-init"] = local["services"]["kafka-init"].clone();
        }
        let (names, script) = init_topics(&compose);
        assert_eq!(names, expected, "{file}: kafka-init topics");
        // Each topic with the retention the services create it with.
        for (topic, retention) in [
            (topics.events(), config.kafka.events_retention_ms),
            (topics.dlq(), config.kafka.dlq_retention_ms),
            ("*".into(), config.kafka.task_retention_ms),
        ] {
            let case = format!("{topic}) retention={retention} ;;");
            assert!(script.contains(&case), "{file}: kafka-init must set {case}: {script}");
        }
        assert!(script.contains("--config cleanup.policy=delete --config retention.ms=\"$$retention\""), "{file}");
        let partitions = format!("--partitions {}", config.kafka.partitions);
        assert!(script.contains(&partitions), "{file}: kafka-init must use {partitions}: {script}");
        if file == "docker-compose.yml" {
            let replication = format!("--replication-factor {}", config.kafka.replication_factor);
            assert!(script.contains(&replication) && script.contains("--if-not-exists"), "{file}: {script}");
        }
    }
}

#[test]
fn prometheus_scrapes_every_service_and_loads_the_alert_rules() {
    let compose = yaml("docker-compose.yml");
    let services = services(&compose);
    let prom = yaml("compose/prometheus.yml");
    let (ops, _) = default_ports();
    let mut targets = BTreeSet::new();
    for job in prom["scrape_configs"].as_sequence().unwrap() {
        for sc in job["static_configs"].as_sequence().into_iter().flatten() {
            targets.extend(strings(&sc["targets"]));
        }
        for sd in job["dns_sd_configs"].as_sequence().into_iter().flatten() {
            assert_eq!(sd["type"].as_str(), Some("A"));
            let port = sd["port"].as_u64().unwrap();
            targets.extend(strings(&sd["names"]).iter().map(|n| format!("{n}:{port}")));
        }
    }
    let expected: BTreeSet<String> = ops.iter().map(|(s, p)| format!("{s}:{p}")).collect();
    let baton_targets: BTreeSet<String> =
        targets.iter().filter(|t| !t.starts_with("127.0.0.1:") && !t.starts_with("localhost:")).cloned().collect();
    assert_eq!(baton_targets, expected, "scrape targets");
    for t in &baton_targets {
        assert!(services.contains_key(t.split(':').next().unwrap()), "{t} is no compose service");
    }
    // The worker is found by DNS, so every replica of --scale worker=N is scraped.
    let worker_job = prom["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|j| j["dns_sd_configs"].as_sequence().is_some_and(|d| strings(&d[0]["names"]) == ["worker"]));
    assert!(worker_job.is_some(), "workers must be discovered by DNS");

    // The rule file Prometheus loads is the chart's, mounted where prometheus.yml looks.
    let volumes = strings(&services["prometheus"]["volumes"]);
    let rule_files = strings(&prom["rule_files"]);
    assert_eq!(rule_files.len(), 1);
    let mount = format!("./charts/baton/alerts/baton.rules.yaml:{}:ro", rule_files[0]);
    assert!(volumes.contains(&mount), "prometheus must mount {mount}: {volumes:?}");
    assert!(volumes.contains(&"./compose/prometheus.yml:/etc/prometheus/prometheus.yml:ro".to_string()));
    if let Some(promtool) = find_executable("promtool") {
        let out = Command::new(promtool)
            .args(["check", "config", "--syntax-only", "compose/prometheus.yml"])
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn grafana_provisions_prometheus_and_every_chart_dashboard() {
    let compose = yaml("docker-compose.yml");
    let services = services(&compose);
    let volumes = strings(&services["grafana"]["volumes"]);
    let provider = yaml("compose/grafana/provisioning/dashboards/baton.yml");
    let path = provider["providers"][0]["options"]["path"].as_str().unwrap().to_string();
    let mut charted: BTreeSet<String> = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("charts/baton/dashboards")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".json") {
            charted.insert(format!("./charts/baton/dashboards/{name}:{path}/{name}:ro"));
        }
    }
    let mounted: BTreeSet<String> = volumes.iter().filter(|v| v.contains("dashboards/")).cloned().collect();
    assert!(charted.len() >= 3, "{charted:?}");
    assert_eq!(mounted, charted, "grafana must mount exactly the chart's dashboards into {path}");
    assert!(volumes.contains(&"./compose/grafana/provisioning:/etc/grafana/provisioning:ro".to_string()));
    let sources = yaml("compose/grafana/provisioning/datasources/prometheus.yml");
    let ds = &sources["datasources"][0];
    assert_eq!((ds["type"].as_str(), ds["url"].as_str()), (Some("prometheus"), Some("http://prometheus:9090")));
    assert_eq!(published(&services["prometheus"]), [9090]);
}

#[test]
fn the_local_override_swaps_every_public_image_for_a_local_one() {
    let base = services(&yaml("docker-compose.yml"));
    let local = services(&yaml("compose/local.override.yml"));
    for (name, s) in &base {
        let image = s["image"].as_str().unwrap();
        if image.starts_with("baton:") {
            continue;
        }
        let Some(o) = local.get(name) else { panic!("compose/local.override.yml does not replace {name} ({image})") };
        match o["image"].as_str() {
            Some(i) => assert!(i.starts_with("localhost/"), "{name}: {i} is not a local image"),
            // Not available offline: kept out of `up` by a profile.
            None => assert!(!o["profiles"].is_null(), "{name}: neither replaced nor disabled"),
        }
    }
    for name in local.keys() {
        assert!(base.contains_key(name), "the override names {name}, which docker-compose.yml does not have");
    }
}

#[test]
fn docker_compose_accepts_the_files() {
    let Some(bin) = find_executable("docker-compose") else {
        eprintln!("docker-compose not installed (scripts/install-deps.sh installs it): skipped `config -q`");
        return;
    };
    for files in [&["docker-compose.yml"][..], &["docker-compose.yml", "compose/local.override.yml"]] {
        let mut cmd = Command::new(&bin);
        for f in files {
            cmd.args(["-f", f]);
        }
        let out = cmd
            .args(["--profile", "loadtest", "config", "-q"])
            .current_dir(repo())
            .env_remove("DOCKER_HOST")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker-compose {files:?} config -q: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
