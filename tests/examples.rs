//! Every example runs to completion (the examples check their own results and exit with an
//! error when a check fails). `cargo test` builds the examples next to this test's binary.
//! Not covered: the examples' timing.

use std::path::PathBuf;
use std::process::Command;

/// The built example `name`, next to this test binary (`target/<profile>/examples/`).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built; run `cargo test`, which builds the examples",
        path.display()
    );
    path
}

#[test]
fn quickstart_runs_and_its_gradients_check() {
    let out = Command::new(example("quickstart"))
        .output()
        .expect("the example starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "quickstart failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("zero past each length: true"), "{stdout}");
    assert!(stdout.contains("gradcheck worst error"), "{stdout}");
}
