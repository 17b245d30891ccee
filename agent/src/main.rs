//! `rampart-agent`: parses arguments and hands over to the library.

fn main() {
    std::process::exit(rampart_agent::cli::main_with(std::env::args_os()));
}
