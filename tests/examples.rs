//! Every example runs to completion (the examples check their own results and exit with an
//! error when a check fails). Each is run through `cargo run --release --example`, so it is
//! built first when needed. Not covered: the examples' timing.

use std::process::{Command, Output};

/// Runs `cargo run --release --example <name> -- <args>` and returns what it printed.
fn run_example(name: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--release", "--example", name, "--"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo starts")
}

#[test]
fn quickstart_runs_and_its_gradients_check() {
    let out = run_example("quickstart", &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "quickstart failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("zero past each length: true"), "{stdout}");
    assert!(stdout.contains("gradcheck worst error"), "{stdout}");
}
