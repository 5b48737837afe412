//! The binary's commands and configuration layers: `klaxon migrate` alone, and `serve` reading
//! a TOML file, `KLAXON_*` variables and flags in that order of precedence.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn klaxon() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_klaxon"));
    c.env("KLAXON_LOG", "warn")
        .env_remove("KLAXON_DATABASE_URL")
        .kill_on_drop(true);
    c
}

/// Reads the banner's first line ("Klaxon is listening on …") and the rest up to the push URL.
async fn banner(child: &mut tokio::process::Child) -> Vec<String> {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut out = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        let done = line.contains("Push alerts:");
        out.push(line);
        if done {
            break;
        }
    }
    out
}

#[tokio::test]
async fn migrate_applies_migrations_and_creates_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let out = klaxon()
        .args(["migrate", "--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied"));
    assert!(dir.path().join("klaxon.db").exists());
    // Migrating again is a no-op, and the first `serve` still does the first-start setup.
    let again = klaxon()
        .args(["migrate", "--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(again.status.success());
    let mut child = klaxon()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = banner(&mut child).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("the password is shown only now")),
        "{lines:?}"
    );
    child.start_kill().unwrap();
}

#[tokio::test]
async fn config_file_then_environment_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("klaxon.toml");
    let data_a = dir.path().join("from-file");
    std::fs::write(
        &file,
        format!("listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\npublic_url = \"http://from-file.example\"\n", data_a.display()),
    )
    .unwrap();

    // The file alone.
    let mut child = klaxon()
        .args(["serve", "--config"])
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = banner(&mut child).await;
    assert!(lines[0].contains("http://from-file.example"), "{lines:?}");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert!(data_a.join("klaxon.db").exists());

    // The environment overrides the file; a flag overrides both.
    let data_b = dir.path().join("from-flag");
    let mut child = klaxon()
        .args(["serve", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&data_b)
        .env("KLAXON_PUBLIC_URL", "http://from-env.example")
        .env("KLAXON_DATA_DIR", dir.path().join("from-env"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = banner(&mut child).await;
    assert!(lines[0].contains("http://from-env.example"), "{lines:?}");
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert!(data_b.join("klaxon.db").exists());
    assert!(!dir.path().join("from-env").exists());
}

#[tokio::test]
async fn a_bad_config_file_is_refused_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "lisen = \"127.0.0.1:0\"\n").unwrap();
    let out = klaxon()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("lisen"), "{err}");
}
