//! The load harness: acd-bridge beside librdkafka's raw speed (`kcat`) on the same machine, broker
//! and records. Not a test: it measures and prints, it asserts nothing.
//!
//!   cargo bench --bench pipeline -- ingest    push-ingest: batches of 500 agent states, then of 500
//!                                             contacts, vs kcat -P of the same records
//!   cargo bench --bench pipeline -- consume   consumer on 1,000,000 pre-filled states vs kcat -C
//!   cargo bench --bench pipeline -- latency   ingest 202 to WFM receipt at 2,000 and 20,000/s
//!   cargo bench --bench pipeline -- contacts  interval pipeline on 1,000,000 contacts vs kcat -C
//!   cargo bench --bench pipeline -- livevox   LiveVox feed answers of 1,000 events to Kafka
//!   cargo bench --bench pipeline -- cms       CMS: 10,000-agent snapshots (CPU), call history
//!                                             parsing, and a 1,000,000-segment file to Kafka vs kcat -P
//!   cargo bench --bench pipeline -- scale     one and two `consume` instances in one group on a
//!                                             12-partition topic of 4,000,000 states (`BENCH_SCALE_STATES`)
//!   cargo bench --bench pipeline -- soak      10 minutes of 20,000 agent states/s and 50 contacts/s
//!                                             through produce and consume into wfm-sim: RSS and lag
//!                                             every 10 s (`BENCH_SOAK_SECONDS`, `BENCH_SOAK_RATE`)
//!
//! Uses `KAFKA_BOOTSTRAP`, or starts `scripts/kafka` on port 19092. Sizes scale with
//! `BENCH_STATES` (consume) and `BENCH_INGEST_STATES` (ingest).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_schemas::records::AgentState;
use acd_schemas::{Codec, Stream};
use common::*;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::{json, Value};

fn ensure_broker() {
    if std::env::var("KAFKA_BOOTSTRAP").is_err() {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka");
        let out = Command::new(script).args(["start", "--port", "19092"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::env::set_var("KAFKA_BOOTSTRAP", String::from_utf8_lossy(&out.stdout).trim());
    }
}

/// `n` states of `agents` agents, each agent changing state every `every` milliseconds.
fn states(n: usize, agents: usize, base: i64, every: i64) -> Vec<AgentState> {
    let codes = ["AVAIL", "ACD", "ACW", "AUX"];
    (0..n)
        .map(|i| AgentState {
            acd_id: "bench".into(),
            login_id: format!("agent{:05}", i % agents),
            event_code: codes[i % 4].into(),
            reason_code: String::new(),
            event_utc_time: base + (i / agents) as i64 * every + (i % agents) as i64 * 37 % every.max(1),
            received_utc: Some(base),
        })
        .collect()
}

fn as_json(s: &AgentState) -> Value {
    json!({"loginId": s.login_id, "acdId": s.acd_id, "eventCode": s.event_code, "reasonCode": s.reason_code,
           "eventUtcTime": acd_schemas::time::format_millis(s.event_utc_time)})
}

/// A `kcat -P` input file of ready (key, Avro value) records; removed when dropped.
struct KcatInput {
    path: std::path::PathBuf,
    records: usize,
}

impl KcatInput {
    /// The input of `records` and one of its first 1,000.
    fn states(records: &[AgentState]) -> (KcatInput, KcatInput) {
        let codec = Codec::default();
        let encoded: Vec<(String, Vec<u8>)> =
            records.iter().map(|s| (s.key(), codec.encode(Stream::AgentState, s).unwrap())).collect();
        (KcatInput::encoded(&encoded), KcatInput::head(&encoded, 1000))
    }

    /// The first `n` records of this input, for timing kcat's fixed start-up and end cost.
    fn head(records: &[(String, Vec<u8>)], n: usize) -> KcatInput {
        KcatInput::encoded(&records[..n.min(records.len())])
    }

    fn encoded(records: &[(String, Vec<u8>)]) -> KcatInput {
        let path = std::env::temp_dir().join(unique("kcat-in"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let (kd, md) = (KCAT_KEY_DELIMITER, KCAT_RECORD_DELIMITER);
        let mut n = 0;
        for (k, v) in records {
            if v.windows(md.len()).any(|w| w == md.as_bytes()) {
                continue;
            }
            f.write_all(k.as_bytes()).unwrap();
            f.write_all(kd.as_bytes()).unwrap();
            f.write_all(v).unwrap();
            f.write_all(md.as_bytes()).unwrap();
            n += 1;
        }
        f.flush().unwrap();
        KcatInput { path, records: n }
    }

    /// One `kcat -P` run, idempotent with `acks=all` as `produce` runs: seconds from its start
    /// to its exit.
    fn seconds(&self, brokers: &str, topic: &str) -> f64 {
        let t = Instant::now();
        let st = Command::new("kcat")
            .args(["-P", "-b", brokers, "-t", topic, "-K", KCAT_KEY_DELIMITER, "-D", KCAT_RECORD_DELIMITER])
            .args(["-X", "enable.idempotence=true", "-X", "acks=all", "-X", "linger.ms=5"])
            .args(["-X", "compression.codec=lz4", "-l", self.path.to_str().unwrap()])
            .status()
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert!(st.success());
        secs
    }
}

impl Drop for KcatInput {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

const KCAT_KEY_DELIMITER: &str = "|~K~|";
const KCAT_RECORD_DELIMITER: &str = "|~RS~|";

/// `runs` push-ingest runs of `bodies` to `url`, each beside a `kcat -P` run of the same records
/// (`input`) on the same warm broker, after one warm-up of each; prints medians and spreads.
/// kcat's fixed cost (start, connection, producer id, final flush) is timed on the first 1,000
/// records (`head`) and taken off its figure for its steady rate, the fair baseline for a
/// long-running server that pays its start-up once.
fn ingest_runs(
    what: &str,
    setup: &Setup,
    url: &str,
    bodies: Arc<Vec<String>>,
    (input, head): (&KcatInput, &KcatInput),
    per_body: usize,
) {
    let runs = env_usize("BENCH_RUNS", 5).max(5);
    let kcat_topic = setup.topic(&format!("kcat-produce-{}", what.replace(' ', "-")));
    create_topic(&setup.brokers, &kcat_topic, 3);
    input.seconds(&setup.brokers, &kcat_topic);
    let (mut ours, mut kcat, mut ratio, mut fixed, mut steady, mut steady_ratio) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let secs = input.seconds(&setup.brokers, &kcat_topic);
        let f = head.seconds(&setup.brokers, &kcat_topic);
        let k = input.records as f64 / secs;
        let ks = (input.records - head.records) as f64 / (secs - f).max(1e-3);
        let o = (bodies.len() - 1) as f64 * per_body as f64 / post_all(url, bodies.clone());
        eprintln!("  run {run}: {o:.0} {what}/s, kcat -P {k:.0}/s (fixed cost {f:.2} s, steady {ks:.0}/s)");
        ours.push(o);
        kcat.push(k);
        ratio.push(o / k);
        fixed.push(f);
        steady.push(ks);
        steady_ratio.push(o / ks);
    }
    println!(
        "ingest {what}: {} records in HTTP batches of {per_body}, 8 clients, acks=all, idempotent; {runs} runs each beside kcat -P runs:",
        input.records
    );
    print_figures(&[
        ("accepted:", &ours, "/s", 0.25),
        ("kcat -P, whole run:", &kcat, "/s", 0.25),
        ("ratio (each run to its kcat):", &ratio, "", 0.25),
        ("kcat -P fixed cost (a run of 1,000 records):", &fixed, " s", 1.0),
        ("kcat -P steady (fixed cost taken off):", &steady, "/s", 0.25),
        ("ratio to kcat's steady rate:", &steady_ratio, "", 0.25),
    ]);
}

/// One line per figure: its label, the runs' values, the unit and the spread that still allows
/// a conclusion (see [`describe`]).
fn print_figures(figures: &[(&str, &[f64], &str, f64)]) {
    for (label, values, unit, tolerance) in figures {
        println!("  {}", describe(label, values, unit, *tolerance));
    }
}

/// Posts every body but the first (the warm-up) from 8 clients; returns the seconds taken.
fn post_all(url: &str, bodies: Arc<Vec<String>>) -> f64 {
    http().post(url).header("Content-Type", "application/json").body(bodies[0].clone()).send().unwrap();
    let next = Arc::new(AtomicUsize::new(1));
    let t = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (bodies, next, url) = (bodies.clone(), next.clone(), url.to_string());
            std::thread::spawn(move || {
                let c = http();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= bodies.len() {
                        return;
                    }
                    let r =
                        c.post(&url).header("Content-Type", "application/json").body(bodies[i].clone()).send().unwrap();
                    assert_eq!(r.status().as_u16(), 202, "{}", r.text().unwrap_or_default());
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    t.elapsed().as_secs_f64()
}

fn contact_json(c: &acd_schemas::records::Contact) -> Value {
    use acd_schemas::time::format_millis;
    json!({"acdId": c.acd_id, "contactId": c.contact_id, "queueValue": c.queue_value, "queueName": c.queue_name,
        "isOutbound": c.is_outbound, "outcome": c.outcome, "arrivedUtc": format_millis(c.arrived_utc),
        "endedUtc": format_millis(c.ended_utc), "queueDelaySec": c.queue_delay_sec, "talkSec": c.talk_sec,
        "holdSec": c.hold_sec, "workSec": c.work_sec, "agentValue": c.agent_value, "agentId": c.agent_id, "party": c.party})
}

/// Push-ingest of contacts beside `kcat -P` of the same Avro records, and the two parse paths
/// (borrowing fast path, `Value` tree) on the same bodies in this process.
fn bench_ingest_contacts() {
    let n = env_usize("BENCH_INGEST_CONTACTS", 1_000_000);
    let (setup, _p) = with_produce("bench-ingest-contacts");
    let records = contacts(n, 1_714_000_000_000);
    let bodies: Arc<Vec<String>> = Arc::new(
        records
            .chunks(500)
            .map(|c| json!({"contacts": c.iter().map(contact_json).collect::<Vec<_>>()}).to_string())
            .collect(),
    );
    let parse = |f: &dyn Fn(&[u8]) -> usize| {
        let t = Instant::now();
        let got: usize = bodies.iter().map(|b| f(b.as_bytes())).sum();
        assert_eq!(got, n);
        n as f64 / t.elapsed().as_secs_f64()
    };
    let fast = parse(&|b| acd_schemas::ingest::contacts_fast(b, 7).unwrap().len());
    let tree = parse(&|b| acd_schemas::ingest::contacts_tree(b, 7).unwrap().len());
    let codec = Codec::default();
    let encoded: Vec<(String, Vec<u8>)> =
        records.iter().map(|c| (c.key(), codec.encode(Stream::Contact, c).unwrap())).collect();
    let input = (KcatInput::encoded(&encoded), KcatInput::head(&encoded, 1000));
    drop(encoded);
    println!("ingest contacts: parsing alone: fast path {fast:.0}/s, tree {tree:.0}/s");
    ingest_runs("contacts", &setup, &setup.ingest("/v1/contacts"), bodies, (&input.0, &input.1), 500);
}

fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(
        admin.create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &AdminOptions::new()),
    )
    .unwrap();
    // Until the broker's metadata has it: a client that asks sooner is told it is unknown.
    let consumer: rdkafka::consumer::BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    poll("the new topic in the metadata", Duration::from_secs(30), || {
        let md = rdkafka::consumer::Consumer::fetch_metadata(&consumer, Some(topic), Duration::from_secs(5)).ok()?;
        md.topics().iter().any(|t| t.error().is_none() && t.partitions().len() == partitions as usize).then_some(())
    });
}

/// librdkafka's raw speed: the best of `runs` kcat runs reading `topic` to /dev/null. Callers
/// run it before acd-bridge and again after it has stopped, and keep the best: right after a
/// pre-fill the broker is sometimes slow for a while, and a slow kcat would flatter the ratio.
fn kcat_consume(brokers: &str, topic: &str, n: usize, runs: usize) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            let st = Command::new("kcat")
                .args(["-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e", "-q"])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success());
            n as f64 / t.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn bench_ingest() {
    // A million: on fewer, kcat's own start-up weighs on its figure and flatters the ratio.
    let n = env_usize("BENCH_INGEST_STATES", 1_000_000);
    let (setup, _p) = with_produce("bench-ingest");
    // An agent changes state every minute or so.
    let records = states(n, 1000, 1_714_000_000_000, 60_000);
    let bodies: Arc<Vec<String>> = Arc::new(
        records
            .chunks(500)
            .map(|c| json!({"agentStateList": c.iter().map(as_json).collect::<Vec<_>>()}).to_string())
            .collect(),
    );
    let input = KcatInput::states(&records);
    drop(records);
    ingest_runs("agent states", &setup, &setup.ingest("/v1/agent-states"), bodies, (&input.0, &input.1), 500);
}

/// `BENCH_CONSUME_PROPERTIES='"queued.min.messages" = "5000"'`, say: librdkafka properties for
/// the `consume` runs, to compare settings.
fn with_properties(config: String) -> String {
    match std::env::var("BENCH_CONSUME_PROPERTIES") {
        Ok(p) => config.replacen("[kafka]\n", &format!("[kafka]\nproperties = {{ {p} }}\n"), 1),
        Err(_) => config,
    }
}

/// A fast producer for pre-filling topics.
fn fill_producer(brokers: &str) -> ThreadedProducer<DefaultProducerContext> {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap()
}

fn prefill(brokers: &str, topic: &str, n: usize) {
    let producer = fill_producer(brokers);
    let codec = Codec::default();
    let mut i = 0;
    for s in states(n, 1000, 1_714_000_000_000, 60_000) {
        let v = codec.encode(Stream::AgentState, &s).unwrap();
        let key = s.key();
        loop {
            match producer.send(BaseRecord::to(topic).key(&key).payload(&v)) {
                Ok(()) => break,
                Err(_) => producer.poll(Duration::from_millis(10)),
            }
        }
        i += 1;
        if i % 100_000 == 0 {
            eprint!("\r  pre-filling {topic}: {i}/{n}");
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    eprintln!();
}

/// A setup with `produce` running and its ingest API answering.
fn with_produce(name: &str) -> (Setup, Proc) {
    let setup = Setup::new(name);
    let cfg = setup.config("");
    let p = Proc::start("produce", &["produce", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
    wait_ok(&setup.ingest("/healthz"), Duration::from_secs(60));
    (setup, p)
}

/// A number from the environment, or `default`.
fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A setup whose agent-state topic has `partitions` and `n` states, with wfm-sim running: the
/// setup, the topic, wfm-sim and the text of a configuration for `consume`.
fn prefilled(name: &str, partitions: i32, n: usize) -> (Setup, String, Proc, String) {
    let setup = Setup::new(name);
    let topic = setup.topic("acd.agent-state.v1");
    create_topic(&setup.brokers, &topic, partitions);
    prefill(&setup.brokers, &topic, n);
    let listen = format!("127.0.0.1:{}", setup.wfm_port);
    let wfm = Proc::start("wfm-sim", &["wfm-sim", "--listen", &listen], &setup.scratch.0);
    wait_ok(&setup.wfm("/sim/state"), Duration::from_secs(30));
    let base = std::fs::read_to_string(setup.config("")).unwrap();
    (setup, topic, wfm, base)
}

/// Median, lowest and highest of `v`, and whether the spread ((max - min) / median) is within
/// `tolerance`.
fn summary(v: &[f64], tolerance: f64) -> (f64, f64, f64, bool) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 };
    let (lo, hi) = (v[0], v[v.len() - 1]);
    (median, lo, hi, (hi - lo) / median <= tolerance)
}

fn describe(what: &str, v: &[f64], unit: &str, tolerance: f64) -> String {
    let (m, lo, hi, ok) = summary(v, tolerance);
    let verdict =
        if ok { String::new() } else { format!(" (spread over {:.0}%: too wide to conclude)", tolerance * 100.0) };
    let d = if unit == "/s" { 0 } else { 2 };
    format!("{what} median {m:.d$}{unit} [{lo:.d$}-{hi:.d$}] over {} runs{verdict}", v.len())
}

/// The figures of `consume` runs, each beside a `kcat -C` run.
#[derive(Default)]
struct RunFigures {
    ours: Vec<f64>,
    steady: Vec<f64>,
    first: Vec<f64>,
    kcat: Vec<f64>,
    ratio: Vec<f64>,
    rss: Vec<f64>,
    peak: Vec<f64>,
}

impl RunFigures {
    /// One run over `n` records: its first record and end in seconds from start, its kcat rate,
    /// its RSS at the end and at the peak.
    fn push(&mut self, n: usize, first: f64, secs: f64, kcat: f64, rss: f64, peak: f64) {
        self.ours.push(n as f64 / secs);
        self.steady.push(n as f64 / (secs - first).max(1e-3));
        self.first.push(first);
        self.kcat.push(kcat);
        self.ratio.push(n as f64 / secs / kcat);
        self.rss.push(rss);
        self.peak.push(peak);
    }
}

/// What a `consume` run counts to know it has read everything.
#[derive(Clone, Copy)]
enum Counted {
    /// Agent states delivered to the WFM (`/status`).
    StatesDelivered,
    /// Records read by the interval pipeline (`/metrics`).
    IntervalRecords,
}

/// One `consume` run over `n` pre-filled records with its own group and store: seconds from
/// process start to the first record counted and to the last, its RSS at the end, its peak RSS,
/// and its metrics page at the end.
fn consume_run(
    setup: &Setup,
    base: &str,
    run: usize,
    n: usize,
    counted: Counted,
    wrap: Option<&str>,
) -> (f64, f64, f64, f64, String) {
    let group_line = format!("group_id = \"{}\"", setup.prefix);
    assert!(base.contains(&group_line) && base.contains("/state\""));
    let text = base
        .replace(&group_line, &format!("group_id = \"{}-run-{run}\"", setup.prefix))
        .replace("/state\"", &format!("/state-run-{run}\""));
    let cfg = setup.scratch.file(&format!("config-run-{run}.toml"), &with_properties(text));
    let t = Instant::now();
    let args = ["consume", "--config", cfg.to_str().unwrap()];
    let mut consumer = Proc::launch("consume", wrap, &args, &setup.scratch.0);
    let c = http();
    let mut first: Option<f64> = None;
    poll("the consumer to read everything", Duration::from_secs(1800), || {
        if let Ok(Some(status)) = consumer.child.try_wait() {
            panic!("consume exited ({status}) before reading everything:\n{}", consumer.log());
        }
        let done = match counted {
            Counted::StatesDelivered => {
                let s: Value = c.get(setup.admin("/status")).send().ok()?.json().ok()?;
                s["agent_states_delivered"].as_u64()?
            }
            Counted::IntervalRecords => {
                let page = c.get(setup.admin("/metrics")).send().ok()?.text().ok()?;
                metric(&page, "acd_interval_records_read_total") as u64
            }
        };
        if done > 0 && first.is_none() {
            first = Some(t.elapsed().as_secs_f64());
        }
        (done as usize >= n).then_some(())
    });
    let secs = t.elapsed().as_secs_f64();
    let (rss, peak) = (rss_mb(consumer.child.id()), peak_rss_mb(consumer.child.id()));
    let metrics = c.get(setup.admin("/metrics")).send().ok().and_then(|r| r.text().ok()).unwrap_or_default();
    consumer.terminate();
    (first.unwrap_or(secs), secs, rss, peak, metrics)
}

/// `consume` on `n` pre-filled states, `BENCH_RUNS` times (at least 5), each run followed by a
/// `kcat -C` of the same topic on the same warm broker; medians with their spread. Then the
/// time to the first delivery on a just-started broker of its own against a warm one.
fn bench_consume() {
    let n = env_usize("BENCH_STATES", 1_000_000);
    let runs = env_usize("BENCH_RUNS", 5).max(5);
    let (setup, topic, wfm, base) = prefilled("bench-consume", 6, n);
    // One kcat run first, so that neither side meets a cold broker JIT.
    kcat_consume(&setup.brokers, &topic, n, 1);
    let mut fig = RunFigures::default();
    // `BENCH_WRAP="valgrind --tool=massif"`, say: one more run first, under that profiler, and
    // left out of the figures.
    if let Ok(wrap) = std::env::var("BENCH_WRAP") {
        let (_, secs, _, p, _) = consume_run(&setup, &base, runs, n, Counted::StatesDelivered, Some(&wrap));
        eprintln!("  run under {wrap}: {:.0}/s, peak RSS {p:.0} MB", n as f64 / secs);
    }
    for run in 0..runs {
        let (f, secs, r, p, _) = consume_run(&setup, &base, run, n, Counted::StatesDelivered, None);
        let k = kcat_consume(&setup.brokers, &topic, n, 1);
        fig.push(n, f, secs, k, r, p);
        eprintln!(
            "  run {run}: {:.0}/s from start, first delivery {f:.2} s, kcat -C {k:.0}/s, RSS {r:.0} MB (peak {p:.0})",
            n as f64 / secs
        );
    }
    drop(wfm);
    println!("consume: {n} agent states, decode+dedup+WFM POST+checkpoint and the interval pipeline, {runs} runs each beside a kcat -C run:");
    print_figures(&[
        ("from process start:", &fig.ours, "/s", 0.25),
        ("after the first delivery:", &fig.steady, "/s", 0.25),
        ("kcat -C:", &fig.kcat, "/s", 0.25),
        ("ratio (each run to its kcat):", &fig.ratio, "", 0.25),
        ("time to first delivery, warm broker:", &fig.first, " s", 1.0),
        ("RSS at the end:", &fig.rss, " MB", 0.25),
        ("peak RSS:", &fig.peak, " MB", 0.25),
    ]);
    // A just-started broker of its own, a small topic: time to the first delivery.
    let mut cold = Vec::new();
    let broker = OwnBroker::start();
    for run in 0..3 {
        if run > 0 {
            broker.kill9();
            broker.restart();
        }
        let setup = Setup::on("bench-cold", &broker.bootstrap());
        let topic = setup.topic("acd.agent-state.v1");
        create_topic(&setup.brokers, &topic, 6);
        prefill(&setup.brokers, &topic, 10_000);
        let listen = format!("127.0.0.1:{}", setup.wfm_port);
        let _wfm = Proc::start("wfm-sim", &["wfm-sim", "--listen", &listen], &setup.scratch.0);
        wait_ok(&setup.wfm("/sim/state"), Duration::from_secs(30));
        let base = std::fs::read_to_string(setup.config("")).unwrap();
        let (f, ..) = consume_run(&setup, &base, run, 10_000, Counted::StatesDelivered, None);
        cold.push(f);
    }
    println!("  {}", describe("time to first delivery, just-started broker (10,000 states):", &cold, " s", 1.0));
}

/// Ingest `202` to WFM receipt of agent states, at 2,000/s and at 20,000/s: `BENCH_RUNS` (at
/// least 5) passes of 15 s at each rate, alternating, on one `produce`, `consume` and wfm-sim;
/// medians of each pass's percentiles with their spread.
fn bench_latency() {
    let runs = env_usize("BENCH_RUNS", 5).max(5);
    let setup = Setup::new("bench-latency");
    let listen = format!("127.0.0.1:{}", setup.wfm_port);
    let _wfm = Proc::start("wfm-sim", &["wfm-sim", "--listen", &listen], &setup.scratch.0);
    wait_ok(&setup.wfm("/sim/state"), Duration::from_secs(30));
    let cfg = setup.config("");
    let _p = Proc::start("produce", &["produce", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
    let _c = Proc::start("consume", &["consume", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
    wait_ok(&setup.ingest("/healthz"), Duration::from_secs(60));
    wait_ok(&setup.admin("/healthz"), Duration::from_secs(60));
    let url = setup.ingest("/v1/agent-states");
    // Warm up until the consumer has its partitions and delivers.
    let warm =
        json!({"agentStateList": [as_json(&states(1, 1, acd_schemas::time::now_millis(), 1000)[0])]}).to_string();
    http().post(&url).header("Content-Type", "application/json").body(warm).send().unwrap();
    poll("warm-up delivery", Duration::from_secs(60), || {
        let s: Value = http().get(setup.wfm("/sim/state")).send().ok()?.json().ok()?;
        (!s["agentStates"].as_array()?.is_empty()).then_some(())
    });
    let rates = [2_000usize, 20_000];
    // Per rate: offered rate, p50, p99 and max of each pass.
    let mut figures: Vec<[Vec<f64>; 4]> = rates.iter().map(|_| Default::default()).collect();
    for run in 0..runs {
        for (r, rate) in rates.iter().enumerate() {
            let wiped = http().post(setup.wfm("/sim/reset")).send().unwrap();
            assert!(wiped.status().is_success());
            let (offered, lat) = latency_pass(&setup, &url, *rate);
            let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64;
            let pass = [offered, q(0.5), q(0.99), lat[lat.len() - 1] as f64];
            eprintln!(
                "  run {run} at {rate}/s: offered {:.0}/s, p50 {} ms, p99 {} ms, max {} ms",
                pass[0], pass[1], pass[2], pass[3]
            );
            for (k, v) in pass.into_iter().enumerate() {
                figures[r][k].push(v);
            }
        }
    }
    for (rate, [offered, p50, p99, max]) in rates.iter().zip(&figures) {
        println!("latency at {rate}/s, ingest 202 -> WFM receipt, {runs} passes of 15 s:");
        print_figures(&[
            ("offered:", offered, "/s", 0.25),
            ("p50:", p50, " ms", 1.0),
            ("p99:", p99, " ms", 1.0),
            ("max:", max, " ms", 2.0),
        ]);
    }
}

/// One 15-second pass at `rate` states/s (event time the wall clock, 2,000 agents): the offered
/// rate and each state's latency from its request's `202` to the WFM's receipt, sorted.
fn latency_pass(setup: &Setup, url: &str, rate: usize) -> (f64, Vec<i64>) {
    let base = acd_schemas::time::now_millis();
    let seconds = 15;
    let batch = if rate <= 2_000 { 100 } else { 500 };
    let per_sec = rate / batch;
    let total = rate * seconds;
    let records = states(total, 2000, base, (2000 * 1000 / rate) as i64);
    let bodies: Vec<String> = records
        .chunks(batch)
        .map(|c| json!({"agentStateList": c.iter().map(as_json).collect::<Vec<_>>()}).to_string())
        .collect();
    let acked = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<String, i64>::new()));
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / per_sec as f64);
    let mut handles = Vec::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let due = start + interval * i as u32;
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d); // pacing the offered load, not waiting for a result
        }
        let (url, acked) = (url.to_string(), acked.clone());
        let times: Vec<String> = records[i * batch..(i + 1) * batch]
            .iter()
            .map(|s| format!("{}/{}", s.login_id, acd_schemas::time::format_millis(s.event_utc_time)))
            .collect();
        handles.push(std::thread::spawn(move || {
            let r = http().post(&url).header("Content-Type", "application/json").body(body).send().unwrap();
            assert_eq!(r.status().as_u16(), 202);
            let now = acd_schemas::time::now_millis();
            let mut a = acked.lock().unwrap();
            for k in times {
                a.insert(k, now);
            }
        }));
        if handles.len() > 64 {
            for h in handles.drain(..32) {
                h.join().unwrap();
            }
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    let offered = total as f64 / start.elapsed().as_secs_f64();
    let acked = acked.lock().unwrap().clone();
    let mut lat = poll("every state at the WFM", Duration::from_secs(120), || {
        let s: Value = http().get(setup.wfm("/sim/state")).send().ok()?.json().ok()?;
        let list = s["agentStates"].as_array()?;
        let recv = s["agentStatesReceivedMs"].as_array()?;
        let mut lat = Vec::new();
        for (st, r) in list.iter().zip(recv) {
            let key = format!("{}/{}", st["loginId"].as_str()?, st["eventUtcTime"].as_str()?);
            if let Some(a) = acked.get(&key) {
                lat.push((r.as_i64()? - a).max(0));
            }
        }
        (lat.len() >= total).then_some(lat)
    });
    lat.sort_unstable();
    (offered, lat)
}

fn contacts(n: usize, base: i64) -> Vec<acd_schemas::records::Contact> {
    use acd_schemas::records::{Contact, Outcome};
    (0..n)
        .map(|i| {
            let ended = base + i as i64 * 86; // a day of contacts
            let handled = i % 10 != 0;
            Contact {
                acd_id: "bench".into(),
                contact_id: format!("c{i:08}"),
                queue_value: format!("{}", 8000 + i % 20),
                queue_name: format!("Skill_{:02}", i % 20),
                is_outbound: false,
                outcome: if handled { Outcome::Handled } else { Outcome::Abandoned },
                arrived_utc: ended - 300_000,
                ended_utc: ended,
                queue_delay_sec: (i % 60) as f64,
                talk_sec: if handled { 240.0 } else { 0.0 },
                hold_sec: if handled { 10.0 } else { 0.0 },
                work_sec: if handled { 30.0 } else { 0.0 },
                agent_value: handled.then(|| format!("agent{:04}", i % 500)),
                agent_id: None,
                party: None,
                received_utc: None,
            }
        })
        .collect()
}

/// The interval pipeline on `BENCH_CONTACTS` (1,000,000) pre-filled contacts, `BENCH_RUNS` times
/// (at least 5), each run followed by a `kcat -C` of the same topic; medians with their spread.
fn bench_contacts() {
    let n = env_usize("BENCH_CONTACTS", 1_000_000);
    let runs = env_usize("BENCH_RUNS", 5).max(5);
    let setup = Setup::new("bench-contacts");
    let topic = setup.topic("acd.contact.v1");
    create_topic(&setup.brokers, &topic, 6);
    let producer = fill_producer(&setup.brokers);
    let codec = Codec::default();
    let base = (acd_schemas::time::now_millis() / 900_000) * 900_000 - 2 * 86_400_000;
    for c in contacts(n, base) {
        let v = codec.encode(Stream::Contact, &c).unwrap();
        let key = c.key();
        while producer.send(BaseRecord::to(&topic).key(&key).payload(&v)).is_err() {
            producer.poll(Duration::from_millis(10));
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    let listen = format!("127.0.0.1:{}", setup.wfm_port);
    let wfm = Proc::start("wfm-sim", &["wfm-sim", "--listen", &listen], &setup.scratch.0);
    wait_ok(&setup.wfm("/sim/state"), Duration::from_secs(30));
    let config = std::fs::read_to_string(setup.config("")).unwrap();
    kcat_consume(&setup.brokers, &topic, n, 1);
    let mut fig = RunFigures::default();
    let mut keys = String::new();
    for run in 0..runs {
        let (f, secs, r, p, metrics) = consume_run(&setup, &config, run, n, Counted::IntervalRecords, None);
        let k = kcat_consume(&setup.brokers, &topic, n, 1);
        fig.push(n, f, secs, k, r, p);
        keys = format!(
            "{} in memory, {} in sled",
            metric(&metrics, "acd_contact_keys_in_memory"),
            metric(&metrics, "acd_contact_keys_spilled")
        );
        eprintln!(
            "  run {run}: {:.0}/s from start, first record {f:.2} s, kcat -C {k:.0}/s, peak RSS {p:.0} MB",
            n as f64 / secs
        );
    }
    drop(wfm);
    println!(
        "contacts: {n} contacts ({n} distinct dedup keys), decode+dedup+aggregate+deliver closed intervals, \
         {runs} runs each beside a kcat -C run (dedup keys at the end: {keys}):"
    );
    print_figures(&[
        ("from process start:", &fig.ours, "/s", 0.25),
        ("after the first record:", &fig.steady, "/s", 0.25),
        ("kcat -C:", &fig.kcat, "/s", 0.25),
        ("ratio (each run to its kcat):", &fig.ratio, "", 0.25),
        ("time to first record, warm broker:", &fig.first, " s", 1.0),
        ("peak RSS:", &fig.peak, " MB", 0.25),
    ]);
}

/// The LiveVox connector: livevox-sim serves `BENCH_LIVEVOX_EVENTS` (200,000) agent events in
/// answers of 1,000; measured from the connector's first feed call until Kafka holds every one
/// of them as an agent state (each answer published and acknowledged, its token saved).
fn bench_livevox() {
    let n: u64 = std::env::var("BENCH_LIVEVOX_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let setup = Setup::new("bench-livevox");
    let sim_port = free_port();
    let listen = format!("127.0.0.1:{sim_port}");
    let (events, start) = (n.to_string(), (1_714_000_000_000i64).to_string());
    let _sim = Proc::start(
        "livevox-sim",
        &["livevox-sim", "--listen", &listen, "--events", &events, "--rate", "0", "--answer-events", "1000"]
            .into_iter()
            .chain(["--agents", "1000", "--start-ms", &start, "--spacing-ms", "10", "--password", "pw"])
            .collect::<Vec<_>>(),
        &setup.scratch.0,
    );
    let sim = |path: &str| format!("http://127.0.0.1:{sim_port}{path}");
    wait_ok(&sim("/sim/state"), Duration::from_secs(30));
    let generated =
        http().get(sim("/sim/state")).send().unwrap().json::<Value>().unwrap()["eventsGenerated"].as_u64().unwrap();
    let token = setup.scratch.file("token", "lv-access-token");
    let password = setup.scratch.file("password", "pw");
    let base = std::fs::read_to_string(setup.config("")).unwrap();
    let cfg = setup.scratch.file(
        "produce.toml",
        &format!(
            "{base}\n[connectors.livevox]\nenabled = true\nacd_id = \"lv\"\nbase_url = \"http://{listen}\"\n\
             access_token_file = \"{}\"\nclient_name = \"client\"\nuser_name = \"api-user\"\npassword_file = \"{}\"\n\
             state_dir = \"{}\"\n",
            token.display(),
            password.display(),
            setup.scratch.0.join("lv-state").display()
        ),
    );
    let _p = Proc::start("produce", &["produce", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
    let topic = setup.topic("acd.agent-state.v1");
    poll("every LiveVox event on Kafka", Duration::from_secs(600), || {
        (end_offsets(&setup.brokers, &topic) as u64 >= generated).then_some(())
    });
    let done = acd_schemas::time::now_millis();
    let state: Value = http().get(sim("/sim/state")).send().unwrap().json().unwrap();
    let answers = state["answers"].as_array().unwrap();
    let first = answers[0]["at"].as_i64().unwrap();
    let secs = (done - first) as f64 / 1000.0;
    println!(
        "livevox: {generated} agent events in {} answers of up to 1,000, feed to Kafka (acknowledged, token saved) in {secs:.2} s: {:.0} events/s",
        answers.len(),
        generated as f64 / secs
    );
}

/// CPU seconds (user + system) a process has used, from /proc (clock ticks of 10 ms).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// A snapshot of `agents` agents; snapshot `k` changes every agent (`every` 1) or one in `every`.
fn rows(agents: usize, k: usize, every: usize) -> Vec<acd_producer::connectors::avaya_cms::rt::Row> {
    (0..agents)
        .map(|i| acd_producer::connectors::avaya_cms::rt::Row {
            logid: format!("{}", 100_000 + i),
            code: if (i + if i % every == 0 { k } else { 0 }) % 2 == 0 { 20 } else { 32 },
            reason: String::new(),
            agtime: Some(3),
        })
        .collect()
}

fn ech_segment(i: u32, t0: u32) -> acd_producer::connectors::avaya_cms::ech::Segment {
    acd_producer::connectors::avaya_cms::ech::Segment {
        callid: i,
        segment: 1,
        ucid: format!("{:020}", 10_000_000_000u64 + i as u64),
        call_disp: if i.is_multiple_of(7) { 3 } else { 2 },
        dispsplit: 57 + (i % 8) as i16,
        segstart_utc: t0 + i / 20,
        disptime: 12,
        queuetime: 8,
        ringtime: 3,
        talktime: if i.is_multiple_of(7) { 0 } else { 200 },
        ansholdtime: 0,
        acwtime: if i.is_multiple_of(7) { 0 } else { 20 },
        anslogin: if i.is_multiple_of(7) { String::new() } else { format!("{}", 5000 + i % 500) },
    }
}

/// Avaya CMS: the real-time tracker on 10,000-agent snapshots (pure, then through `produce`),
/// call history parsing, and a 1,000,000-segment file from the drop directory to Kafka.
fn bench_cms() {
    use acd_producer::connectors::avaya_cms::{ech, layout, rt};
    // 1. The tracker alone: a first snapshot (every agent new), then snapshots where all change
    // (the worst case) or one agent in ten does (a busy 3-second refresh).
    for every in [1, 10] {
        let snaps: Vec<_> = (0..21).map(|k| rows(10_000, k, every)).collect();
        let mut tracker = rt::Tracker::new("cms");
        tracker.apply(1, 1_714_000_000_000, &snaps[0]);
        let t = Instant::now();
        let mut published = 0;
        for (k, s) in snaps.iter().enumerate().skip(1) {
            published += tracker.apply(1, 1_714_000_000_000 + k as i64 * 3000, s).len();
        }
        println!(
            "cms rt (pure): 20 snapshots of 10,000 agents, {published} states: {:.2} ms a snapshot",
            t.elapsed().as_secs_f64() * 1000.0 / 20.0
        );
    }
    // 2. Through produce: snapshots over the socket, until Kafka holds every state; produce's CPU.
    let setup = Setup::new("bench-cms");
    let rt_port = free_port();
    let base = std::fs::read_to_string(setup.config("")).unwrap();
    let ech_dir = setup.scratch.0.join("ech");
    let cfg = setup.scratch.file(
        "produce.toml",
        &format!(
            "{base}\n[connectors.avaya_cms]\nenabled = true\nrt_listen = \"127.0.0.1:{rt_port}\"\nech_dir = \"{}\"\nech_settle_ms = 200\n",
            ech_dir.display()
        ),
    );
    let p = Proc::start("produce", &["produce", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
    wait_ok(&setup.ingest("/healthz"), Duration::from_secs(60));
    let topic = setup.topic("acd.agent-state.v1");
    let mut conn =
        poll("the CMS socket", Duration::from_secs(30), || std::net::TcpStream::connect(("127.0.0.1", rt_port)).ok());
    let mut expected = 0i64;
    let mut k = 0;
    for every in [1, 10] {
        let mut cpu_total = 0.0;
        let snapshots = 20;
        for _ in 0..snapshots {
            let snapshot = rows(10_000, k, every);
            let mut text = String::with_capacity(10_000 * 40);
            for r in &snapshot {
                let mode = if r.code == 20 { "AVAIL|" } else { "ACD|IN" };
                text.push_str(&format!("{}|{mode}||3|57\n", r.logid));
            }
            text.push_str(&format!(
                "END_OF_SNAPSHOT|{}\n",
                acd_schemas::time::format_millis(1_714_000_000_000 + k as i64 * 3000)
            ));
            expected += if k == 0 { 10_000 } else { (10_000 + every - 1) as i64 / every as i64 };
            k += 1;
            let before = cpu_seconds(p.child.id());
            conn.write_all(text.as_bytes()).unwrap();
            poll("the snapshot's states on Kafka", Duration::from_secs(60), || {
                (end_offsets(&setup.brokers, &topic) >= expected).then_some(())
            });
            cpu_total += cpu_seconds(p.child.id()) - before;
        }
        println!(
            "cms rt (produce): {snapshots} snapshots of 10,000 agents, {} changing: {:.1} ms of produce CPU a snapshot (read, applied, published, acknowledged)",
            if every == 1 { "every agent".to_string() } else { format!("one agent in {every}") },
            cpu_total * 1000.0 / snapshots as f64
        );
    }
    // 3. Parsing call history records: header check, record, contact.
    let n: u32 = std::env::var("BENCH_ECH_SEGMENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let t0 = 1_714_000_000u32;
    let segs: Vec<_> = (0..n).map(|i| ech_segment(i, t0)).collect();
    let file = ech::write_file(&layout::V181, 1, &segs);
    drop(segs);
    let t = Instant::now();
    let (l, _) = ech::check_file(&file[..8], file.len() as u64).unwrap();
    let reader = ech::Reader::new(l).unwrap();
    let names = std::collections::BTreeMap::new();
    let mut contacts = 0usize;
    for rec in file[8..].chunks_exact(l.record_len) {
        let seg = reader.segment(rec).unwrap();
        contacts += ech::contact(&seg, "cms", &names, 0).is_some() as usize;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "cms ech (pure parse): {n} records ({contacts} contacts) in {secs:.3} s: {:.0} records/s",
        n as f64 / secs
    );
    // 4. The same file through produce to Kafka, beside kcat -P of the same contacts.
    let codec = Codec::default();
    let path = std::env::temp_dir().join(unique("kcat-ech"));
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let (kd, md) = ("|~K~|", "|~RS~|");
        for rec in file[8..].chunks_exact(l.record_len) {
            let Some(c) = ech::contact(&reader.segment(rec).unwrap(), "cms", &names, 0) else { continue };
            let v = codec.encode(Stream::Contact, &c).unwrap();
            f.write_all(c.key().as_bytes()).unwrap();
            f.write_all(kd.as_bytes()).unwrap();
            f.write_all(&v).unwrap();
            f.write_all(md.as_bytes()).unwrap();
        }
    }
    let kcat_topic = setup.topic("kcat-contacts");
    create_topic(&setup.brokers, &kcat_topic, 3);
    let t = Instant::now();
    let st = Command::new("kcat")
        .args([
            "-P",
            "-b",
            &setup.brokers,
            "-t",
            &kcat_topic,
            "-K",
            "|~K~|",
            "-D",
            "|~RS~|",
            "-X",
            "enable.idempotence=true",
            "-X",
            "acks=all",
        ])
        .args(["-X", "linger.ms=5", "-X", "compression.codec=lz4", "-l", path.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let kcat = contacts as f64 / t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    let staged = setup.scratch.0.join("chr0001");
    std::fs::write(&staged, &file).unwrap();
    drop(file);
    let contact_topic = setup.topic("acd.contact.v1");
    let t = Instant::now();
    std::fs::rename(&staged, ech_dir.join("chr0001")).unwrap();
    poll("every contact on Kafka", Duration::from_secs(900), || {
        (end_offsets(&setup.brokers, &contact_topic) as usize >= contacts).then_some(())
    });
    // The settle time is a choice of the configuration, not work: left out of the rate.
    let secs = t.elapsed().as_secs_f64() - 0.2;
    let ours = contacts as f64 / secs;
    println!(
        "cms ech (file to Kafka): {n} segments, {contacts} contacts in {secs:.2} s: {ours:.0} contacts/s | kcat -P {kcat:.0}/s | ratio {:.2}",
        ours / kcat
    );
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: measure only under cargo bench.
    if !std::env::args().any(|a| a == "--bench") {
        println!("pipeline: a load harness; run it with `cargo bench --bench pipeline -- [ingest|consume|latency]`");
        return;
    }
    let which: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let all = which.is_empty() || which.iter().any(|w| w == "all");
    ensure_broker();
    if all || which.iter().any(|w| w == "ingest") {
        bench_ingest();
        bench_ingest_contacts();
    }
    if all || which.iter().any(|w| w == "latency") {
        bench_latency();
    }
    if all || which.iter().any(|w| w == "consume") {
        bench_consume();
    }
    if all || which.iter().any(|w| w == "contacts") {
        bench_contacts();
    }
    if all || which.iter().any(|w| w == "livevox") {
        bench_livevox();
    }
    if all || which.iter().any(|w| w == "cms") {
        bench_cms();
    }
    if which.iter().any(|w| w == "scale") {
        bench_scale();
    }
    // Not part of `all`: it runs for ten minutes.
    if which.iter().any(|w| w == "soak") {
        bench_soak();
    }
}

/// The peak resident size of a process so far (`VmHWM`), in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn rss_mb(pid: u32) -> f64 {
    let out = Command::new("ps").args(["-o", "rss=", "-p", &pid.to_string()]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().unwrap_or(0.0) / 1024.0
}

/// A group's lag over `topics` as Kafka's tools compute it: end offsets minus committed offsets.
fn group_lag(brokers: &str, group: &str, topics: &[String]) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).set("group.id", group).create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for t in topics {
        let Ok(md) = c.fetch_metadata(Some(t), Duration::from_secs(10)) else { continue };
        for p in md.topics()[0].partitions() {
            tpl.add_partition(t, p.id());
        }
    }
    let Ok(committed) = c.committed_offsets(tpl, Duration::from_secs(10)) else { return -1 };
    committed
        .elements()
        .iter()
        .map(|e| {
            let (lo, hi) = c.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10)).unwrap_or((0, 0));
            let lag = hi
                - match e.offset() {
                    rdkafka::Offset::Offset(o) => o,
                    _ => lo,
                };
            if std::env::var_os("BENCH_SOAK_METRICS").is_some() {
                eprintln!("  {} {} committed {:?} end {hi} lag {lag}", e.topic(), e.partition(), e.offset());
            }
            lag
        })
        .sum()
}

/// A metric's value summed over its label sets, from a Prometheus text page.
fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Soak: a steady live load through both processes for `BENCH_SOAK_SECONDS`, sampling each
/// process's RSS, the forwarding lag and the interval pipeline's distance behind every 10 s.
fn bench_soak() {
    let seconds = env_usize("BENCH_SOAK_SECONDS", 600) as u64;
    let rate = env_usize("BENCH_SOAK_RATE", 20_000);
    let contacts_per_s: usize = 50;
    let (batch, agents) = (500usize, 10_000usize);
    let setup = Setup::new("bench-soak");
    let listen = format!("127.0.0.1:{}", setup.wfm_port);
    let _wfm = Proc::start("wfm-sim", &["wfm-sim", "--listen", &listen], &setup.scratch.0);
    wait_ok(&setup.wfm("/sim/state"), Duration::from_secs(30));
    let cfg = setup.config("");
    let mut produce = Proc::start("produce", &["produce", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
    let mut consume = Proc::start("consume", &["consume", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
    wait_ok(&setup.ingest("/healthz"), Duration::from_secs(60));
    wait_ok(&setup.admin("/healthz"), Duration::from_secs(60));
    let (states_url, contacts_url) = (setup.ingest("/v1/agent-states"), setup.ingest("/v1/contacts"));
    let sent_states = Arc::new(AtomicUsize::new(0));
    let sent_contacts = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let start = Instant::now();
    let per_sec = rate / batch;
    let mut senders = Vec::new();
    // Four senders share the state batches round robin, each on its own schedule.
    for w in 0..4usize {
        let (url, sent, refused, stop) = (states_url.clone(), sent_states.clone(), refused.clone(), stop.clone());
        senders.push(std::thread::spawn(move || {
            let client = http();
            let interval = Duration::from_secs_f64(1.0 / per_sec as f64);
            let mut j = w;
            while !stop.load(Ordering::Relaxed) {
                let due = start + interval * j as u32;
                if let Some(d) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d); // pacing the offered load
                }
                let now = acd_schemas::time::now_millis();
                let codes = ["AVAIL", "ACD", "ACW", "AUX"];
                let list: Vec<Value> = (0..batch)
                    .map(|k| {
                        let agent = (j * batch + k) % agents;
                        json!({"loginId": format!("agent{agent:05}"), "acdId": "soak",
                               "eventCode": codes[(j * batch / agents + agent) % 4], "reasonCode": "",
                               "eventUtcTime": acd_schemas::time::format_millis(now)})
                    })
                    .collect();
                let body = json!({ "agentStateList": list }).to_string();
                match client.post(&url).header("Content-Type", "application/json").body(body).send() {
                    Ok(r) if r.status().as_u16() == 202 => {
                        sent.fetch_add(batch, Ordering::Relaxed);
                    }
                    _ => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                j += 4;
            }
        }));
    }
    {
        let (url, sent, refused, stop) = (contacts_url.clone(), sent_contacts.clone(), refused.clone(), stop.clone());
        senders.push(std::thread::spawn(move || {
            let client = http();
            let mut j = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if let Some(d) = (start + Duration::from_secs(j as u64)).checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
                let ended = acd_schemas::time::now_millis() - 1000;
                let list: Vec<Value> = (0..contacts_per_s)
                    .map(|k| {
                        let handled = k % 10 != 0;
                        json!({"acdId": "soak", "contactId": format!("s{j:06}-{k:02}"), "queueValue": format!("{}", 8000 + k % 20),
                               "queueName": format!("Skill_{:02}", k % 20), "isOutbound": false,
                               "outcome": if handled { "HANDLED" } else { "ABANDONED" },
                               "arrivedUtc": acd_schemas::time::format_millis(ended - 300_000),
                               "endedUtc": acd_schemas::time::format_millis(ended), "queueDelaySec": (k % 60) as f64,
                               "talkSec": if handled { 240.0 } else { 0.0 }, "holdSec": 0.0,
                               "workSec": if handled { 30.0 } else { 0.0 },
                               "agentValue": if handled { Value::from(format!("agent{:05}", k * 7)) } else { Value::Null }})
                    })
                    .collect();
                let body = json!({ "contacts": list }).to_string();
                match client.post(&url).header("Content-Type", "application/json").body(body).send() {
                    Ok(r) if r.status().as_u16() == 202 => {
                        sent.fetch_add(contacts_per_s, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        eprintln!("contacts refused: {} {}", r.status(), r.text().unwrap_or_default());
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                j += 1;
            }
        }));
    }
    let c = http();
    let intervals_group = format!("{}.intervals", setup.prefix);
    let interval_topics = [setup.topic("acd.agent-state.v1"), setup.topic("acd.contact.v1")];
    let sample = |t: f64| -> (f64, f64, f64, f64, f64, f64) {
        let page = c.get(setup.admin("/metrics")).send().ok().and_then(|r| r.text().ok()).unwrap_or_default();
        let s: Value = c.get(setup.admin("/status")).send().ok().and_then(|r| r.json().ok()).unwrap_or_default();
        (
            t,
            rss_mb(produce.child.id()),
            rss_mb(consume.child.id()),
            metric(&page, "acd_consumer_lag"),
            group_lag(&setup.brokers, &intervals_group, &interval_topics) as f64,
            s["agent_states_delivered"].as_f64().unwrap_or(0.0),
        )
    };
    println!("soak: {rate} agent states/s and {contacts_per_s} contacts/s for {seconds} s");
    println!(
        "  {:>6} {:>12} {:>12} {:>10} {:>14} {:>12} {:>12}",
        "t (s)", "states sent", "delivered", "lag", "interval lag", "produce MB", "consume MB"
    );
    let mut curve = Vec::new();
    let mut next = 10;
    while start.elapsed().as_secs() < seconds {
        std::thread::sleep(Duration::from_secs(next).saturating_sub(start.elapsed())); // sampling period
        let row = sample(start.elapsed().as_secs_f64());
        if std::env::var_os("BENCH_SOAK_METRICS").is_some() {
            eprintln!(
                "contacts sent {} in kafka {}",
                sent_contacts.load(Ordering::Relaxed),
                end_offsets(&setup.brokers, &setup.topic("acd.contact.v1"))
            );
        }
        println!(
            "  {:>6.0} {:>12} {:>12.0} {:>10.0} {:>14.0} {:>12.1} {:>12.1}",
            row.0,
            sent_states.load(Ordering::Relaxed),
            row.5,
            row.3,
            row.4,
            row.1,
            row.2
        );
        curve.push(row);
        next += 10;
    }
    stop.store(true, Ordering::Relaxed);
    for h in senders {
        h.join().unwrap();
    }
    let (states, contacts) = (sent_states.load(Ordering::Relaxed), sent_contacts.load(Ordering::Relaxed));
    let offered = states as f64 / start.elapsed().as_secs_f64();
    let drained = poll("every accepted state delivered", Duration::from_secs(300), || {
        let s: Value = c.get(setup.admin("/status")).send().ok()?.json().ok()?;
        (s["agent_states_delivered"].as_u64()? as usize >= states).then_some(s)
    });
    let page = c.get(setup.admin("/metrics")).send().unwrap().text().unwrap();
    let dlq = end_offsets(&setup.brokers, &setup.topic("wfm.dlq.v1"));
    let errors = |p: &Proc| p.log().lines().filter(|l| l.contains("ERROR")).count();
    let (perr, cerr) = (errors(&produce), errors(&consume));
    let warm: Vec<_> = curve.iter().filter(|r| r.0 >= 60.0).collect();
    let (c0, c1) = (warm.first().map_or(0.0, |r| r.2), warm.last().map_or(0.0, |r| r.2));
    let (p0, p1) = (warm.first().map_or(0.0, |r| r.1), warm.last().map_or(0.0, |r| r.1));
    let cmax = warm.iter().map(|r| r.2).fold(0.0, f64::max);
    let lagmax = curve.iter().map(|r| r.3).fold(0.0, f64::max);
    println!(
        "soak: {states} states ({offered:.0}/s offered) and {contacts} contacts accepted, {} requests refused; \
         {} states delivered, {} duplicates removed; {dlq} dead letters; ERROR lines: produce {perr}, consume {cerr}; \
         max forwarding lag {lagmax:.0}; RSS after warm-up (60 s on): consume {c0:.0} -> {c1:.0} MB (max {cmax:.0}), produce {p0:.0} -> {p1:.0} MB; \
         intraday reports accepted {}",
        refused.load(Ordering::Relaxed),
        drained["agent_states_delivered"],
        drained["agent_states_duplicates"],
        metric(&page, "acd_interval_reports_delivered_total"),
    );
    if std::env::var_os("BENCH_SOAK_METRICS").is_some() {
        println!("{page}");
        for l in consume.log().lines().filter(|l| l.contains("detached") || l.contains("assigned")) {
            eprintln!("{l}");
        }
    }
    produce.terminate();
    consume.terminate();
}

/// One and two `consume` instances in one group on a 12-partition agent-state topic, alternated
/// (1, 2, 1, 2, ...) on the same pre-filled records, each run a new group: time from process
/// start to the last delivery, CPU time and RSS per instance, CPU per state.
fn bench_scale() {
    let n = env_usize("BENCH_SCALE_STATES", 4_000_000);
    let rounds = env_usize("BENCH_RUNS", 5).max(5);
    let (setup, _topic, _wfm, base) = prefilled("bench-scale", 12, n);
    let group_line = format!("group_id = \"{}\"", setup.prefix);
    let admin_line = format!("admin_listen = \"127.0.0.1:{}\"", setup.admin_port);
    assert!(base.contains(&group_line) && base.contains(&admin_line) && base.contains("/state\""));
    let mut results: Vec<(usize, f64, f64, f64)> = Vec::new();
    for round in 0..rounds * 2 {
        let instances = 1 + round % 2;
        let procs: Vec<(Proc, u16)> = (0..instances)
            .map(|i| {
                let admin = free_port();
                let text = base
                    .replace(&group_line, &format!("group_id = \"{}-scale-{round}\"", setup.prefix))
                    .replace(&admin_line, &format!("admin_listen = \"127.0.0.1:{admin}\""))
                    .replace("/state\"", &format!("/state-{round}-{i}\""));
                let cfg = setup.scratch.file(&format!("config-scale-{round}-{i}.toml"), &text);
                (Proc::start("consume", &["consume", "--config", cfg.to_str().unwrap()], &setup.scratch.0), admin)
            })
            .collect();
        let t = Instant::now();
        let c = http();
        let delivered = |admin: u16| -> Option<u64> {
            let s: Value = c.get(format!("http://127.0.0.1:{admin}/status")).send().ok()?.json().ok()?;
            s["agent_states_delivered"].as_u64()
        };
        // When every instance has delivered (all have partitions): the steady rate counts from there.
        let mut all_in: Option<(f64, u64)> = None;
        let per = poll("every state delivered", Duration::from_secs(600), || {
            let per: Vec<u64> = procs.iter().map(|(_, a)| delivered(*a).unwrap_or(0)).collect();
            if all_in.is_none() && per.iter().all(|d| *d > 0) {
                all_in = Some((t.elapsed().as_secs_f64(), per.iter().sum()));
            }
            (per.iter().sum::<u64>() >= n as u64).then_some(per)
        });
        let secs = t.elapsed().as_secs_f64();
        let steady = all_in
            .filter(|(at, done)| secs - at > 0.5 && (*done as usize) < n / 2)
            .map(|(at, done)| (n as f64 - done as f64) / (secs - at));
        let cpu: Vec<f64> = procs.iter().map(|(p, _)| cpu_seconds(p.child.id())).collect();
        let rss: Vec<f64> = procs.iter().map(|(p, _)| rss_mb(p.child.id())).collect();
        let cpu_total: f64 = cpu.iter().sum();
        println!(
            "scale: {instances} instance(s), {n} states on 12 partitions: {secs:.2} s from start = {:.0}/s, {} once every instance delivered; delivered per instance {per:?}; CPU {cpu:?} s ({:.1} us a state); RSS {rss:.0?} MB",
            n as f64 / secs,
            steady.map_or("-".to_string(), |r| format!("{r:.0}/s")),
            cpu_total / n as f64 * 1e6
        );
        results.push((
            instances,
            steady.unwrap_or(n as f64 / secs),
            cpu_total / n as f64 * 1e6,
            rss.iter().sum::<f64>() / rss.len() as f64,
        ));
        for (mut p, _) in procs {
            p.terminate();
        }
    }
    for k in [1, 2] {
        let pick = |f: fn(&(usize, f64, f64, f64)) -> f64| -> Vec<f64> {
            results.iter().filter(|r| r.0 == k).map(f).collect()
        };
        println!("scale: {k} instance(s), {rounds} runs (interleaved with the other count):");
        print_figures(&[
            ("states/s once every instance delivered:", &pick(|r| r.1), "/s", 0.25),
            ("CPU a state (us):", &pick(|r| r.2), "", 0.25),
            ("RSS an instance at the end:", &pick(|r| r.3), " MB", 0.25),
        ]);
    }
}
