//! `strata plan` as the binary prints it, snapshotted (no database: the
//! estimates of unreachable databases are "unknown").

mod common;

use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn plan(file: &str, format: &str) -> (i32, String, String) {
    let out = common::strata_command()
        .arg("--workspace")
        .arg(repo())
        .args(["plan", file, "--format", format])
        .env_remove("NOVA_LEON_DATABASE_URL")
        .env_remove("DREAMLINK_DATABASE_URL")
        .env_remove("GAKU_DATABASE_URL")
        .output()
        .expect("run strata");
    let run = common::Run::from(out);
    (run.code, run.stdout, run.stderr)
}

#[test]
fn plan_of_a_move_as_text() {
    let (code, stdout, stderr) = plan("nova-leon-to-dreamlink", "text");
    assert_eq!(code, 0, "{stderr}");
    insta::with_settings!({filters => vec![(r"(?m)^not reached: ([a-z-]+): .*$", "not reached: $1: [why]")]}, {
        insta::assert_snapshot!("plan_move_text", stdout);
    });
}

#[test]
fn plan_of_a_reshape_as_text() {
    let (code, stdout, stderr) = plan("cutovers/rename-message-body.toml", "text");
    assert_eq!(code, 0, "{stderr}");
    insta::with_settings!({filters => vec![(r"(?m)^not reached: ([a-z-]+): .*$", "not reached: $1: [why]")]}, {
        insta::assert_snapshot!("plan_reshape_text", stdout);
    });
}

#[test]
fn plan_as_json() {
    let (code, stdout, stderr) = plan("rename-message-body", "json");
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["kind"], "reshape");
    let ids: Vec<&str> = v["steps"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "preflight",
            "expand",
            "dual-write",
            "backfill",
            "verify",
            "flip-reader:inbox",
            "flip-reader:digest",
            "flip-writers",
            "contract"
        ]
    );
    assert_eq!(v["estimates"][0]["rows"], serde_json::Value::Null);
    assert_eq!(v["estimates"][0]["from"], "unreachable");
    let unreachable = v["unreachable"].as_array().unwrap();
    assert!(
        unreachable
            .iter()
            .any(|u| u["database"] == "dreamlink" && u["error"].as_str().unwrap().contains("DREAMLINK_DATABASE_URL is not set")),
        "{stdout}"
    );
}

#[test]
fn a_bad_cutover_file_names_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "kind = \"reshape\"\nretention = \"7d\"\nworkerz = []\n[[table]]\nname = \"messages\"\n",
    )
    .unwrap();
    let (code, _, stderr) = plan(path.to_str().unwrap(), "text");
    assert_eq!(code, 2);
    assert!(stderr.contains("broken.toml:3:1: unknown field `workerz`"), "{stderr}");
}
