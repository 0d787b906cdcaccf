//! End-to-end throughput of the sweep loop: trivial runs per second through the real binary
//! (`hyperdial tune` = embedded server + agents + process supervision), for 1, 2 and 4 agents.
//! The training command is `/bin/true`, so the number measures hyperdial's own overhead:
//! claim (a transaction), process spawn, output capture, heartbeat, finish.
//!
//! `cargo build --release && cargo run --release -p hyperdial-bench --bin trivial_runs [-- --runs 200]`

use std::process::Command;
use std::time::Instant;

fn main() {
    let runs: u64 = std::env::args()
        .skip_while(|a| a != "--runs")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let exe = std::env::current_exe().expect("exe");
    let bin = exe.with_file_name("hyperdial");
    assert!(
        bin.exists(),
        "build the binary first: cargo build --release ({} missing)",
        bin.display()
    );
    println!("trivial runs through `hyperdial tune` ({runs} runs of /bin/true per case)");
    println!("{:>8} {:>10} {:>10}", "agents", "seconds", "runs/s");
    for agents in [1u32, 2, 4] {
        let dir =
            std::env::temp_dir().join(format!("hyperdial-trivial-{}-{agents}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("sweep.yaml"),
            format!("method: random\nrun_cap: {runs}\ncommand: [/bin/true]\nparameters:\n  x: {{min: 0.0, max: 1.0}}\n"),
        )
        .unwrap();
        let started = Instant::now();
        let out = Command::new(&bin)
            .args([
                "tune",
                "sweep.yaml",
                "--port",
                "0",
                "--agents",
                &agents.to_string(),
            ])
            .current_dir(&dir)
            .output()
            .expect("run hyperdial");
        let secs = started.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{agents:>8} {secs:>10.2} {:>10.1}", runs as f64 / secs);
        std::fs::remove_dir_all(&dir).ok();
    }
}
