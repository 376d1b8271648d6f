//! The files under `packaging/`: the systemd units pass `systemd-analyze
//! verify` and keep jobs alive across a restart (`KillMode=process`, shown
//! against a real server stopped the way systemd then stops it), and the
//! Kubernetes example is consistent with the server's flags and routes,
//! read with a real YAML parser and its server flags run for real.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use serde_json::json;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{BIN, Options, TestServer};
use yaml_rust2::{Yaml, YamlLoader};

/// The repository's `packaging/` directory.
fn packaging() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging")
}

/// The system unit and the user unit, as (name, path).
fn units() -> [(&'static str, PathBuf); 2] {
    let systemd = packaging().join("systemd");
    [
        ("system", systemd.join("shellctl.service")),
        ("user", systemd.join("user/shellctl.service")),
    ]
}

/// The `Key=value` lines of `[section]` of a unit file, comments left out.
fn directives(text: &str, section: &str) -> Vec<(String, String)> {
    let mut current = String::new();
    let mut found = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            name.clone_into(&mut current);
        } else if current == section
            && let Some((key, value)) = line.split_once('=')
        {
            found.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    found
}

fn directive(text: &str, key: &str) -> String {
    let values: Vec<String> = directives(text, "Service")
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values.len(), 1, "{key}= must appear once: {values:?}");
    values.into_iter().next().unwrap()
}

#[test]
fn both_units_stop_only_the_main_process_and_restart_on_failure() {
    for (name, path) in units() {
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(directive(&text, "KillMode"), "process", "{name} unit");
        assert_eq!(directive(&text, "Restart"), "on-failure", "{name} unit");
        assert_eq!(directive(&text, "Delegate"), "yes", "{name} unit");
        // Options whose per-start private instances would be torn away
        // from jobs that outlive a restart.
        for key in ["PrivateTmp", "PrivateDevices", "DynamicUser"] {
            assert!(
                directives(&text, "Service").iter().all(|(k, _)| k != key),
                "{name} unit sets {key}="
            );
        }
        assert!(
            text.contains("KillMode=process only") || text.contains("KillMode=process sends"),
            "{name} unit: the comment saying why KillMode=process is missing"
        );
    }
}

#[test]
fn the_units_exec_start_uses_real_serve_flags_and_keeps_the_runtime_dir() {
    let help = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for (name, path) in units() {
        let text = std::fs::read_to_string(&path).unwrap();
        let exec = directive(&text, "ExecStart");
        let words: Vec<&str> = exec.split_whitespace().collect();
        assert!(words[0].ends_with("/shellctl"), "{name}: {exec}");
        assert_eq!(words[1], "serve", "{name}: {exec}");
        for flag in words.iter().filter(|w| w.starts_with("--")) {
            let flag = flag.split('=').next().unwrap();
            assert!(
                help.contains(&format!("{flag} ")),
                "{name} unit: serve has no {flag}"
            );
        }
        let listen = words.iter().position(|w| *w == "--listen").unwrap();
        assert!(
            words[listen + 1].starts_with("127.0.0.1:"),
            "{name}: {exec}"
        );
    }
    // The system unit's runtime dir holds the tmux socket: it must survive
    // a stop, or the next server cannot reach the jobs.
    let (_, system) = &units()[0];
    let text = std::fs::read_to_string(system).unwrap();
    assert_eq!(directive(&text, "RuntimeDirectoryPreserve"), "yes");
    assert_eq!(directive(&text, "RuntimeDirectory"), "shellctl");
    assert_eq!(directive(&text, "StateDirectory"), "shellctl");
    let exec = directive(&text, "ExecStart");
    assert!(
        exec.contains("--state-dir /var/lib/shellctl --runtime-dir /run/shellctl"),
        "{exec}"
    );
}

/// `systemd-analyze` from the PATH, if this host has it.
fn systemd_analyze() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("systemd-analyze"))
        .find(|candidate| candidate.is_file())
}

/// Runs `systemd-analyze [--user] verify unit`; returns success and the
/// lines it printed about shellctl (its complaints about other units on
/// the host are not ours to judge).
fn verify(analyze: &Path, user: bool, unit: &Path, scratch: &Path) -> (bool, Vec<String>) {
    let mut command = Command::new(analyze);
    if user {
        // A user manager's paths come from the XDG variables; a fresh
        // private runtime dir stands in for /run/user/<uid>.
        let runtime = scratch.join("xdg-runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        command
            .arg("--user")
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("XDG_CONFIG_HOME", scratch.join("config"))
            .env("XDG_STATE_HOME", scratch.join("state"));
    }
    let output = command.arg("verify").arg(unit).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let ours = text
        .lines()
        .filter(|line| line.contains("shellctl"))
        .map(str::to_owned)
        .collect();
    (output.status.success(), ours)
}

#[test]
fn both_units_pass_systemd_analyze_verify() {
    let Some(analyze) = systemd_analyze() else {
        eprintln!("systemd-analyze is not on the PATH: unit verification skipped");
        return;
    };
    for (name, path) in units() {
        let text = std::fs::read_to_string(&path).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let user = name == "user";

        // As shipped, the one complaint allowed is the binary's absence
        // (it is installed at /usr/local/bin or ~/.cargo/bin, not here).
        let (ok, lines) = verify(&analyze, user, &path, scratch.path());
        let installed = directive(&text, "ExecStart");
        let installed = installed.split_whitespace().next().unwrap();
        assert!(
            lines
                .iter()
                .all(|line| line.contains("is not executable") && line.contains("Command ")),
            "{name} unit as shipped: {lines:#?}"
        );
        assert!(ok || !lines.is_empty(), "{name} unit failed silently");
        eprintln!("{name} unit as shipped ({installed}): {lines:?}");

        // A copy whose ExecStart runs the binary under test must pass with
        // nothing said about it: an unknown or misspelt key only warns,
        // so any line naming the unit fails the test.
        let copy = scratch.path().join("shellctl.service");
        let rewritten: String = text
            .lines()
            .map(|line| match line.strip_prefix("ExecStart=") {
                Some(exec) => {
                    let args = exec.split_once(' ').map_or("", |(_, args)| args);
                    format!("ExecStart={BIN} {args}\n")
                }
                None => format!("{line}\n"),
            })
            .collect();
        std::fs::write(&copy, rewritten).unwrap();
        let (ok, lines) = verify(&analyze, user, &copy, scratch.path());
        assert!(ok && lines.is_empty(), "{name} unit: {lines:#?}");
    }
}

/// The pid of the tmux server holding the jobs of `server`.
fn tmux_server_pid(server: &TestServer) -> String {
    let output = server.tmux(&["display-message", "-p", "#{pid}"]);
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_as_kill_mode_process_does_it_leaves_jobs_running() {
    let mut server = TestServer::start();
    let _keep = std::mem::take(server.dir_mut());
    let result = server
        .run(json!({"script": "echo up; read x; echo got $x", "idle_flush_seconds": 0.2}))
        .await;
    let id = result["job_id"].as_str().unwrap().to_owned();
    assert_eq!(result["status"], "running", "{result}");
    let tmux_before = tmux_server_pid(&server);

    // What systemd does on `systemctl restart` with KillMode=process:
    // SIGTERM to the main process only, nothing else in the unit's group.
    server.sigterm();
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}");
    let session = format!("shellctl-job-{id}");
    let alive = server.tmux(&["has-session", "-t", &session]);
    assert!(alive.status.success(), "no session between the servers");

    let restarted = server.restart();
    let (code, view) = restarted.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!((code, view["status"].clone()), (200, json!("running")));
    assert_eq!(
        tmux_server_pid(&restarted),
        tmux_before,
        "the same tmux server holds the job"
    );
    let offset = view["offset"].as_u64().unwrap();
    let (code, typed) = restarted
        .post(
            &format!("/v1/jobs/{id}/input"),
            json!({"text": "z\n", "offset": offset}),
        )
        .await;
    assert_eq!(code, 200, "{typed}");
    let (output, done) = restarted.wait_done(&id, 0).await;
    assert_eq!(output, "up\nz\ngot z\n");
    assert_eq!(
        (done["status"].clone(), done["exit_code"].clone()),
        (json!("exited"), json!(0))
    );
    drop(restarted);
}

// ---- Kubernetes ----

/// The documents of the Kubernetes example.
fn manifest() -> Vec<Yaml> {
    let path = packaging().join("kubernetes/shellctl-sidecar.yaml");
    YamlLoader::load_from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    let found: Vec<&Yaml> = docs
        .iter()
        .filter(|doc| doc["kind"].as_str() == Some(kind))
        .collect();
    assert_eq!(found.len(), 1, "one {kind} expected");
    found[0]
}

fn items(yaml: &Yaml) -> &[Yaml] {
    yaml.as_vec()
        .map_or_else(|| panic!("not a list: {yaml:?}"), Vec::as_slice)
}

fn text(yaml: &Yaml) -> &str {
    yaml.as_str()
        .unwrap_or_else(|| panic!("not a string: {yaml:?}"))
}

fn named<'a>(list: &'a Yaml, name: &str) -> &'a Yaml {
    items(list)
        .iter()
        .find(|item| item["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("nothing named {name} in {list:?}"))
}

/// The value after `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> &'a str {
    let at = args
        .iter()
        .position(|arg| arg == flag)
        .unwrap_or_else(|| panic!("{flag} missing from {args:?}"));
    &args[at + 1]
}

/// Asserts `container` takes `SHELLCTL_AUTH_TOKEN` from `secret`'s key.
fn token_from_secret(container: &Yaml, secret: &Yaml) {
    let reference = &named(&container["env"], "SHELLCTL_AUTH_TOKEN")["valueFrom"]["secretKeyRef"];
    assert_eq!(
        reference["name"].as_str(),
        secret["metadata"]["name"].as_str()
    );
    let key = text(&reference["key"]);
    assert!(
        !secret["stringData"][key].is_badvalue(),
        "the Secret has no key {key}"
    );
}

#[test]
fn the_kubernetes_example_is_consistent_with_the_servers_flags() {
    let docs = manifest();
    let secret = of_kind(&docs, "Secret");
    let deployment = of_kind(&docs, "Deployment");
    let pod = &deployment["spec"]["template"];
    let containers = &pod["spec"]["containers"];
    let shellctl = named(containers, "shellctl");
    let args: Vec<String> = items(&shellctl["args"])
        .iter()
        .map(|arg| text(arg).to_owned())
        .collect();
    assert_eq!(args[0], "serve");

    // The port: what the server listens on, what the container exposes,
    // what the probes and the scrape annotation name.
    let listen: std::net::SocketAddr = flag(&args, "--listen").parse().unwrap();
    assert!(
        listen.ip().is_unspecified(),
        "probes come to the pod IP: {listen}"
    );
    let port = named(&shellctl["ports"], "http");
    assert_eq!(
        port["containerPort"].as_i64(),
        Some(i64::from(listen.port()))
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        let get = &shellctl[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some("/healthz"), "{probe}");
        assert_eq!(get["port"].as_str(), Some("http"), "{probe}");
    }

    // The Host check answers the probes' Host (the pod IP), given by the
    // downward API.
    assert_eq!(flag(&args, "--allow-host"), "$(POD_IP)");
    let pod_ip = &named(&shellctl["env"], "POD_IP")["valueFrom"]["fieldRef"];
    assert_eq!(pod_ip["fieldPath"].as_str(), Some("status.podIP"));

    // The token, for the server and for the agent, from the Secret.
    token_from_secret(shellctl, secret);
    token_from_secret(named(containers, "agent"), secret);

    // The state and runtime dirs are below one volume's mount, not the
    // mount itself (whose root the server cannot make private).
    let state_dir = flag(&args, "--state-dir");
    let runtime_dir = flag(&args, "--runtime-dir");
    let mount = items(&shellctl["volumeMounts"])
        .iter()
        .find(|m| state_dir.starts_with(&format!("{}/", text(&m["mountPath"]))))
        .unwrap_or_else(|| panic!("no volume mounted above {state_dir}"));
    assert!(runtime_dir.starts_with(&format!("{}/", text(&mount["mountPath"]))));
    let volume = named(&pod["spec"]["volumes"], text(&mount["name"]));
    assert!(
        !volume["emptyDir"].is_badvalue() || !volume["persistentVolumeClaim"].is_badvalue(),
        "{volume:?}"
    );

    // Prometheus: annotations as strings (Kubernetes refuses others), and
    // a scrape job that sends the token to /metrics on that port.
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"));
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(listen.port().to_string().as_str())
    );
    assert_eq!(annotations["prometheus.io/path"].as_str(), Some("/metrics"));
    let config_map = of_kind(&docs, "ConfigMap");
    let scrape = YamlLoader::load_from_str(text(&config_map["data"]["shellctl-scrape.yaml"]))
        .unwrap()
        .remove(0);
    let job = &scrape["scrape_configs"][0];
    assert_eq!(job["metrics_path"].as_str(), Some("/metrics"));
    assert_eq!(job["authorization"]["type"].as_str(), Some("Bearer"));
    assert!(job["authorization"]["credentials_file"].as_str().is_some());
    assert_eq!(
        job["kubernetes_sd_configs"][0]["role"].as_str(),
        Some("pod")
    );
}

/// One HTTP/1.1 request to `server` over a plain socket, with the `Host`
/// a kubelet probe or Prometheus would send; returns the status code.
fn status_with_host(server: &TestServer, path: &str, host: &str, token: Option<&str>) -> u16 {
    let address = server.base.strip_prefix("http://").unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(support::HANG_GUARD)).unwrap();
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_flags_let_probes_through_and_keep_the_host_check() {
    let docs = manifest();
    let shellctl = named(
        &of_kind(&docs, "Deployment")["spec"]["template"]["spec"]["containers"],
        "shellctl",
    );
    let token = text(&of_kind(&docs, "Secret")["stringData"]["token"]).to_owned();
    // The manifest's flags as the kubelet would expand them, for a pod at
    // 10.1.2.3 (only ever a name in a Host header here: the server listens
    // on loopback, and the listen address and dirs are the test's).
    let pod_ip = "10.1.2.3";
    let mut extra = Vec::new();
    let args: Vec<&str> = items(&shellctl["args"]).iter().map(text).collect();
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        let value = rest.next().unwrap();
        if !["--listen", "--state-dir", "--runtime-dir"].contains(arg) {
            extra.push((*arg).to_owned());
            extra.push(value.replace("$(POD_IP)", pod_ip));
        }
    }
    let server = TestServer::start_with(Options {
        token: Some(token.clone()),
        extra,
    });
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let probe_path = text(&shellctl["livenessProbe"]["httpGet"]["path"]).to_owned();
    let probe_host = format!("{pod_ip}:{port}");
    let (probe, jobs, anonymous, rebinding, local) = tokio::task::spawn_blocking(move || {
        (
            status_with_host(&server, &probe_path, &probe_host, None),
            status_with_host(&server, "/v1/jobs", &probe_host, Some(&token)),
            status_with_host(&server, "/v1/jobs", &probe_host, None),
            status_with_host(&server, &probe_path, "evil.example", None),
            status_with_host(&server, "/v1/jobs", "127.0.0.1", Some(&token)),
        )
    })
    .await
    .unwrap();
    assert_eq!(probe, 200, "the kubelet's probe");
    assert_eq!(
        jobs, 200,
        "a scraper or client with the token at the pod IP"
    );
    assert_eq!(anonymous, 401, "no token");
    assert_eq!(rebinding, 403, "a foreign Host");
    assert_eq!(local, 200, "the agent over loopback");
}
