//! `deploy/kubernetes/`: validated with the `kubernetes-validate` Python package against the
//! Kubernetes 1.30 and 1.37 schemas (strict: an unknown field fails), and checked for what the
//! deployment promises: no RBAC, a non-root coordinator reading its database URL from a Secret,
//! an agent on every node with the host's network and PIDs, the systemd unit's capabilities and
//! the host's root read-only, and config files the real loaders accept.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// True when Python has kubernetes-validate (and so PyYAML); under `CI=true` its absence fails.
fn validator_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import kubernetes_validate, yaml"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI=true but the kubernetes-validate Python package is missing (.ci/run installs it)"
        );
        eprintln!("skipping: python3 -m pip install kubernetes-validate");
    }
    ok
}

fn validate(version: &str, files: &[PathBuf]) -> std::process::Output {
    Command::new("python3")
        .args([
            "-m",
            "kubernetes_validate",
            "--strict",
            "--no-warn",
            "-k",
            version,
        ])
        .args(files)
        .output()
        .unwrap()
}

/// Every document of every manifest, as JSON.
fn documents() -> Vec<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\nprint(json.dumps([d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]))",
        ])
        .args(manifests())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn kind<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn manifests_validate_against_kubernetes_schemas_in_strict_mode() {
    if !validator_available() {
        return;
    }
    let files = manifests();
    assert_eq!(files.len(), 3, "{files:?}");
    for version in ["1.30.0", "1.37.0"] {
        let out = validate(version, &files);
        assert!(
            out.status.success(),
            "Kubernetes {version}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The validator is not a rubber stamp: a misspelt field fails.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("agent.yaml");
    let text = std::fs::read_to_string(repo().join("deploy/kubernetes/agent.yaml")).unwrap();
    std::fs::write(&broken, text.replace("hostNetwork:", "hostNetwrk:")).unwrap();
    let out = validate("1.30.0", &[broken]);
    assert!(!out.status.success(), "a misspelt field must fail");
}

#[test]
fn the_agent_runs_on_every_node_with_the_systemd_units_capabilities_and_no_rbac() {
    if !validator_available() {
        return;
    }
    let docs = documents();
    for d in &docs {
        let k = d["kind"].as_str().unwrap();
        assert!(
            !matches!(
                k,
                "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" | "ServiceAccount"
            ),
            "RBAC-free: {k}"
        );
    }
    let ds = &kind(&docs, "DaemonSet", "rampart-agent")["spec"]["template"]["spec"];
    assert_eq!(ds["hostNetwork"], true);
    assert_eq!(ds["hostPID"], true);
    assert_eq!(ds["automountServiceAccountToken"], false);
    assert!(
        ds["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["operator"] == "Exists" && t.get("key").is_none()),
        "tolerates every taint: {}",
        ds["tolerations"]
    );
    let agent = &ds["containers"][0];
    let mut caps: Vec<String> = agent["securityContext"]["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    caps.sort();
    let unit =
        std::fs::read_to_string(repo().join("deploy/systemd/rampart-agent.service")).unwrap();
    let mut granted: Vec<String> = unit
        .lines()
        .find_map(|l| l.strip_prefix("AmbientCapabilities="))
        .unwrap()
        .split_whitespace()
        .map(|c| c.trim_start_matches("CAP_").to_string())
        .collect();
    granted.sort();
    assert_eq!(caps, granted, "the systemd unit's capabilities, no more");
    assert_eq!(
        agent["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    let host_root = agent["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "host-root")
        .unwrap();
    assert_eq!(host_root["mountPath"], "/host");
    assert_eq!(host_root["readOnly"], true);
    let host_path = ds["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "host-root")
        .unwrap();
    assert_eq!(host_path["hostPath"]["path"], "/");

    // The agent's config file is one the agent accepts, reading the host below /host.
    let dir = tempfile::tempdir().unwrap();
    let agent_toml = dir.path().join("agent.toml");
    std::fs::write(
        &agent_toml,
        kind(&docs, "ConfigMap", "rampart-agent")["data"]["agent.toml"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let config = rampart_agent::config::FileConfig::load(&agent_toml)
        .unwrap_or_else(|e| panic!("agent.toml in the ConfigMap: {e}"));
    assert_eq!(config.fact_root.as_deref(), Some(Path::new("/host")));
}

#[test]
fn the_coordinator_runs_as_non_root_and_reads_its_database_url_from_a_secret() {
    if !validator_available() {
        return;
    }
    let docs = documents();
    let deployment = kind(&docs, "Deployment", "rampart-coordinator");
    assert!(
        deployment["spec"]["replicas"].as_u64().unwrap() >= 2,
        "several coordinators share the fleet"
    );
    // Console logins live in one replica's memory: browsers stay on it.
    let console = kind(&docs, "Service", "rampart-console");
    assert_eq!(console["spec"]["sessionAffinity"], "ClientIP");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(pod["securityContext"]["runAsUser"].as_u64().unwrap() > 0);
    assert_eq!(pod["automountServiceAccountToken"], false);
    let c = &pod["containers"][0];
    assert_eq!(
        c["securityContext"]["capabilities"]["drop"],
        serde_json::json!(["ALL"])
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    let url = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "RAMPART_DATABASE_URL")
        .expect("RAMPART_DATABASE_URL");
    assert_eq!(url["valueFrom"]["secretKeyRef"]["name"], "rampart-database");
    let secret = kind(&docs, "Secret", "rampart-database");
    assert!(
        secret["stringData"]["url"]
            .as_str()
            .unwrap()
            .starts_with("postgres://")
    );
    // Its config file is one the coordinator accepts; the Service names match the certificate.
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("coordinator.toml");
    std::fs::write(
        &toml,
        kind(&docs, "ConfigMap", "rampart-coordinator")["data"]["coordinator.toml"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let config = rampart_coordinator::config::FileConfig::load(&toml)
        .unwrap_or_else(|e| panic!("coordinator.toml in the ConfigMap: {e}"));
    let service = kind(&docs, "Service", "rampart-coordinator");
    let name = format!(
        "{}.{}.svc",
        service["metadata"]["name"].as_str().unwrap(),
        service["metadata"]["namespace"].as_str().unwrap()
    );
    assert!(config.server_names.contains(&name), "{name}");
    let agent_cm = kind(&docs, "ConfigMap", "rampart-agent");
    assert!(
        agent_cm["data"]["coordinator"]
            .as_str()
            .unwrap()
            .starts_with(&format!("https://{name}:7443")),
        "agents dial a name the certificate carries"
    );

    // The container build file: multi-stage, the coordinator image not root.
    let containerfile =
        std::fs::read_to_string(repo().join("deploy/container/Containerfile")).unwrap();
    let stages: Vec<&str> = containerfile
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .filter_map(|l| l.split(" AS ").nth(1))
        .collect();
    assert_eq!(stages, ["build", "coordinator", "agent"]);
    let coordinator_stage = containerfile
        .split("AS coordinator")
        .nth(1)
        .unwrap()
        .split("FROM ")
        .next()
        .unwrap();
    assert!(coordinator_stage.contains("USER 65532:65532"));
}
