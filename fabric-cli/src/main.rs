//! `fabric`: see, call and follow a running fabric (or amqp-fabric) system from a shell.
//!
//! Each subcommand lives in `commands/`; `cli.rs` holds the command line, `failure.rs` the
//! exit codes, and `connect.rs` how the command joins the broker.

#![forbid(unsafe_code)]

mod cli;
mod commands;
mod connect;
mod failure;
mod output;
mod target;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use failure::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("fabric: {}", failure.message);
            ExitCode::from(failure.code as u8)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let url = cli.url;
    match cli.command {
        Command::Services(args) => commands::services::run(&url, args),
        Command::Describe(args) => commands::describe::run(&url, args),
        Command::Call(args) => commands::call::run(&url, args),
        Command::Logs(args) => commands::logs::run(&url, args),
        Command::Data(args) => commands::data::run(&url, args),
        Command::Events(args) => commands::events::run(&url, args),
        Command::PublishData(args) => commands::publish_data::run(&url, args),
        Command::PublishEvent(args) => commands::publish_event::run(&url, args),
        Command::Completions(args) => commands::completions::run(args),
    }
}
