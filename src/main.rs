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
    WfmSim(acd_emulators::wfm::SimArgs),
    /// Serves a LiveVox API emulator (session and agent event feed), for the LiveVox connector.
    LivevoxSim(acd_emulators::livevox::LiveVoxArgs),
    /// An Avaya CMS: plays a contact-center period into the real-time socket, call history files
    /// and historical exports, and writes the figures the WFM should then hold.
    CmsSim(acd_emulators::cms::CmsArgs),
    /// Consumer lag per partition, dead letters by reason, the consumer's WFM state.
    Status {
        #[arg(long)]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Inspects the dead-letter topic.
    Dlq(DlqArgs),
    /// Recomputes and re-sends the intervals that start in [--from, --to); the group is left alone.
    Replay {
        #[arg(long)]
        config: PathBuf,
        /// RFC 3339, inclusive.
        #[arg(long)]
        from: String,
        /// RFC 3339, exclusive.
        #[arg(long)]
        to: String,
        /// Any of intraday, agent-activity, agent-states.
        #[arg(long, value_delimiter = ',', default_value = "intraday,agent-activity")]
        streams: Vec<String>,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(clap::Args)]
struct DlqArgs {
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    action: DlqAction,
}

#[derive(Subcommand)]
enum DlqAction {
    /// One line per dead letter: offset, time, kind, reason, status, interval, re-driven, error.
    List {
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        /// Only records written at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Headers and pretty JSON of one dead letter.
    Show {
        /// The offset (or PARTITION:OFFSET).
        offset: String,
    },
    /// Re-sends dead-lettered reports to the WFM in offset order, recording each outcome.
    Redrive {
        #[arg(long)]
        reason: Option<String>,
        /// Only these offsets (comma-separated).
        #[arg(long, value_delimiter = ',')]
        offsets: Option<Vec<i64>>,
        /// Show what would be sent, send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also re-send records already re-driven successfully.
        #[arg(long)]
        force: bool,
    },
    /// Every dead letter as JSON lines.
    Export {
        /// JSON lines (the only format; accepted for symmetry with `list`).
        #[arg(long)]
        json: bool,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ACD_BRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librdkafka=warn,rdkafka=warn"));
    // Colours only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(Some(path)).map_err(|e| {
        eprintln!("acd-bridge: {e}");
        ExitCode::from(2)
    })
}

fn usage(message: &str) -> ExitCode {
    eprintln!("acd-bridge: {message}");
    ExitCode::from(2)
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

async fn dlq(cfg: Config, action: DlqAction) -> ExitCode {
    use acd_consumer::tools::dlq as ops;
    if let DlqAction::Redrive { reason, offsets, dry_run, force } = action {
        let opts = ops::RedriveOptions { reason, offsets, dry_run, force };
        return match ops::redrive(&cfg, &opts, |line| println!("redrive {line}")).await {
            Ok(s) => {
                println!(
                    "redrive: {} considered, {} delivered, {} rejected, {} failed, {} skipped as already re-driven, {} skipped as input records{}",
                    s.considered, s.delivered, s.rejected, s.failed, s.skipped_already_delivered, s.skipped_not_reports,
                    if dry_run { " (dry run: nothing sent)" } else { "" }
                );
                if s.failed > 0 || s.rejected > 0 {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(e) => finish(Err(e.into())),
        };
    }
    let result = tokio::task::spawn_blocking(move || -> Result<(), acd_consumer::tools::OpsError> {
        match action {
            DlqAction::List { reason, kind, since, json } => {
                let since_ms = match since.as_deref().map(acd_schemas::time::parse_rfc3339) {
                    Some(Err(e)) => return Err(acd_consumer::tools::OpsError::Usage(format!("--since: {e}"))),
                    Some(Ok(t)) => Some(t),
                    None => None,
                };
                let letters = ops::list(&cfg, &ops::ListFilter { reason, kind, since_ms })?;
                if json {
                    for l in &letters {
                        println!("{}", serde_json::to_string(l).unwrap_or_default());
                    }
                } else {
                    println!("{}", ops::list_header());
                    for l in &letters {
                        println!("{}", ops::list_line(l));
                    }
                    println!("{} dead letter(s) in {}", letters.len(), cfg.topics.dlq);
                }
            }
            DlqAction::Show { offset } => print!("{}", ops::show(&cfg, &offset)?),
            DlqAction::Redrive { .. } => unreachable!("handled above"),
            DlqAction::Export { .. } => {
                for line in ops::export(&cfg)? {
                    println!("{line}");
                }
            }
        }
        Ok(())
    })
    .await
    .expect("dlq task");
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(acd_consumer::tools::OpsError::Usage(m)) => {
            eprintln!("acd-bridge: {m}");
            ExitCode::from(2)
        }
        Err(e) => finish(Err(e.into())),
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
            match acd_producer::run(cfg, shutdown).await {
                // A certificate or key that cannot be used is a configuration error.
                Err(e @ acd_producer::ProducerError::Tls(_)) => {
                    eprintln!("acd-bridge: {e}");
                    ExitCode::from(2)
                }
                other => finish(other.map_err(Into::into)),
            }
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
        Command::Status { config, json } => {
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let out = tokio::task::spawn_blocking(move || acd_consumer::status::report::status(&cfg)).await;
            match out.expect("status task") {
                Ok(v) if json => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
                Ok(v) => print!("{}", acd_consumer::status::report::status_text(&v)),
                Err(e) => return finish(Err(e.into())),
            }
            ExitCode::SUCCESS
        }
        Command::Dlq(args) => {
            let Some(config) = args.config else {
                eprintln!("acd-bridge: dlq: --config is required");
                return ExitCode::from(2);
            };
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            dlq(cfg, args.action).await
        }
        Command::Replay { config, from, to, streams, dry_run } => {
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let (from, to) = match (acd_schemas::time::parse_rfc3339(&from), acd_schemas::time::parse_rfc3339(&to)) {
                (Ok(f), Ok(t)) if f < t => (f, t),
                (Err(e), _) => return usage(&format!("--from: {e}")),
                (_, Err(e)) => return usage(&format!("--to: {e}")),
                _ => return usage("--from must be before --to"),
            };
            if let Some(bad) =
                streams.iter().find(|s| !["intraday", "agent-activity", "agent-states"].contains(&s.as_str()))
            {
                return usage(&format!("--streams: unknown stream {bad:?} (intraday, agent-activity, agent-states)"));
            }
            let opts = acd_consumer::tools::replay::ReplayOptions { from, to, streams, dry_run };
            match acd_consumer::tools::replay::replay(&cfg, &opts, |line| println!("replay: {line}")).await {
                Ok(s) => {
                    println!(
                        "replay: {} records read, {} intervals, {} requests sent, {} refused, {} agent states sent{}",
                        s.records_read,
                        s.intervals,
                        s.requests_sent,
                        s.requests_refused,
                        s.agent_states_sent,
                        if dry_run { " (dry run: nothing sent)" } else { "" }
                    );
                    if s.requests_refused > 0 {
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                Err(e) => finish(Err(e.into())),
            }
        }
        Command::WfmSim(args) => {
            let shutdown = acd_core::shutdown::on_signal();
            finish(acd_emulators::wfm::serve(args, shutdown).await.map_err(Into::into))
        }
        Command::LivevoxSim(args) => {
            let shutdown = acd_core::shutdown::on_signal();
            finish(acd_emulators::livevox::serve(args, shutdown).await.map_err(Into::into))
        }
        Command::CmsSim(args) => match acd_emulators::cms::run(args).await {
            Ok(t) => {
                println!(
                    "cms-sim: {} snapshots, {} agent states, {} call segments in {} files ({} not ACD contacts), {} export files, {} queue rows expected",
                    t.snapshots,
                    t.agent_states.len(),
                    t.segments,
                    t.ech_files.len(),
                    t.segments_skipped,
                    t.hist_files.len(),
                    t.queue_rows.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => finish(Err(e)),
        },
    }
}
