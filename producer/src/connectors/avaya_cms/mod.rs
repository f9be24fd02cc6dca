//! The Avaya CMS connector (`[connectors.avaya_cms]`): three sources, each on and off by its key,
//! each reporting its own connection state.
//!
//! - [`rt`] (`rt_listen`): CMS's real-time socket into agent states.
//! - [`ech`] (`ech_dir`): External Call History files into contacts; acd-bridge computes the
//!   intervals from them (WCE). Record layouts per CMS version are tables in [`layout`].
//! - [`hist`] (`hist_dir`): hsplit/hagent CSV exports into interval rows, behind the
//!   [`hist::IntervalSource`] seam.
//!
//! Files ([`dropdir`]) move to `processed/` only after Kafka acknowledged every record read
//! from them, so a stop or a SIGKILL at any instant loses nothing; a file read twice is
//! removed downstream by the consumer's deduplication.

pub mod dropdir;
pub mod ech;
pub mod hist;
pub mod layout;
pub mod rt;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_core::config::{AvayaCmsConfig, Config};
use acd_interval::agent_map::AgentMap;
use acd_schemas::ingest::Parsed;
use acd_schemas::records::{ConnectionState, Contact};
use acd_schemas::time::now_millis;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::publish_until_acked;
use crate::publisher::Publisher;
use crate::status::Statuses;
use dropdir::{DropDir, FileStatus};

/// Records published per Kafka batch while a file is read.
pub const BATCH: usize = 8192;

/// How often the drop directories are listed.
const POLL: Duration = Duration::from_millis(250);

/// What the historical mapping needs beside the connector's own section.
#[derive(Clone)]
pub struct Shared {
    pub minutes: u32,
    pub formula: acd_interval::sla::Formula,
    pub agents: Arc<AgentMap>,
}

/// Starts the enabled sources.
pub fn spawn(
    cfg: &Config,
    publisher: Arc<Publisher>,
    statuses: Statuses,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let Some(cms) = cfg.connectors.avaya_cms.clone().filter(|c| c.enabled) else {
        return Vec::new();
    };
    let agents = if cfg.agents.map_file.is_empty() {
        AgentMap::default()
    } else {
        match std::fs::read_to_string(&cfg.agents.map_file).map_err(|e| e.to_string()).and_then(|t| AgentMap::parse(&t))
        {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(file = %cfg.agents.map_file, error = %e, "agents.map_file unreadable; CMS agent rows keep their logid");
                AgentMap::default()
            }
        }
    };
    let shared = Shared { minutes: cfg.interval.minutes, formula: cfg.sla.formula, agents: Arc::new(agents) };
    let mut out = Vec::new();
    if !cms.rt_listen.is_empty() {
        out.push(tokio::spawn(rt::serve(cms.clone(), publisher.clone(), statuses.clone(), shutdown.clone())));
    }
    if !cms.ech_dir.is_empty() {
        out.push(tokio::spawn(ech_loop(
            cms.clone(),
            shared.clone(),
            publisher.clone(),
            statuses.clone(),
            shutdown.clone(),
        )));
    }
    if !cms.hist_dir.is_empty() {
        out.push(tokio::spawn(hist_loop(cms, shared, publisher, statuses, shutdown)));
    }
    out
}

/// What became of one file.
#[derive(Debug)]
enum FileRead {
    Done { records: u64, published: u64, skipped: u64 },
    Refused(String),
    Stopped,
}

fn name_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
}

/// Waits a poll period; false on shutdown.
async fn pause(shutdown: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// Opens a drop directory, retrying (and saying so) until it can.
async fn open_dir(
    dir: &str,
    settle: Duration,
    accept: fn(&str) -> bool,
    statuses: &Statuses,
    acd: &str,
    connector: &str,
    shutdown: &CancellationToken,
) -> Option<DropDir> {
    loop {
        match DropDir::open(Path::new(dir), settle, accept) {
            Ok(d) => return Some(d),
            Err(e) => {
                tracing::error!(dir, error = %e, connector, "CMS drop directory unusable; retrying in 5 s");
                statuses.set(acd, connector, ConnectionState::Disconnected, &format!("{dir}: {e}"));
                if !pause(shutdown, Duration::from_secs(5)).await {
                    return None;
                }
            }
        }
    }
}

/// Reads `ech_dir` until shutdown.
async fn ech_loop(
    cfg: AvayaCmsConfig,
    shared: Shared,
    publisher: Arc<Publisher>,
    statuses: Statuses,
    shutdown: CancellationToken,
) {
    let acd = cfg.acd_id.clone();
    let settle = Duration::from_millis(cfg.ech_settle_ms);
    let Some(mut dir) =
        open_dir(&cfg.ech_dir, settle, ech::is_ech_file, &statuses, &acd, ech::CONNECTOR, &shutdown).await
    else {
        return;
    };
    let skipped_total = super::skipped_counter(&publisher, ech::CONNECTOR);
    let length = Duration::from_secs(shared.minutes as u64 * 60);
    let mut status = FileStatus::default();
    let mut last_sequence: Option<u32> = None;
    tracing::info!(dir = %cfg.ech_dir, "CMS External Call History: watching");
    loop {
        let (state, detail) = status.state(length);
        statuses.set(&acd, ech::CONNECTOR, state, &detail);
        let ready = match dir.settled() {
            Ok(r) => r,
            Err(e) => {
                statuses.set(&acd, ech::CONNECTOR, ConnectionState::Disconnected, &format!("{}: {e}", cfg.ech_dir));
                Vec::new()
            }
        };
        for path in ready {
            let started = Instant::now();
            let name = name_of(&path);
            match read_ech(&path, &cfg, publisher.clone(), &shutdown, &mut last_sequence).await {
                Ok(FileRead::Done { records, published, skipped }) => {
                    skipped_total.fetch_add(skipped, Ordering::Relaxed);
                    match dir.processed(&path) {
                        Ok(_) => {
                            tracing::info!(file = %name, records, contacts = published, skipped, seconds = started.elapsed().as_secs_f64(), "CMS ECH file done")
                        }
                        Err(e) => {
                            tracing::error!(file = %name, error = %e, "CMS ECH file published but not moved to processed/; it will be read again")
                        }
                    }
                    status.good();
                    statuses.saw_data(&acd, ech::CONNECTOR, now_millis());
                }
                Ok(FileRead::Refused(reason)) => {
                    tracing::warn!(file = %name, reason = %reason, "CMS ECH file rejected; nothing of it was published");
                    if let Err(e) = dir.reject(&path, &reason) {
                        tracing::error!(file = %name, error = %e, "CMS ECH file could not be moved to rejected/");
                    }
                    status.rejected(format!("{name} rejected: {reason}"));
                }
                Ok(FileRead::Stopped) => return,
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "CMS ECH file unreadable; trying again");
                }
            }
            let (state, detail) = status.state(length);
            statuses.set(&acd, ech::CONNECTOR, state, &detail);
        }
        if !pause(&shutdown, POLL).await {
            return;
        }
    }
}

/// Batches in flight at once while a file is read: Kafka acknowledges one while the next is read.
const IN_FLIGHT: usize = 4;

/// Reads one ECH file and publishes its contacts in batches; done only once Kafka acknowledged
/// every batch.
async fn read_ech(
    path: &Path,
    cfg: &AvayaCmsConfig,
    publisher: Arc<Publisher>,
    shutdown: &CancellationToken,
    last_sequence: &mut Option<u32>,
) -> std::io::Result<FileRead> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut head = [0u8; ech::HEADER];
    let got = read_full(&mut file, &mut head)?;
    let (layout, sequence) = match ech::check_file(&head[..got], len) {
        Ok(x) => x,
        Err(reason) => return Ok(FileRead::Refused(reason)),
    };
    let reader = match ech::Reader::new(layout) {
        Ok(r) => r,
        Err(reason) => return Ok(FileRead::Refused(reason)),
    };
    if let Some(last) = *last_sequence {
        if sequence != last.wrapping_add(1) && sequence != last {
            tracing::warn!(file = %name_of(path), sequence, previous = last, "CMS ECH files out of sequence: a file may be missing or late");
        }
    }
    *last_sequence = Some(sequence);
    let total = (len - ech::HEADER as u64) / layout.record_len as u64;
    let mut buf = vec![0u8; BATCH * layout.record_len];
    let (mut records, mut published, mut skipped) = (0u64, 0u64, 0u64);
    let mut progress = Instant::now();
    let mut in_flight: std::collections::VecDeque<JoinHandle<bool>> = std::collections::VecDeque::new();
    while records < total {
        let n = ((total - records) as usize).min(BATCH);
        let chunk = &mut buf[..n * layout.record_len];
        if read_full(&mut file, chunk)? != chunk.len() {
            return Err(std::io::Error::other("the file shrank while it was read"));
        }
        let received = now_millis();
        let mut contacts: Vec<Contact> = Vec::with_capacity(n);
        for (i, rec) in chunk.chunks_exact(layout.record_len).enumerate() {
            let index = records + i as u64;
            let seg = match reader.segment(rec) {
                Ok(s) => s,
                Err(reason) => {
                    skipped += 1;
                    tracing::warn!(file = %name_of(path), record = index, reason = %reason, "CMS ECH record skipped");
                    continue;
                }
            };
            let Some(c) = ech::contact(&seg, &cfg.acd_id, &cfg.queue_names, received) else {
                continue;
            };
            match acd_schemas::check::contact(&c) {
                Ok(()) => contacts.push(c),
                Err(e) => {
                    skipped += 1;
                    tracing::warn!(file = %name_of(path), record = index, reason = %e, "CMS ECH record skipped");
                }
            }
        }
        records += n as u64;
        published += contacts.len() as u64;
        if !contacts.is_empty() {
            let (p, stop) = (publisher.clone(), shutdown.clone());
            in_flight.push_back(tokio::spawn(async move {
                publish_until_acked(&p, &Parsed::Contacts(contacts), &stop).await
            }));
        }
        while in_flight.len() >= IN_FLIGHT {
            if !in_flight.pop_front().expect("in flight").await.unwrap_or(false) {
                return Ok(FileRead::Stopped);
            }
        }
        if progress.elapsed() > Duration::from_secs(10) {
            tracing::info!(file = %name_of(path), records, of = total, "CMS ECH file: reading");
            progress = Instant::now();
        }
    }
    for batch in in_flight {
        if !batch.await.unwrap_or(false) {
            return Ok(FileRead::Stopped);
        }
    }
    Ok(FileRead::Done { records, published, skipped })
}

fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut at = 0;
    while at < buf.len() {
        match file.read(&mut buf[at..])? {
            0 => break,
            n => at += n,
        }
    }
    Ok(at)
}

/// Export files in a drop directory as an [`hist::IntervalSource`].
pub struct HistFiles {
    dir: DropDir,
    pending: Vec<PathBuf>,
    cfg: AvayaCmsConfig,
    shared: Shared,
    zone: chrono_tz::Tz,
}

/// Export files larger than this are refused (a day of hagent for 5,000 agents is ~50 MB).
pub const MAX_EXPORT: u64 = 512 * 1024 * 1024;

impl hist::IntervalSource for HistFiles {
    fn next(&mut self) -> std::io::Result<Option<hist::Batch>> {
        if self.pending.is_empty() {
            self.pending = self.dir.settled()?;
            self.pending.reverse();
        }
        let Some(path) = self.pending.pop() else { return Ok(None) };
        let name = name_of(&path);
        let table = hist::table_of(&name).expect("only export files are listed");
        let len = std::fs::metadata(&path)?.len();
        if len > MAX_EXPORT {
            return Ok(Some((name, Err(format!("{len} bytes: larger than the {MAX_EXPORT}-byte limit")))));
        }
        let bytes = std::fs::read(&path)?;
        let Ok(text) = String::from_utf8(bytes) else {
            return Ok(Some((name, Err("not UTF-8 text".into()))));
        };
        let ctx = hist::Context {
            zone: self.zone,
            queue_names: &self.cfg.queue_names,
            agents: &self.shared.agents,
            formula: self.shared.formula,
            agent_performance: self.cfg.hist_agent_performance,
            minutes: self.shared.minutes,
        };
        Ok(Some((name, hist::read(table, &text, &ctx))))
    }

    fn done(&mut self, name: &str) -> std::io::Result<()> {
        let path = self.dir.path().join(name);
        self.dir.processed(&path).map(|_| ())
    }

    fn refused(&mut self, name: &str, reason: &str) -> std::io::Result<()> {
        let path = self.dir.path().join(name);
        self.dir.reject(&path, reason).map(|_| ())
    }
}

/// Reads `hist_dir` until shutdown.
async fn hist_loop(
    cfg: AvayaCmsConfig,
    shared: Shared,
    publisher: Arc<Publisher>,
    statuses: Statuses,
    shutdown: CancellationToken,
) {
    let acd = cfg.acd_id.clone();
    let settle = Duration::from_millis(cfg.ech_settle_ms);
    let accept: fn(&str) -> bool = |n| hist::table_of(n).is_some();
    let Some(dir) = open_dir(&cfg.hist_dir, settle, accept, &statuses, &acd, hist::CONNECTOR, &shutdown).await else {
        return;
    };
    let zone = cfg.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let minutes = shared.minutes;
    let mut source = HistFiles { dir, pending: Vec::new(), cfg: cfg.clone(), shared, zone };
    run_intervals(&mut source, &acd, minutes, &publisher, &statuses, &shutdown).await;
}

/// Publishes what an [`hist::IntervalSource`] gives until shutdown.
pub async fn run_intervals<S: hist::IntervalSource>(
    source: &mut S,
    acd: &str,
    minutes: u32,
    publisher: &Publisher,
    statuses: &Statuses,
    shutdown: &CancellationToken,
) {
    let skipped_total = super::skipped_counter(publisher, hist::CONNECTOR);
    let length = Duration::from_secs(minutes as u64 * 60);
    let mut status = FileStatus::default();
    tracing::info!("CMS historical exports: watching");
    loop {
        let (state, detail) = status.state(length);
        statuses.set(acd, hist::CONNECTOR, state, &detail);
        let next = match source.next() {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "CMS historical source unreadable; trying again");
                statuses.set(acd, hist::CONNECTOR, ConnectionState::Degraded, &e.to_string());
                None
            }
        };
        let Some((name, rows)) = next else {
            if !pause(shutdown, POLL).await {
                return;
            }
            continue;
        };
        let mut rows = match rows {
            Ok(rows) => rows,
            Err(reason) => {
                tracing::warn!(file = %name, reason = %reason, "CMS historical export rejected; nothing of it was published");
                if let Err(e) = source.refused(&name, &reason) {
                    tracing::error!(file = %name, error = %e, "CMS historical export could not be moved to rejected/");
                }
                status.rejected(format!("{name} rejected: {reason}"));
                continue;
            }
        };
        rows.retain(|r| match acd_schemas::check::interval_row(r, minutes) {
            Ok(()) => true,
            Err(e) => {
                skipped_total.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(file = %name, reason = %e, "CMS historical row skipped");
                false
            }
        });
        let count = rows.len();
        for chunk in rows.chunks(BATCH) {
            if !publish_until_acked(publisher, &Parsed::IntervalRows(chunk.to_vec()), shutdown).await {
                return;
            }
        }
        match source.done(&name) {
            Ok(()) => tracing::info!(file = %name, rows = count, "CMS historical export done"),
            Err(e) => {
                tracing::error!(file = %name, error = %e, "CMS historical export published but not moved to processed/; it will be read again")
            }
        }
        status.good();
        statuses.saw_data(acd, hist::CONNECTOR, now_millis());
    }
}
