//! `rampart`: parses arguments and hands over to the library.

use clap::Parser;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `rampart agent …` is the agent itself, built into this binary so `rampart dev` can start
    // one without a second build. Hidden from --help: hosts run `rampart-agent`.
    if args.get(1).is_some_and(|a| a == "agent") {
        let agent_args = std::iter::once("rampart-agent".into()).chain(args.into_iter().skip(2));
        std::process::exit(rampart_agent::cli::main_with(
            agent_args.collect::<Vec<std::ffi::OsString>>(),
        ));
    }
    let cli = rampart_coordinator::cli::Cli::parse_from(args);
    std::process::exit(rampart_coordinator::cli::run(cli));
}
