//! `hyperdial sweep FILE`: create a sweep from a sweep file and print the command that starts
//! its agents (from where, with the token how, and `--wandb` when the program imports wandb).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use hyperdial_wire::api::CreateSweep;

use super::read_sweep_file;
use crate::Remote;

/// `hyperdial sweep FILE`.
pub async fn create(
    remote: &Remote,
    file: &Path,
    project: Option<&str>,
    as_json: bool,
) -> Result<ExitCode> {
    let source = read_sweep_file(file)?;
    let api = remote.api()?;
    let body_source = source.clone();
    let body = CreateSweep {
        source,
        project: project.map(str::to_string),
        file: Some(file.display().to_string()),
        ..CreateSweep::default()
    };
    let sweep = api.post("/api/v1/sweeps", &body).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&sweep)?);
    } else {
        let id = sweep["id"].as_str().unwrap_or("?");
        println!(
            "created sweep {id} ({} in project {})",
            sweep["method"].as_str().unwrap_or("?"),
            sweep["project"].as_str().unwrap_or("?")
        );
        let parsed = hyperdial_space::parse_str(&body_source, &file.display().to_string()).ok();
        let runnable = parsed
            .as_ref()
            .and_then(|v| crate::commands::tune::cannot_run(&v.config));
        match runnable {
            // Drive it from Python (`hyperdial.Sweep`, ask/tell); agents would refuse it.
            Some(why) => println!("no agents for this sweep: {why}"),
            None => {
                let wandb = parsed
                    .as_ref()
                    .and_then(|v| program_imports_wandb(&v.config, file));
                // Without `--wandb`, a script that imports wandb gets W&B's own package,
                // which wants an account: the first run would fail.
                let mut command = agent_command(id, api.base(), remote, wandb.is_some());
                if let Some(program) = &wandb {
                    command.push_str(&format!(
                        " (`--wandb`: {program} imports wandb, and gets hyperdial's \
                         W&B-compatible module; or put `wandb: true` in the sweep file)"
                    ));
                }
                println!(
                    "start agents{} with:  {command}",
                    parsed
                        .as_ref()
                        .map(|v| where_agents_start(&v.config, file))
                        .unwrap_or_default(),
                )
            }
        }
        println!("dashboard:          {}/sweeps/{id}", api.base());
    }
    Ok(ExitCode::SUCCESS)
}

/// The program of a sweep read from `file` when it is a Python file that imports `wandb`
/// (an `import wandb` or `from wandb` line) and the sweep does not ask for hyperdial's
/// W&B-compatible module (`wandb: true`): its agents need `--wandb`. The program is looked for
/// here, then beside the sweep file; at most its first MiB is read.
fn program_imports_wandb(config: &hyperdial_space::SweepConfig, file: &Path) -> Option<String> {
    if config.wandb {
        return None;
    }
    let program = hyperdial_space::command::script_program(config)?;
    let path = [
        Some(PathBuf::from(program)),
        file.parent().map(|d| d.join(program)),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.is_file())?;
    let mut text = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open(&path).ok()?, 1 << 20),
        &mut text,
    )
    .ok()?;
    imports_wandb(&String::from_utf8_lossy(&text)).then(|| format!("`{program}`"))
}

/// Whether Python source `text` imports `wandb` itself, in any statement of a line
/// (`import wandb`, `import os, wandb as wb`, `x = 1; from wandb.sdk import init`), or through
/// a logger that does (Lightning's `WandbLogger`, `importlib.import_module("wandb")`).
fn imports_wandb(text: &str) -> bool {
    let is_wandb = |module: &str| module == "wandb" || module.starts_with("wandb.");
    text.lines().any(|line| {
        let line = line.trim_start_matches('\u{feff}');
        if line.contains("WandbLogger")
            || line.contains("import_module(\"wandb\"")
            || line.contains("import_module('wandb'")
        {
            return true;
        }
        let code = line.split('#').next().unwrap_or_default();
        code.split(';').any(|statement| {
            let statement = statement.trim();
            if let Some(names) = statement.strip_prefix("import ") {
                names
                    .split(',')
                    .any(|name| is_wandb(name.split_whitespace().next().unwrap_or_default()))
            } else if let Some(rest) = statement.strip_prefix("from ") {
                is_wandb(rest.split_whitespace().next().unwrap_or_default())
            } else {
                false
            }
        })
    })
}

/// Where agents of a sweep read from `file` must start, when it is not here: the program its
/// command runs as a file is not in this directory but beside the sweep file (an agent looks
/// for it in its own working directory). Empty otherwise.
fn where_agents_start(config: &hyperdial_space::SweepConfig, file: &Path) -> String {
    let Some(program) = hyperdial_space::command::script_program(config) else {
        return String::new();
    };
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
    match dir {
        Some(dir) if !Path::new(program).exists() && dir.join(program).exists() => {
            format!(" in {} (where `{program}` is)", dir.display())
        }
        _ => String::new(),
    }
}

/// The `hyperdial agent` command line that reaches this server the way this command did,
/// with `--wandb` when `wandb` (the sweep's program imports wandb) and the CA file when one
/// was given, in backticks; when a token is in use, followed by a note that the agent reads
/// it from `HYPERDIAL_TOKEN`. Never `--token`: an agent runs for hours, and a token on its
/// command line (even a shell's `"$HYPERDIAL_TOKEN"`, expanded before it starts) is there
/// for every user of the machine to read with `ps`.
pub fn agent_command(id: &str, base: &str, remote: &Remote, wandb: bool) -> String {
    let flag = if wandb { " --wandb" } else { "" };
    let mut command = format!("`hyperdial agent {id}{flag} --server {base}");
    if let Some(ca) = &remote.ca_cert {
        command.push_str(&format!(" --ca-cert {}", ca.display()));
    }
    command.push('`');
    if remote.token.as_deref().is_some_and(|t| !t.is_empty()) {
        command.push_str(TOKEN_FROM_ENV);
    }
    command
}

/// What [`agent_command`] adds when the server needs a token.
const TOKEN_FROM_ENV: &str = " with the token in HYPERDIAL_TOKEN (the agent reads it from the \
     environment; `--token` would show it to other users in `ps`)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_importing_wandb_is_recognized_in_every_form_of_import() {
        for text in [
            "import wandb\n",
            "\u{feff}import wandb\n",
            "import os, sys, wandb\n",
            "import numpy, wandb as wb\n",
            "import wandb; import os\n",
            "x = 1; import wandb\n",
            "def f():\n    import wandb\r\n",
            "from wandb.sdk import init\n",
            "from lightning.pytorch.loggers import WandbLogger\n",
            "m = importlib.import_module(\"wandb\")\n",
        ] {
            assert!(super::imports_wandb(text), "{text:?}");
        }
        for text in [
            "import wandb_utils\n",
            "import os  # then wandb\n",
            "print('import wandb')\n",
            "from mywandb import x\n",
        ] {
            assert!(!super::imports_wandb(text), "{text:?}");
        }
    }

    #[test]
    fn the_printed_agent_command_reaches_the_server_the_same_way() {
        let mut remote = Remote {
            server: Some("https://sweeps.lan:8337".into()),
            token: None,
            ca_cert: None,
        };
        assert_eq!(
            agent_command("s1", "https://sweeps.lan:8337", &remote, false),
            "`hyperdial agent s1 --server https://sweeps.lan:8337`"
        );
        remote.token = Some("secret".into());
        remote.ca_cert = Some("certs/server.pem".into());
        let command = agent_command("s1", "https://sweeps.lan:8337", &remote, false);
        assert_eq!(
            command,
            "`hyperdial agent s1 --server https://sweeps.lan:8337 --ca-cert certs/server.pem` \
             with the token in HYPERDIAL_TOKEN (the agent reads it from the environment; \
             `--token` would show it to other users in `ps`)"
        );
        assert!(!command.contains("secret"));
        assert!(!command.contains("--token \""), "{command}");
        assert!(
            agent_command("s1", "https://sweeps.lan:8337", &remote, true)
                .starts_with("`hyperdial agent s1 --wandb --server https://sweeps.lan:8337 "),
        );
    }
}
