//! The baseline signs exactly as GitHub does (the example in GitHub's
//! "Validating webhook deliveries" guide), so the bench's signed requests are
//! accepted by both servers. Also makes `cargo test` build the binary that
//! `cargo xtask bench --profile dev` (CI's smoke) runs.

use std::process::Command;

#[test]
fn signs_like_github() {
    let dir = std::env::temp_dir().join(format!("hookhost-baseline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = dir.join("body");
    std::fs::write(&body, "Hello, World!").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_hookhost-baseline"))
        .args(["sign", "--secret", "It's a Secret to Everybody", "--file"])
        .arg(&body)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}
