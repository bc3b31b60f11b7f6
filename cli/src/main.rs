//! `tokencache`: look into, diagnose, purge, convert and count MSAL token caches at
//! rest — a cache file, a SQLite database or a Redis server.
//!
//! This crate is argument parsing and output formatting only: what a cache holds,
//! what is wrong with it and how to fix it are decided by the `tokencache` crate's
//! `inventory`, `diagnose` and `maintenance` modules.

mod convert;
mod doctor;
mod inspect;
mod output;
mod purge;
mod stats;
mod target;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit status of a command that failed (also clap's for bad arguments).
const EXIT_FAILED: u8 = 2;
/// Exit status of `doctor` when it found something wrong.
const EXIT_PROBLEMS: u8 = 1;

const TARGETS: &str = "\
Targets:
  PATH                 a cache file (msal-extensions, azure-cli: ~/.azure/msal_token_cache.json)
  sqlite:PATH          a SQLite database written by SqliteStore (also any PATH ending .db, .sqlite, .sqlite3)
  redis://HOST[:PORT][/DB], rediss://...
                       a Redis server written by RedisStore (keys <prefix>{<partition>}; see --prefix)

Exit status: 0 on success, 1 when `doctor` finds a problem, 2 when the command fails.
Secrets are never printed: entries are described by their fields, never their tokens.";

#[derive(Parser)]
#[command(
    name = "tokencache",
    version,
    about = "Inspect, diagnose, purge and convert MSAL token caches at rest",
    after_help = TARGETS,
    propagate_version = true
)]
struct Cli {
    /// When to use colours: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto, global = true)]
    color: ColorWhen,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// List accounts, tokens, scopes, expiries and sizes (secrets are never shown).
    #[command(after_help = TARGETS)]
    Inspect(inspect::InspectArgs),
    /// Run the troubleshooting checklist and print each problem with its fix.
    #[command(after_help = TARGETS)]
    Doctor(doctor::DoctorArgs),
    /// Remove expired access tokens (and expired blobs of a store).
    #[command(after_help = TARGETS)]
    Purge(purge::PurgeArgs),
    /// Copy a cache between a file and stores, encrypting or decrypting on the way.
    #[command(after_help = TARGETS)]
    Convert(convert::ConvertArgs),
    /// Count entries, partitions and bytes, and time the store's reads.
    #[command(after_help = TARGETS)]
    Stats(stats::StatsArgs),
}

/// Options shared by every command that reads a target.
#[derive(Args, Clone, Debug)]
pub struct TargetArgs {
    /// Key prefix of a Redis store.
    #[arg(long, default_value = "tokencache:", value_name = "PREFIX")]
    pub prefix: String,
    /// PEM file of the CA that signed a rediss:// server's certificate (a private CA).
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Redis connect and reply timeout, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub timeout_ms: u64,
    /// File holding the key ring that opens encrypted blobs (64 hex digits or base64 per key,
    /// the primary first; or 32 raw bytes).
    #[arg(long, value_name = "FILE", conflicts_with = "key_env")]
    pub key_file: Option<std::path::PathBuf>,
    /// Environment variable holding that key ring.
    #[arg(long, value_name = "VAR")]
    pub key_env: Option<String>,
    /// Judge expiry as of this Unix time instead of now.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub now: Option<i64>,
}

impl TargetArgs {
    /// The time expiry is judged at.
    pub fn now(&self) -> i64 {
        self.now.unwrap_or_else(tokencache::unix_now)
    }
}

/// A failure to report on one line.
pub struct Failure(pub String);

impl From<tokencache::Error> for Failure {
    fn from(e: tokencache::Error) -> Self {
        Failure(e.message().to_owned())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        // A reader that went away (`| head`) is not an error worth a line.
        if e.kind() == std::io::ErrorKind::BrokenPipe { Failure(String::new()) } else { Failure(e.to_string()) }
    }
}

/// How a command that ran to its end went.
pub enum Outcome {
    /// Nothing wrong.
    Done,
    /// `doctor` found something wrong.
    Problems,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.color {
        ColorWhen::Auto => {}
        ColorWhen::Always => anstream::ColorChoice::Always.write_global(),
        ColorWhen::Never => anstream::ColorChoice::Never.write_global(),
    }
    let result = match &cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Purge(a) => purge::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Stats(a) => stats::run(a),
    };
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(EXIT_PROBLEMS),
        Err(Failure(message)) if message.is_empty() => ExitCode::from(EXIT_FAILED),
        Err(Failure(message)) => {
            let message = message.replace('\n', " ");
            let _ = output::error_line(&message);
            ExitCode::from(EXIT_FAILED)
        }
    }
}
