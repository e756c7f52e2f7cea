//! `batonctl`: parse the command line, run one command against the gateway, map failures to
//! `error: CODE: message` on stderr and a non-zero exit status.

mod args;
mod cli;
mod commands;
mod dlq;
mod format;
mod gates;
mod human;
mod json;
mod keys;
mod lanes;
mod output;
mod readiness;
mod switches;
mod tools;

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli).await {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

/// Prints a failure and picks the exit status; a closed stdout (`batonctl watch R | head`) is not one.
fn report(e: &anyhow::Error) -> ExitCode {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::BrokenPipe {
            return ExitCode::SUCCESS;
        }
    }
    match e.downcast_ref::<tonic::Status>() {
        Some(status) => eprintln!("error: {}: {}", batonctl::client::code_name(status.code()), status.message()),
        None => eprintln!("error: {e:#}"),
    }
    ExitCode::FAILURE
}
