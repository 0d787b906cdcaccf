//! The deployment files in `deploy/` agree with the binary they deploy.
//!
//! Kubernetes (`deploy/k8s/*.yaml`, read with hyperdial's own YAML reader, documents split at
//! `---` lines): every document parses as YAML 1.2 without warnings; the kinds are a server
//! Deployment and its Service, a PostgreSQL StatefulSet and its Service, and an agents Job;
//! every hyperdial container names `ghcr.io/hyperdial/hyperdial:VERSION` with this build's
//! version (as do `deploy/README.md` and `deploy/Containerfile`); each runs `hyperdial SUB ...`
//! with only flags that `hyperdial SUB --help` lists; each `HYPERDIAL_*` variable it sets is
//! one the subcommand reads (`[env: ...]` or `$NAME` in its help) or one its arguments use as `$(NAME)`,
//! and each `$(NAME)` is set; Secrets are the one `hyperdial` Secret, with the keys the
//! README's `kubectl create secret` command creates; Services select the pods they front; the
//! Job runs N agents in parallel with `restartPolicy: OnFailure` and reaches the server's
//! Service.
//!
//! Slurm (`deploy/slurm/hyperdial-agents.sbatch`, run for real by `slurm.rs`): the script is
//! valid bash, an array job that requeues, and uses only flags `hyperdial agent --help` lists.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::bin;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn image() -> String {
    format!("ghcr.io/hyperdial/hyperdial:{}", env!("CARGO_PKG_VERSION"))
}

/// One Kubernetes object and the file it came from.
struct Object {
    file: String,
    value: Value,
}

impl Object {
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }
    fn pod_spec(&self) -> Option<&Value> {
        let spec = &self.value["spec"]["template"]["spec"];
        spec.is_object().then_some(spec)
    }
}

/// Every document of every `deploy/k8s/*.yaml`.
fn manifests() -> Vec<Object> {
    let dir = deploy_dir().join("k8s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut doc = String::new();
        let mut docs = Vec::new();
        for line in text.lines() {
            if line.trim_end() == "---" {
                docs.push(std::mem::take(&mut doc));
            } else {
                doc.push_str(line);
                doc.push('\n');
            }
        }
        docs.push(doc);
        for (i, doc) in docs.iter().enumerate() {
            let is_blank = doc
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
            if is_blank {
                continue;
            }
            let parsed = hyperdial_space::yaml::parse(doc);
            assert!(
                parsed.diagnostics.is_empty(),
                "{file}, document {}: {:?}",
                i + 1,
                parsed.diagnostics
            );
            let root = parsed
                .root
                .unwrap_or_else(|| panic!("{file}, document {}: not YAML", i + 1));
            let value = root.to_json();
            for key in ["apiVersion", "kind"] {
                assert!(value[key].is_string(), "{file}: no {key}");
            }
            assert!(value["metadata"]["name"].is_string(), "{file}: no name");
            out.push(Object {
                file: file.clone(),
                value,
            });
        }
    }
    out
}

/// `hyperdial SUB --help`.
fn help(sub: &str) -> String {
    let out = Command::new(bin()).args([sub, "--help"]).output().unwrap();
    assert!(out.status.success(), "hyperdial {sub} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The long flags a help text lists (each with whether it takes a value: `--count <COUNT>`),
/// and the environment variables it reads.
fn flags_and_env(help: &str) -> (BTreeMap<String, bool>, BTreeSet<String>) {
    let mut flags = BTreeMap::new();
    let mut env = BTreeSet::new();
    for line in help.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, word) in words.iter().enumerate() {
            let Some(flag) = word.strip_prefix("--") else {
                continue;
            };
            let flag: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if !flag.is_empty() {
                // A flag named in another flag's text (`requires --token`) says nothing of
                // whether it takes a value: only its own line, `--flag <VALUE>`, does.
                let takes_value = words.get(i + 1).is_some_and(|w| w.starts_with('<'));
                *flags.entry(format!("--{flag}")).or_insert(false) |= takes_value;
            }
        }
    }
    // `[env: NAME]` of clap, and `$NAME` in a flag's text ("default $HYPERDIAL_DB").
    for marker in ["[env: ", "$"] {
        for part in help.split(marker).skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.starts_with("HYPERDIAL_") {
                env.insert(name);
            }
        }
    }
    (flags, env)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| match s {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `$(NAME)` references in a string.
fn references(s: &str) -> Vec<String> {
    s.split("$(")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(name, _)| name.to_string()))
        .collect()
}

/// The keys `deploy/README.md`'s `kubectl create secret generic hyperdial` command creates, and
/// its text.
fn readme_secret_keys() -> (BTreeSet<String>, String) {
    let readme = std::fs::read_to_string(deploy_dir().join("README.md")).unwrap();
    let start = readme
        .find("kubectl create secret generic hyperdial")
        .expect("deploy/README.md shows how to create the hyperdial Secret");
    let mut keys = BTreeSet::new();
    let command: String = readme[start..]
        .lines()
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    for part in command.split("--from-literal=").skip(1) {
        keys.insert(part.split('=').next().unwrap().to_string());
    }
    (keys, command)
}

#[test]
fn kubernetes_manifests_match_the_binary() {
    let objects = manifests();
    let kinds: BTreeMap<(&str, &str), &str> = objects
        .iter()
        .map(|o| {
            (
                (o.kind(), o.name()),
                o.value["apiVersion"].as_str().unwrap(),
            )
        })
        .collect();
    let expected = [
        (("Deployment", "hyperdial"), "apps/v1"),
        (("Service", "hyperdial"), "v1"),
        (("StatefulSet", "hyperdial-postgres"), "apps/v1"),
        (("Service", "hyperdial-postgres"), "v1"),
        (("Job", "hyperdial-agents"), "batch/v1"),
    ];
    assert_eq!(kinds, expected.into_iter().collect(), "kinds and names");

    let (secret_keys, secret_command) = readme_secret_keys();
    let mut subcommands = BTreeMap::new();
    for o in &objects {
        let Some(pod) = o.pod_spec() else { continue };
        let mut containers = strings_of(&pod["containers"]);
        containers.extend(strings_of(&pod["initContainers"]));
        assert!(!containers.is_empty(), "{}: no containers", o.file);
        for c in containers {
            let cname = c["name"].as_str().unwrap_or("?");
            let at = format!("{} {} container {cname}", o.kind(), o.name());
            // Environment: names set, and the Secret keys used.
            let mut set = BTreeSet::new();
            for e in c["env"].as_array().into_iter().flatten() {
                set.insert(e["name"].as_str().unwrap().to_string());
                let secret = &e["valueFrom"]["secretKeyRef"];
                if secret.is_object() {
                    assert_eq!(secret["name"], "hyperdial", "{at}: {e}");
                    let key = secret["key"].as_str().unwrap();
                    assert!(
                        secret_keys.contains(key),
                        "{at}: Secret key {key} is not created by deploy/README.md's command {secret_command:?}"
                    );
                }
            }
            if o.kind() == "StatefulSet" {
                assert!(
                    c["image"].as_str().unwrap().contains("postgres"),
                    "{at}: {c}"
                );
                continue;
            }
            assert_eq!(c["image"].as_str(), Some(image().as_str()), "{at}");
            assert_eq!(strings(&c["command"]), ["hyperdial"], "{at}");
            let args = strings(&c["args"]);
            let sub = args.first().cloned().unwrap_or_default();
            let (flags, env) = flags_and_env(&help(&sub));
            let mut positional = Vec::new();
            let mut i = 1;
            while i < args.len() {
                let a = &args[i];
                if let Some(flag) = a.strip_prefix("--") {
                    let name = format!("--{}", flag.split('=').next().unwrap());
                    let takes_value = flags.get(&name).unwrap_or_else(|| {
                        panic!("{at}: `hyperdial {sub}` has no {name} (its flags: {flags:?})")
                    });
                    if *takes_value && !a.contains('=') {
                        i += 1;
                    }
                } else {
                    positional.push(a.clone());
                }
                i += 1;
            }
            for a in &args {
                for name in references(a) {
                    assert!(set.contains(&name), "{at}: $({name}) is not set");
                }
            }
            let referenced: BTreeSet<String> = args.iter().flat_map(|a| references(a)).collect();
            for name in set.iter().filter(|n| n.starts_with("HYPERDIAL_")) {
                assert!(
                    env.contains(name) || referenced.contains(name),
                    "{at}: {name} is neither read by `hyperdial {sub}` (it reads {env:?}) nor used in its arguments"
                );
            }
            subcommands.insert(o.kind().to_string(), (sub, args, positional, c.clone()));
        }
    }

    // The server listens beyond loopback, with a token and a database from the Secret.
    let (sub, args, positional, server) = &subcommands["Deployment"];
    assert_eq!(sub, "server");
    assert!(positional.is_empty(), "{args:?}");
    let bind = args.iter().position(|a| a == "--bind").expect("--bind");
    assert_eq!(args[bind + 1], "0.0.0.0:8337");
    let from_secret = |name: &str| {
        server["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["valueFrom"]["secretKeyRef"]["key"].clone())
    };
    assert_eq!(from_secret("HYPERDIAL_TOKEN"), Some(Value::from("token")));
    // The database URL: HYPERDIAL_DB from the Secret, read by the server itself (or given as
    // `--db $(HYPERDIAL_DB)`), never a literal in the manifest.
    assert_eq!(from_secret("HYPERDIAL_DB"), Some(Value::from("db-url")));
    if let Some(db) = args.iter().position(|a| a == "--db") {
        assert_eq!(args[db + 1], "$(HYPERDIAL_DB)", "{args:?}");
    }
    assert_eq!(server["ports"][0]["containerPort"], 8337);

    // The agents: `hyperdial agent SWEEP`, N in parallel, restarted on failure, pointed at
    // the server's Service.
    let (sub, args, positional, agent) = &subcommands["Job"];
    assert_eq!(sub, "agent");
    assert_eq!(positional.len(), 1, "one sweep id: {args:?}");
    let job = objects.iter().find(|o| o.kind() == "Job").unwrap();
    let parallelism = job.value["spec"]["parallelism"].as_u64().unwrap_or(0);
    assert!(parallelism >= 2, "parallelism {parallelism}");
    let completions = &job.value["spec"]["completions"];
    assert!(
        completions.is_null() || completions.as_u64() == Some(parallelism),
        "completions {completions}"
    );
    assert_eq!(job.pod_spec().unwrap()["restartPolicy"], "OnFailure");
    let server_url = agent["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "HYPERDIAL_SERVER")
        .and_then(|e| e["value"].as_str())
        .expect("HYPERDIAL_SERVER");
    assert_eq!(server_url, "http://hyperdial:8337");

    // Services select the pods of the workload of their name and reach their ports.
    for o in objects.iter().filter(|o| o.kind() == "Service") {
        let selector = o.value["spec"]["selector"].as_object().unwrap();
        let target = objects
            .iter()
            .find(|w| w.kind() != "Service" && w.name() == o.name())
            .unwrap_or_else(|| panic!("no workload for Service {}", o.name()));
        let labels = &target.value["spec"]["template"]["metadata"]["labels"];
        for (k, v) in selector {
            assert_eq!(&labels[k], v, "Service {} selects {k}={v}", o.name());
        }
        let selects = &target.value["spec"]["selector"]["matchLabels"];
        for (k, v) in selects.as_object().unwrap() {
            assert_eq!(&labels[k], v, "{} matchLabels {k}", target.name());
        }
        let port_name = &o.value["spec"]["ports"][0]["targetPort"];
        let ports: Vec<&Value> = target.pod_spec().unwrap()["containers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .collect();
        assert!(
            ports.iter().any(|p| &p["name"] == port_name),
            "Service {} targets port {port_name}, not in {ports:?}",
            o.name()
        );
    }
    let statefulset = objects.iter().find(|o| o.kind() == "StatefulSet").unwrap();
    assert_eq!(
        statefulset.value["spec"]["serviceName"],
        "hyperdial-postgres"
    );

    // The database URL of the README's Secret points at the PostgreSQL Service.
    assert!(
        secret_command.contains("postgres://")
            && secret_command.contains("@hyperdial-postgres:5432/"),
        "{secret_command}"
    );
    // One image name everywhere.
    for doc in ["README.md", "Containerfile"] {
        let text = std::fs::read_to_string(deploy_dir().join(doc)).unwrap();
        assert!(
            text.contains(&image()),
            "deploy/{doc} does not name {}",
            image()
        );
    }
}

fn strings_of(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

#[test]
fn sbatch_script_is_an_array_of_agents_with_real_flags() {
    let script = deploy_dir().join("slurm/hyperdial-agents.sbatch");
    let text = std::fs::read_to_string(&script).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let directives: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#SBATCH "))
        .collect();
    for wanted in ["--array=", "--requeue", "--signal=B:TERM@", "--output="] {
        assert!(
            directives.iter().any(|d| d.starts_with(wanted)),
            "no #SBATCH {wanted} in {directives:?}"
        );
    }
    // The agent's flags, as the script passes them.
    let (flags, env) = flags_and_env(&help("agent"));
    let used: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split(['(', ')', ' ', '"']))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.to_string())
        .collect();
    assert!(used.contains("--count"), "{used:?}");
    for flag in &used {
        assert!(flags.contains_key(flag), "hyperdial agent has no {flag}");
    }
    for name in ["HYPERDIAL_SERVER", "HYPERDIAL_TOKEN", "HYPERDIAL_WANDB"] {
        assert!(env.contains(name), "hyperdial agent does not read {name}");
        assert!(text.contains(name));
    }
}
