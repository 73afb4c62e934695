//! The command line, as clap reads it.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use fabric_core::parse_duration;

/// The broker used when neither `--url` nor `FABRIC_URL` names one.
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  any other failure (the broker refused an operation, ...)
  2  bad command line (a malformed DOMAIN/TYPE/ID, --args that is not a JSON object, ...)
  3  the broker cannot be reached, or refused the login or the virtual host
  4  no such service: no instance is running (or announcing itself)
  5  the service has no such method
  6  bad arguments: they do not fit the method's contract, or the service refused them
  7  timeout: no reply within --timeout
  8  the service answered with an error

A service is written DOMAIN/TYPE/ID (a slash never occurs in amqp-fabric names; a dot can).";

/// See, call and follow a running fabric or amqp-fabric system through its RabbitMQ broker.
#[derive(Debug, Parser)]
#[command(name = "fabric", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// The broker's URL (amqp:// or amqps://).
    #[arg(long, global = true, env = "FABRIC_URL", default_value = DEFAULT_URL, hide_env_values = true)]
    pub url: String,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the services that announce themselves: address, version, host, pid, uptime, load.
    Services(ServicesArgs),
    /// Show one service: version, contract hash, and each method's signature and doc.
    Describe(DescribeArgs),
    /// Call a method with JSON arguments and print its result as JSON.
    Call(CallArgs),
    /// Print the log records services ship to their domain.
    Logs(LogsArgs),
    /// Follow a domain's data stream.
    Data(DataArgs),
    /// Follow a domain's events whose topic matches a pattern.
    Events(EventsArgs),
    /// Publish one message to a domain's data stream.
    PublishData(PublishDataArgs),
    /// Publish one event to a domain.
    PublishEvent(PublishEventArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// How long to listen for keep-alives before answering.
#[derive(Debug, Args)]
pub struct Listen {
    /// How long to listen for keep-alives: a service is seen once its next keep-alive
    /// arrives (fabric services announce every second or so by default in the examples).
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Duration,
}

/// `fabric services`.
#[derive(Debug, Args)]
pub struct ServicesArgs {
    /// Only services of this domain.
    #[arg(long, short)]
    pub domain: Option<String>,
    /// Only services of this type.
    #[arg(long = "type", short = 't', value_name = "TYPE")]
    pub service_type: Option<String>,
    /// Print JSON: an array, or with --watch one object per line.
    #[arg(long)]
    pub json: bool,
    /// Keep running and print each change: a service appears, updates, leaves or goes silent.
    #[arg(long, short)]
    pub watch: bool,
    #[command(flatten)]
    pub listen: Listen,
}

/// `fabric describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The service, DOMAIN/TYPE/ID.
    pub service: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the service's keep-alive.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Duration,
}

/// `fabric call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The service, DOMAIN/TYPE/ID.
    pub service: String,
    /// The method to call.
    pub method: String,
    /// Keyword arguments, NAME=VALUE; each VALUE is read as JSON, else taken as a string.
    #[arg(value_name = "NAME=VALUE")]
    pub args: Vec<String>,
    /// The arguments as one JSON object (NAME=VALUE pairs are added to it).
    #[arg(long = "args", value_name = "JSON")]
    pub json_args: Option<String>,
    /// How long to wait for the reply.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Send without checking the arguments against the service's announced contract.
    #[arg(long)]
    pub no_check: bool,
    /// How long to wait for the service's keep-alive, to check the arguments against its
    /// contract; a service that announces none in that time is called unchecked.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Duration,
}

/// `fabric logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The domain whose logs to print (or that of --service).
    #[arg(long, short, env = "FABRIC_DOMAIN")]
    pub domain: Option<String>,
    /// Only the records of this service, DOMAIN/TYPE/ID.
    #[arg(long, short)]
    pub service: Option<String>,
    /// Only records at this level or above: debug, info, warning, error, critical.
    #[arg(long, short, default_value = "debug")]
    pub level: String,
    /// Keep printing until interrupted; without it, stop after --wait.
    #[arg(long, short)]
    pub follow: bool,
    /// Without --follow: how long to print what arrives.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Duration,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    pub count: Option<u64>,
    /// Print one JSON object per record.
    #[arg(long)]
    pub json: bool,
}

/// `fabric data`.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// The domain whose data stream to follow.
    #[arg(long, short, env = "FABRIC_DOMAIN")]
    pub domain: String,
    /// Only messages with this header, K=V (repeatable; all must match).
    #[arg(long = "header", short = 'H', value_name = "K=V")]
    pub headers: Vec<String>,
    /// Stop after this many messages.
    #[arg(long, short = 'n')]
    pub count: Option<u64>,
    /// Print one JSON object per message.
    #[arg(long)]
    pub json: bool,
}

/// `fabric events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The domain whose events to follow.
    #[arg(long, short, env = "FABRIC_DOMAIN")]
    pub domain: String,
    /// The topic pattern: words separated by dots, `*` for one word, `#` for any number.
    #[arg(default_value = "#")]
    pub pattern: String,
    /// Stop after this many events.
    #[arg(long, short = 'n')]
    pub count: Option<u64>,
    /// Print one JSON object per event.
    #[arg(long)]
    pub json: bool,
}

/// `fabric publish-data`.
#[derive(Debug, Args)]
pub struct PublishDataArgs {
    /// The domain whose data stream to publish to.
    #[arg(long, short, env = "FABRIC_DOMAIN")]
    pub domain: String,
    /// A header of the message, K=V (repeatable); VALUE is read as JSON when it is a
    /// number or a boolean, else taken as a string.
    #[arg(long = "header", short = 'H', value_name = "K=V")]
    pub headers: Vec<String>,
    /// The body, sent as given (e.g. JSON text).
    pub body: String,
}

/// `fabric publish-event`.
#[derive(Debug, Args)]
pub struct PublishEventArgs {
    /// The domain to publish to.
    #[arg(long, short, env = "FABRIC_DOMAIN")]
    pub domain: String,
    /// The event's topic (its routing key), e.g. order.created.
    pub topic: String,
    /// The payload: JSON, else taken as a string.
    pub payload: String,
}

/// `fabric completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
