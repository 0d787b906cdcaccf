//! What the read commands print for a person, with the real binary: metric and parameter
//! values keep their significant digits however small or large they are, and a command they
//! suggest next (the next page of `runs`, the `runs` an agent's crash loop points to) repeats
//! the options given, so it works as printed.

mod common;

use common::*;

/// Losses far below 1e-6 and above 1e6: `train.py` reports `a` at its one step.
const TINY: &str = "program: train.py
method: grid
name: tiny-metrics
metric: {name: loss, goal: minimize}
parameters:
  a: {values: [7.0e-10, 3.25e-9, 1234567.0]}
  steps: {value: 1}
";

/// Run `args` and return its standard output, failing the test on a non-zero exit.
fn ok(s: &Scratch, args: &[&str]) -> String {
    let out = s.run(args);
    assert!(out.status.success(), "hyperdial {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The command after `next page: ` in `printed`, split into its arguments (none is quoted
/// here), without the leading `hyperdial`.
fn next_page(printed: &str) -> Vec<String> {
    let line = printed
        .lines()
        .find(|l| l.contains("next page: "))
        .unwrap_or_else(|| panic!("no next page in {printed}"));
    let command = &line[line.find("next page: ").unwrap() + "next page: ".len()..];
    let mut words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
    assert_eq!(words.remove(0), "hyperdial", "{line}");
    words
}

#[test]
fn tiny_and_huge_metrics_keep_their_digits_in_every_table() {
    let s = Scratch::new("printed-digits");
    s.write("sweep.yaml", TINY);
    let out = s.run(&["tune", "sweep.yaml", "--port", "0", "--no-keep-serving"]);
    assert!(out.status.success(), "{}", text(&out));
    let tuned = text(&out);
    assert!(tuned.contains("loss = 7e-10"), "tune's best: {tuned}");
    let sweeps = json_of(&s, &["sweeps", "--json"]);
    let id = sweeps[0]["id"].as_str().unwrap().to_string();

    let listed = ok(&s, &["sweeps"]);
    assert!(listed.contains(" 7e-10 "), "sweeps: {listed}");
    let runs = ok(&s, &["runs", &id]);
    for shown in ["7e-10", "3.25e-9", "1.23457e6"] {
        // Both in the metric column and in the parameter's.
        assert_eq!(runs.matches(shown).count(), 2, "{shown} in runs: {runs}");
    }
    assert!(!runs.contains("0.000000"), "runs: {runs}");
    let best = ok(&s, &["best", &id]);
    // Named by the sweep's metric.
    assert!(best.contains("), loss 7e-10"), "best: {best}");
}

#[test]
fn the_next_page_of_runs_repeats_the_server_or_store_given() {
    let s = Scratch::new("printed-pages");
    s.write("sweep.yaml", TINY);
    let out = s.run(&["tune", "sweep.yaml", "--port", "0", "--no-keep-serving"]);
    assert!(out.status.success(), "{}", text(&out));
    let db = s.dir.join(".hyperdial/hyperdial.db");
    let db_text = db.to_str().unwrap().to_string();
    let server = ServerProcess::start(&s, &db, free_port());
    // From another directory, where neither the default store nor a default server exists:
    // the printed command works only if it names what the first one read.
    let elsewhere = s.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let run_in = |args: &[String]| {
        let out = s
            .cmd(&[])
            .args(args)
            .current_dir(&elsewhere)
            .output()
            .unwrap();
        assert!(out.status.success(), "hyperdial {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for via in [
        vec!["--server".to_string(), server.url.clone()],
        vec!["--db".to_string(), db_text.clone()],
    ] {
        let mut first: Vec<String> = ["runs", "--state", "finished", "--limit", "1"]
            .map(str::to_string)
            .to_vec();
        first.extend(via.iter().cloned());
        let page_1 = run_in(&first);
        assert!(page_1.contains("runs 1–1 of 3"), "{page_1}");
        let next = next_page(&page_1);
        for option in ["--state", "finished", "--limit", "1", "--page", "2"]
            .iter()
            .chain(&[via[0].as_str(), via[1].as_str()])
        {
            assert!(next.iter().any(|w| w == option), "{option} in {next:?}");
        }
        let page_2 = run_in(&next);
        assert!(page_2.contains("runs 2–2 of 3"), "{page_2}");
        let page_3 = run_in(&next_page(&page_2));
        assert!(
            page_3.contains("runs 3–3 of 3") && !page_3.contains("next page"),
            "{page_3}"
        );
    }
}

/// Every run fails at once: the agent stops after three and says where to look.
const FAILING: &str = "program: train.py
method: grid
name: crash-loop
parameters:
  a: {values: [1, 2, 3, 4, 5]}
  crash: {value: 'True'}
";

#[test]
fn an_agents_crash_loop_names_commands_that_reach_its_server() {
    let s = Scratch::new("printed-crash-loop");
    s.write("sweep.yaml", FAILING);
    let db = s.dir.join("server.db");
    let server = ServerProcess::start(&s, &db, free_port());
    let id = create_sweep(&s, &server.url, FAILING);
    let out = s.run(&["agent", &id, "--server", &server.url]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    let runs = format!("hyperdial runs {id} --server {}", server.url);
    assert!(said.contains(&format!("`{runs}` lists the runs")), "{said}");
    // As printed, from a directory with no store of its own, it lists the failed runs.
    let words: Vec<&str> = runs.split_whitespace().skip(1).collect();
    let listed = ok(&s, &words);
    assert!(
        listed.contains("3 runs") && listed.contains("failed"),
        "{listed}"
    );
}

/// `hyperdial sweep` on a server with a token suggests the agent's command without `--token`
/// (the shell would expand `"$HYPERDIAL_TOKEN"` onto the agent's command line, where `ps`
/// shows it to every user for as long as the agent runs) and says where the agent reads the
/// token; the command as printed, with HYPERDIAL_TOKEN set, runs the sweep.
#[test]
fn the_suggested_agent_command_keeps_the_token_off_the_command_line() {
    const TOKEN: &str = "t0ken-kept-off-argv";
    let s = Scratch::new("agent-command-token");
    let server = ServerProcess::start_with(
        &s,
        &s.dir.join("db.sqlite"),
        free_port(),
        &["--token", TOKEN],
    );
    s.write("sweep.yaml", TINY);
    let printed = ok(
        &s,
        &[
            "sweep",
            "sweep.yaml",
            "--server",
            &server.url,
            "--token",
            TOKEN,
        ],
    );
    let line = printed
        .lines()
        .find_map(|l| l.strip_prefix("start agents with:"))
        .unwrap_or_else(|| panic!("no agent command in: {printed}"));
    assert!(!line.contains(TOKEN), "{line}");
    assert!(
        line.contains("with the token in HYPERDIAL_TOKEN (the agent reads it from the environment"),
        "{line}"
    );
    let command = line.split('`').nth(1).unwrap_or_else(|| panic!("{line}"));
    assert!(!command.contains("--token"), "{line}");
    assert!(!command.contains("HYPERDIAL_TOKEN"), "{line}");
    let args: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(args[..2], ["hyperdial", "agent"], "{command}");
    let out = s
        .cmd(&args[1..])
        .env("HYPERDIAL_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(out.status.success(), "{command}: {}", text(&out));
    let id = args[2];
    let runs = s
        .cmd(&["runs", id, "--json", "--server", &server.url])
        .env("HYPERDIAL_TOKEN", TOKEN)
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3, "{runs:#?}");
    assert!(runs.iter().all(|r| r["state"] == "finished"), "{runs:#?}");
    // `--help` says why the environment is the place for the token.
    let help = ok(&s, &["agent", "--help"]);
    assert!(
        help.contains("visible to other users of the machine"),
        "{help}"
    );
}

/// `hyperdial sweep` for a program written for W&B (it imports `wandb`) suggests the agent
/// command with `--wandb`, without which W&B's own package would fail the first run; the
/// command as printed runs the sweep. Without the import, no `--wandb`.
#[test]
fn the_suggested_agent_command_has_wandb_for_a_script_that_imports_it() {
    let s = Scratch::new("agent-command-wandb");
    let server = ServerProcess::start_with(&s, &s.dir.join("db.sqlite"), free_port(), &[]);
    s.write(
        "wb.py",
        "import argparse\nimport wandb\n\
         p = argparse.ArgumentParser(); p.add_argument('--a', type=float)\n\
         run = wandb.init()\nwandb.log({'loss': run.config['a']})\nrun.finish()\n",
    );
    s.write(
        "sweep.yaml",
        "program: wb.py\nmethod: grid\nmetric: {name: loss}\nparameters:\n  a: {values: [1.0, 2.0]}\n",
    );
    let printed = ok(&s, &["sweep", "sweep.yaml", "--server", &server.url]);
    let line = printed
        .lines()
        .find_map(|l| l.strip_prefix("start agents with:"))
        .unwrap_or_else(|| panic!("no agent command in: {printed}"));
    assert!(line.contains("(`--wandb`: `wb.py` imports wandb"), "{line}");
    let command = line.split('`').nth(1).unwrap_or_else(|| panic!("{line}"));
    let args: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(
        args[..4],
        ["hyperdial", "agent", args[2], "--wandb"],
        "{command}"
    );
    let out = s.cmd(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{command}: {}", text(&out));
    let runs = s
        .cmd(&["runs", args[2], "--json", "--server", &server.url])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert!(runs.iter().all(|r| r["state"] == "finished"), "{runs:#?}");
    // A program that does not import it: no `--wandb`.
    s.write("sweep2.yaml", TINY);
    let printed = ok(&s, &["sweep", "sweep2.yaml", "--server", &server.url]);
    assert!(!printed.contains("--wandb"), "{printed}");
}

/// A read command given `--token` suggests commands without it (not even
/// `--token "$HYPERDIAL_TOKEN"`, which the shell would expand onto the next command's argv,
/// where `ps` shows it), says once that they read the token from `HYPERDIAL_TOKEN`, and the
/// command as printed works with the token in the environment.
#[test]
fn suggested_commands_never_put_the_token_on_the_command_line() {
    const TOKEN: &str = "t0ken-for-the-next-page";
    let s = Scratch::new("printed-token");
    s.write("sweep.yaml", TINY);
    let out = s.run(&["tune", "sweep.yaml", "--port", "0", "--no-keep-serving"]);
    assert!(out.status.success(), "{}", text(&out));
    let db = s.dir.join(".hyperdial/hyperdial.db");
    let server = ServerProcess::start_with(&s, &db, free_port(), &["--token", TOKEN]);
    let out = s.run(&[
        "runs",
        "--state",
        "finished",
        "--limit",
        "1",
        "--server",
        &server.url,
        "--token",
        TOKEN,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let next = next_page(&printed);
    assert!(
        !next
            .iter()
            .any(|w| w.contains("--token") || w.contains("HYPERDIAL_TOKEN")),
        "{next:?}"
    );
    assert!(!text(&out).contains(TOKEN), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("they read it from HYPERDIAL_TOKEN").count(),
        1,
        "{err}"
    );
    let page_2 = s
        .cmd(&next.iter().map(String::as_str).collect::<Vec<_>>())
        .env("HYPERDIAL_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(page_2.status.success(), "{}", text(&page_2));
    assert!(
        String::from_utf8_lossy(&page_2.stdout).contains("runs 2–2 of 3"),
        "{}",
        text(&page_2)
    );
    // A listing that suggests no command says nothing of the token.
    let out = s.run(&["runs", "--server", &server.url, "--token", TOKEN]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("next page"), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("HYPERDIAL_TOKEN"),
        "{}",
        text(&out)
    );
    // With the token in the environment there is nothing to say.
    assert!(
        !String::from_utf8_lossy(&page_2.stderr).contains("HYPERDIAL_TOKEN"),
        "{}",
        text(&page_2)
    );
}
