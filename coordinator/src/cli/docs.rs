//! Shell completions (clap_complete) and man pages (clap_mangen) for both binaries, generated
//! from the same argument definitions the binaries parse, so they never drift. Nothing installs
//! them; the README says where to put them.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::Shell;

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum Binary {
    /// The coordinator and operator CLI.
    #[default]
    Rampart,
    /// The agent that runs on each host.
    RampartAgent,
}

impl Binary {
    fn command(self) -> clap::Command {
        match self {
            Binary::Rampart => super::Cli::command(),
            Binary::RampartAgent => rampart_agent::cli::Cli::command(),
        }
    }
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    shell: Shell,
    /// Which program the script completes.
    #[arg(long, value_enum, default_value_t)]
    binary: Binary,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Folder to write `rampart.1`, `rampart-sweep.1`, … into (created if missing).
    #[arg(long)]
    out_dir: PathBuf,
    /// Which program's pages.
    #[arg(long, value_enum, default_value_t)]
    binary: Binary,
}

pub fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = args.binary.command();
    let name = cmd.get_name().to_string();
    clap_complete::generate(args.shell, &mut cmd, name, &mut std::io::stdout());
    Ok(())
}

pub fn man(args: &ManArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("cannot create {}", args.out_dir.display()))?;
    let cmd = args.binary.command();
    clap_mangen::generate_to(cmd, &args.out_dir)
        .with_context(|| format!("cannot write man pages to {}", args.out_dir.display()))?;
    let mut pages: Vec<String> = std::fs::read_dir(&args.out_dir)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".1"))
        .collect();
    pages.sort();
    eprintln!(
        "wrote {} page(s) to {}: {}",
        pages.len(),
        args.out_dir.display(),
        pages.join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_cover_every_subcommand_of_both_binaries() {
        for (binary, expect) in [
            (
                Binary::Rampart,
                [
                    "rampart.1",
                    "rampart-sweep.1",
                    "rampart-admin-token-revoke.1",
                ],
            ),
            (
                Binary::RampartAgent,
                [
                    "rampart-agent.1",
                    "rampart-agent-enroll.1",
                    "rampart-agent-recover.1",
                ],
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            man(&ManArgs {
                out_dir: dir.path().to_path_buf(),
                binary,
            })
            .unwrap();
            for page in expect {
                let text = std::fs::read_to_string(dir.path().join(page))
                    .unwrap_or_else(|e| panic!("{page}: {e}"));
                assert!(text.contains(".TH"), "{page} is not roff");
            }
        }
    }

    #[test]
    fn completions_name_the_subcommands() {
        for (binary, word) in [(Binary::Rampart, "sweep"), (Binary::RampartAgent, "enroll")] {
            let mut cmd = binary.command();
            let mut out = Vec::new();
            let name = cmd.get_name().to_string();
            clap_complete::generate(Shell::Bash, &mut cmd, name, &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains(word), "{binary:?}");
        }
    }
}
