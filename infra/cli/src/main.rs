//! `fleetgate`: parses the command line and runs it; the exit code says how it went
//! (0 done, 1 refused by the provisioner, 2 usage error, 3 target unreachable).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A usage error prints clap's message and exits 2.
    let cli = fleetgate_cli::cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(fleetgate_cli::run(cli, &mut std::io::stdout())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    }
}
