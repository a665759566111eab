//! Real clients against the test API server: the kubectl binary and Debian's python3-kubernetes.
//! Both run off the async runtime (the server keeps serving meanwhile), each with its own
//! kubeconfig and discovery cache, since the next test's server may reuse a port.
#![allow(dead_code)]

use std::path::Path;

/// Whether kubectl is on PATH. Without it a test fails saying so, unless
/// DECKHAND_KUBECTL_TESTS=off (`scripts/test` sets that only where it cannot get one).
pub fn kubectl_present() -> bool {
    let found =
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|dir| dir.join("kubectl").is_file()));
    if !found {
        if std::env::var("DECKHAND_KUBECTL_TESTS").is_ok_and(|v| v == "off") {
            eprintln!("skipped: kubectl is not installed and DECKHAND_KUBECTL_TESTS=off");
            return false;
        }
        panic!(
            "this test needs kubectl on PATH (`scripts/test` fetches one), \
             or DECKHAND_KUBECTL_TESTS=off to skip it"
        );
    }
    true
}

/// `kubectl --kubeconfig K ARGS...`: (exit code, stdout, stderr).
pub async fn kubectl(kubeconfig: &Path, args: &[&str]) -> (i32, String, String) {
    let cache = kubeconfig.with_file_name("kube-cache");
    let mut cmd = std::process::Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(kubeconfig).arg("--cache-dir").arg(cache);
    cmd.args(args).env_remove("KUBECONFIG");
    output(cmd).await
}

/// Runs kubectl and insists on success; its stdout.
pub async fn kubectl_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let (code, out, err) = kubectl(kubeconfig, args).await;
    assert_eq!(code, 0, "kubectl {args:?} failed: {out}{err}");
    out
}

/// Debian's interpreter (where python3-kubernetes lives) ahead of any other python3 on PATH.
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").is_file() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Whether the `kubernetes` Python module is importable; says why a test is skipped if not.
pub fn python_kubernetes_present() -> bool {
    let ok = std::process::Command::new(python())
        .args(["-c", "import kubernetes"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "skipped: the Python part needs the `kubernetes` module (Debian: apt-get install -y python3-kubernetes; .ci/run installs it)"
        );
    }
    ok
}

/// Runs a Python script with the kubeconfig path as its first argument, then `args`.
pub async fn python_script(script: &str, kubeconfig: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(python());
    cmd.arg("-c").arg(script).arg(kubeconfig).args(args);
    cmd.env_remove("KUBECONFIG");
    output(cmd).await
}

async fn output(mut cmd: std::process::Command) -> (i32, String, String) {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("the blocking task runs")
        .expect("the command starts");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
