//! The `identity` binary itself: first start on an empty SQLite database
//! (operator token, default project, curl lines that work), graceful
//! shutdown on SIGTERM, and the management commands.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::{TempDir, random_name};

const BIN: &str = env!("CARGO_BIN_EXE_identity");

fn workdir() -> TempDir {
    let dir = std::env::temp_dir().join(format!("identity-cli-{}", random_name()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

fn identity(dir: &TempDir) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(&dir.0)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("IDENTITY_PUBLIC_ADDR", "127.0.0.1:0")
        .env("IDENTITY_ADMIN_ADDR", "127.0.0.1:0")
        .env("IDENTITY_ARGON2_MEMORY_KIB", "1024")
        .env("IDENTITY_ARGON2_ITERATIONS", "1");
    c
}

async fn run(dir: &TempDir, args: &[&str]) -> (bool, String) {
    let out = identity(dir).args(args).output().await.unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `identity serve` with no configuration: SQLite in ./identity.db, both
/// planes, and what it prints once works as printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_working_credentials_and_stops_on_sigterm() {
    let dir = workdir();
    let mut child = identity(&dir)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
    {
        let end = line.starts_with("=====");
        printed.push(line);
        if end {
            break;
        }
    }
    let text = printed.join("\n");
    let token = printed
        .iter()
        .find_map(|l| l.strip_prefix("Operator token: "))
        .expect(&text)
        .to_string();
    let pk = printed
        .iter()
        .find_map(|l| l.trim().strip_prefix("publishable key: "))
        .expect(&text)
        .to_string();
    assert!(
        printed
            .iter()
            .any(|l| l.trim().starts_with("secret key:") && l.contains("sk_")),
        "{text}"
    );
    assert!(dir.0.join("identity.db").exists() && dir.0.join("identity.db.master-key").exists());

    // Both curl lines, run as printed.
    for line in printed
        .iter()
        .filter(|l| l.trim_start().starts_with("curl "))
    {
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                &format!("{} -f -o /dev/null -w '%{{http_code}}'", line.trim()),
            ])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{line}");
    }
    assert!(text.contains(&token) && text.contains(&pk));

    // SIGTERM: a clean exit.
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");

    // A second start prints nothing: the secrets were shown once.
    let child = identity(&dir)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("Operator token"),
        "secrets printed twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_commands() {
    let dir = workdir();
    let (ok, out) = run(&dir, &["migrate", "status"]).await;
    assert!(
        ok && out.contains("pending") && !out.contains("applied"),
        "{out}"
    );
    let (ok, out) = run(&dir, &["migrate", "up"]).await;
    assert!(ok && out.contains("migrations applied"), "{out}");
    let (ok, out) = run(&dir, &["migrate", "status"]).await;
    assert!(ok && out.matches("applied").count() == 14, "{out}");
    let (ok, out) = run(&dir, &["migrate", "down"]).await;
    assert!(ok && out.contains("reverted migration 14"), "{out}");
    let (_, out) = run(&dir, &["migrate", "status"]).await;
    assert!(out.contains("pending") && out.contains("applied"), "{out}");
    assert!(run(&dir, &["migrate", "up"]).await.0);

    let (ok, out) = run(&dir, &["project", "create", "--name", "From the CLI"]).await;
    assert!(ok, "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("project:"))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        id.starts_with("prj_") && out.contains("pk_") && out.contains("sk_"),
        "{out}"
    );
    let (ok, out) = run(&dir, &["project", "list"]).await;
    assert!(
        ok && out.contains(&id) && out.contains("From the CLI"),
        "{out}"
    );
    let (ok, out) = run(&dir, &["keys", "rotate", "--project", &id]).await;
    assert!(ok && out.contains("new signing key: sig_"), "{out}");
    let (ok, out) = run(&dir, &["keys", "rotate", "--project", "prj_nope"]).await;
    assert!(!ok && out.contains("not found"), "{out}");

    // Operator tokens: create (value printed once), list, revoke.
    let (ok, out) = run(&dir, &["operator-token", "create", "--name", "ci pipeline"]).await;
    assert!(ok, "{out}");
    let token_id = out
        .lines()
        .find_map(|l| l.strip_prefix("operator token:"))
        .unwrap()
        .trim()
        .to_string();
    assert!(out.contains("idop_"), "{out}");
    let (ok, out) = run(&dir, &["operator-token", "list"]).await;
    assert!(
        ok && out.contains(&token_id) && out.contains("ci pipeline") && out.contains("cli"),
        "{out}"
    );
    assert!(!out.contains("idop_"), "a token value was listed: {out}");
    let (ok, out) = run(&dir, &["operator-token", "create", "--name", "only"]).await;
    let only = out
        .lines()
        .find_map(|l| l.strip_prefix("operator token:"))
        .unwrap()
        .trim()
        .to_string();
    assert!(ok);
    let (ok, out) = run(&dir, &["operator-token", "revoke", &token_id]).await;
    assert!(ok && out.contains("revoked"), "{out}");
    let (ok, out) = run(&dir, &["operator-token", "list"]).await;
    assert!(ok && !out.contains(&token_id), "{out}");
    // The last one cannot be revoked (nobody could administer afterwards).
    let (ok, out) = run(&dir, &["operator-token", "revoke", &only]).await;
    assert!(!ok && out.contains("last operator token"), "{out}");

    // Doctor fails a development setup and says why.
    let (ok, out) = run(&dir, &["doctor"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("[FAIL] IDENTITY_MASTER_KEY") && out.contains("[ok  ] database reachable"),
        "{out}"
    );

    // A bad variable stops everything, naming it.
    let out = identity(&dir)
        .env("IDENTITY_PUBLIC_ADDR", "nowhere")
        .arg("serve")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("IDENTITY_PUBLIC_ADDR"));
}
