//! `rampart`: parses arguments and hands over to the library.

use clap::Parser;

/// mimalloc instead of the system allocator: a coordinator with 10,000 agent sessions spent about a
/// third of a sweep's CPU in glibc's malloc and free (see BENCHMARKS.md, "Past one coordinator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    quiet_on_closed_stdout();
    let cli = rampart_coordinator::cli::Cli::parse_from(args);
    std::process::exit(rampart_coordinator::cli::run(cli));
}

/// `rampart sweep show ID -o sarif | head`: when the reader of stdout goes away, stop quietly with
/// the status a shell expects from SIGPIPE (128 + 13) instead of a panic and a backtrace. Rust
/// ignores SIGPIPE, so printing to a closed pipe panics in `print!`; only that panic is caught.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
