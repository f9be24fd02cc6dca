//! `acd-bridge`: one binary for every role. This file only parses the command line, loads the
//! configuration and hands over; exit status 0 on success, 2 on bad usage or configuration,
//! 1 on a runtime failure.

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;

use acd_core::Config;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "acd-bridge",
    version,
    about = "Carries contact-center data from ACDs through Kafka into a WFM, exactly as counted"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything in one process: embedded Kafka, WFM emulator, simulated ACD; ends with a check.
    Demo(demo::DemoArgs),
    /// Runs the ACD connectors and the push-ingest HTTP API, publishing to Kafka.
    Produce {
        #[arg(long)]
        config: PathBuf,
    },
    /// Runs the WFM delivery service (a Kafka consumer group).
    Consume {
        #[arg(long)]
        config: PathBuf,
    },
    /// Serves the WFM API emulator.
    WfmSim(acd_wfm_sim::SimArgs),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ACD_BRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librdkafka=warn,rdkafka=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(Some(path)).map_err(|e| {
        eprintln!("acd-bridge: {e}");
        ExitCode::from(2)
    })
}

fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("acd-bridge: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if !matches!(cli.command, Command::Demo(_)) {
        init_logging();
    }
    match cli.command {
        Command::Demo(args) => demo::run(args).await,
        Command::Produce { config } => {
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let shutdown = acd_core::shutdown::on_signal();
            finish(acd_producer::run(cfg, shutdown).await.map_err(Into::into))
        }
        Command::Consume { config } => {
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let shutdown = acd_core::shutdown::on_signal();
            match acd_consumer::run(cfg, shutdown).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(acd_consumer::ConsumerError::Refused(msg)) => {
                    eprintln!("acd-bridge: {msg}");
                    ExitCode::from(2)
                }
                Err(e) => finish(Err(e.into())),
            }
        }
        Command::WfmSim(args) => {
            let shutdown = acd_core::shutdown::on_signal();
            finish(acd_wfm_sim::serve(args, shutdown).await.map_err(Into::into))
        }
    }
}
