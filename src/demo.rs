//! `acd-bridge demo`: the whole path in one process with no setup. librdkafka's in-process mock
//! cluster stands in for Kafka, `wfm-sim` for the WFM, and a simulated ACD posts agent states and
//! contacts to the real ingest API, with duplicates and reordering thrown in as real ACDs do.
//! At the end the WFM's state is checked against what the ACD generated, computed here from the
//! generator's output and not by the consumer.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use acd_core::Config;
use acd_producer::simulator::{SimEvent, Simulator};
use acd_schemas::records::AgentState;
use acd_schemas::time::{format_millis, now_millis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rdkafka::mocking::MockCluster;
use tokio_util::sync::CancellationToken;

/// `acd-bridge demo` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Simulated agents.
    #[arg(long, default_value_t = 40)]
    pub agents: u32,
    /// Simulated queues.
    #[arg(long, default_value_t = 4)]
    pub queues: u32,
    /// Simulated minutes of contact-center traffic.
    #[arg(long, default_value_t = 30)]
    pub minutes: u64,
    /// Simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 90.0)]
    pub speed: f64,
    /// Seed of the simulated ACD.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The ACD: `sim` (the built-in simulator posting to the push API), `livevox` (the LiveVox
    /// connector reading livevox-sim's agent event feed) or `cms` (the Avaya CMS connector fed by
    /// cms-sim through the real-time socket, call history files and historical exports).
    #[arg(long, default_value = "sim", value_parser = ["sim", "livevox", "cms"])]
    pub acd: String,
}

/// What the simulated ACD sent.
#[derive(Default)]
struct Sent {
    states_generated: usize,
    duplicates_injected: usize,
    states_posted: usize,
    contacts_posted: usize,
    /// Every contact posted, for the interval check.
    contacts: Vec<acd_schemas::records::Contact>,
    /// Each agent's distinct states in the order they reached Kafka.
    expected: BTreeMap<String, Vec<(i64, String)>>,
    distinct: HashSet<(String, i64)>,
}

pub async fn run(args: DemoArgs) -> ExitCode {
    if std::env::var_os("ACD_BRIDGE_LOG").is_some() {
        let filter = tracing_subscriber::EnvFilter::from_env("ACD_BRIDGE_LOG");
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let result = match args.acd.as_str() {
        "livevox" => demo_livevox(args).await,
        "cms" => demo_cms(args).await,
        _ => demo(args).await,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("\nacd-bridge demo: {e:#}");
            println!("demo check: FAIL ({e})");
            ExitCode::from(1)
        }
    }
}

async fn demo(args: DemoArgs) -> anyhow::Result<bool> {
    if !args.speed.is_finite() || args.speed <= 0.0 || args.agents == 0 || args.minutes == 0 {
        anyhow::bail!("--speed, --agents and --minutes must be positive");
    }
    let started = Instant::now();
    let shutdown = CancellationToken::new();
    let mock = MockCluster::new(1)?;
    let state_dir = std::env::temp_dir().join(format!("acd-bridge-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state_dir);

    let wfm = acd_emulators::wfm::start(acd_emulators::wfm::SimArgs::default(), shutdown.clone()).await?;
    let ingest = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ingest_addr = ingest.local_addr()?;
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;

    let mut cfg = embedded(&mock, &wfm);
    cfg.consumer.state_dir = state_dir.display().to_string();
    cfg.consumer.group_id = "acd-bridge-demo".into();
    // Close the last intervals a second after the simulated ACD falls silent.
    cfg.interval.idle_close_seconds = 1;
    create_topics(&mock, &cfg)?;

    println!(
        "acd-bridge demo: {} agents, {} queues, {} simulated minutes at {}x",
        args.agents, args.queues, args.minutes, args.speed
    );
    println!("  Kafka    in-process mock cluster at {}", cfg.kafka.brokers);
    println!("  WFM      wfm-sim at http://{} (open it in a browser while the demo runs)", wfm.addr);
    println!("  ingest   http://{ingest_addr}/v1/...");

    let producer = tokio::spawn(acd_producer::serve(cfg.clone(), ingest, shutdown.clone()));
    let consumer = tokio::spawn(acd_consumer::serve(cfg.clone(), admin, shutdown.clone()));

    let http = reqwest::Client::new();
    wait_ready(&http, &format!("http://{ingest_addr}/healthz")).await?;
    let sent = simulate(&args, &http, &format!("http://{ingest_addr}"), &wfm).await?;

    // Let the consumer drain, then compare.
    let deadline = Instant::now() + Duration::from_secs(60);
    let want = sent.distinct.len();
    let mut got = received_states(&wfm);
    while got.len() < want && Instant::now() < deadline {
        progress(1.0, &sent, got.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = received_states(&wfm);
    }
    // A moment more to catch anything sent twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    got = received_states(&wfm);
    progress(1.0, &sent, got.len());
    eprintln!();
    // Intervals closed by now (end + grace passed, with a margin), computed from what was posted.
    let closed_before = now_millis() - cfg.interval.grace_seconds as i64 * 1000 - 5_000;
    let want_rows = expected_queue_rows(&sent.contacts, cfg.interval.minutes as i64 * 60_000, closed_before);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut rows = queue_rows(&wfm, &want_rows);
    while rows != want_rows && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        rows = queue_rows(&wfm, &want_rows);
    }
    shutdown.cancel();
    let _ = producer.await;
    let _ = consumer.await;
    let _ = std::fs::remove_dir_all(&state_dir);
    Ok(report(&sent, &got, (&want_rows, &rows), started.elapsed()))
}

/// (interval start, queue) -> (contacts received, handle time in ms rounded), for intervals that
/// ended before `closed_before`.
type QueueFigures = std::collections::BTreeMap<(i64, String), (i64, i64)>;

fn expected_queue_rows(contacts: &[acd_schemas::records::Contact], length: i64, closed_before: i64) -> QueueFigures {
    let mut out = QueueFigures::new();
    for c in contacts {
        let start = c.ended_utc.div_euclid(length) * length;
        if start + length > closed_before {
            continue;
        }
        let e = out.entry((start, c.queue_value.clone())).or_default();
        e.0 += 1;
        if c.outcome == acd_schemas::records::Outcome::Handled {
            e.1 += ((c.talk_sec + c.hold_sec + c.work_sec) * 1000.0).round() as i64;
        }
    }
    out
}

/// The WFM's queue rows for the intervals the check covers.
fn queue_rows(wfm: &acd_emulators::wfm::Running, want: &QueueFigures) -> QueueFigures {
    let starts: HashSet<i64> = want.keys().map(|(s, _)| *s).collect();
    let store = wfm.store.lock().expect("wfm store");
    store
        .queue_rows
        .iter()
        .filter_map(|((start, queue), r)| {
            let t = acd_schemas::time::parse_rfc3339(start).ok()?;
            (starts.contains(&t) && r.contacts_received > 0)
                .then(|| ((t, queue.clone()), (r.contacts_received, (r.handle_time * 1000.0).round() as i64)))
        })
        .collect()
}

async fn wait_ready(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!("the ingest API did not come up within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn received_states(wfm: &acd_emulators::wfm::Running) -> Vec<acd_schemas::wfm::AgentStateJson> {
    wfm.store.lock().expect("wfm store").agent_states.to_vec()
}

fn state_json(s: &AgentState) -> serde_json::Value {
    serde_json::json!({"loginId": s.login_id, "acdId": s.acd_id, "eventCode": s.event_code,
        "reasonCode": s.reason_code, "eventUtcTime": format_millis(s.event_utc_time)})
}

async fn post(http: &reqwest::Client, url: &str, body: &serde_json::Value) -> anyhow::Result<()> {
    // The ingest API may answer 503 while Kafka catches up: retry, as an ACD would.
    for _ in 0..100 {
        let r = http.post(url).json(body).send().await?;
        match r.status().as_u16() {
            202 => return Ok(()),
            503 => tokio::time::sleep(Duration::from_millis(200)).await,
            s => anyhow::bail!("ingest answered {s}: {}", r.text().await.unwrap_or_default()),
        }
    }
    anyhow::bail!("ingest kept answering 503")
}

async fn simulate(
    args: &DemoArgs,
    http: &reqwest::Client,
    base: &str,
    wfm: &acd_emulators::wfm::Running,
) -> anyhow::Result<Sent> {
    // The simulated window ends on an interval boundary more than the grace period ago, so that
    // every interval it touches is closed (by the idle rule) when the demo checks them.
    let length = Config::default().interval.minutes as i64 * 60_000;
    let grace = Config::default().interval.grace_seconds as i64 * 1000;
    let end = (now_millis() - grace - 10_000).div_euclid(length) * length;
    let start = end - args.minutes as i64 * 60_000;
    let mut sim = Simulator::new("demo", args.agents, args.queues, args.seed, start);
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed ^ 0x5eed);
    let began = Instant::now();
    let mut sent = Sent::default();
    let mut resend: Vec<AgentState> = Vec::new();
    loop {
        let sim_now = start + (began.elapsed().as_secs_f64() * args.speed * 1000.0) as i64;
        let until = sim_now.min(end);
        let mut states = Vec::new();
        let mut contacts = Vec::new();
        for e in sim.advance(until) {
            match e {
                SimEvent::State(s) => states.push(s),
                SimEvent::Contact(c) => contacts.push(c),
            }
        }
        sent.states_generated += states.len();
        // Real ACDs resend: some states come again in a later request.
        let mut batch: Vec<AgentState> = std::mem::take(&mut resend);
        sent.duplicates_injected += batch.len();
        for s in &states {
            if rng.gen_bool(0.04) {
                resend.push(s.clone());
            }
        }
        batch.extend(states);
        // ... and not always in order within a request.
        if batch.len() > 3 && rng.gen_bool(0.5) {
            let i = rng.gen_range(0..batch.len() - 1);
            batch.swap(i, i + 1);
        }
        if rng.gen_bool(0.1) {
            batch.shuffle(&mut rng);
        }
        for s in &batch {
            let key = (format!("{}/{}", s.acd_id, s.login_id), s.event_utc_time);
            if sent.distinct.insert(key.clone()) {
                sent.expected.entry(key.0).or_default().push((s.event_utc_time, s.event_code.clone()));
            }
        }
        for chunk in batch.chunks(500) {
            let body = serde_json::json!({"agentStateList": chunk.iter().map(state_json).collect::<Vec<_>>()});
            post(http, &format!("{base}/v1/agent-states"), &body).await?;
            sent.states_posted += chunk.len();
        }
        if !contacts.is_empty() {
            let body = serde_json::json!({"contacts": contacts.iter().map(contact_json).collect::<Vec<_>>()});
            post(http, &format!("{base}/v1/contacts"), &body).await?;
            sent.contacts_posted += contacts.len();
            sent.contacts.extend(contacts);
        }
        let delivered = wfm.store.lock().expect("wfm store").agent_states.len();
        progress((until - start) as f64 / (end - start) as f64, &sent, delivered);
        if until >= end && resend.is_empty() {
            return Ok(sent);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn contact_json(c: &acd_schemas::records::Contact) -> serde_json::Value {
    serde_json::json!({"acdId": c.acd_id, "contactId": c.contact_id, "queueValue": c.queue_value,
        "queueName": c.queue_name, "isOutbound": c.is_outbound, "outcome": c.outcome,
        "arrivedUtc": format_millis(c.arrived_utc), "endedUtc": format_millis(c.ended_utc),
        "queueDelaySec": c.queue_delay_sec, "talkSec": c.talk_sec, "holdSec": c.hold_sec, "workSec": c.work_sec,
        "agentValue": c.agent_value, "agentId": c.agent_id, "party": c.party})
}

fn progress(fraction: f64, sent: &Sent, delivered: usize) {
    let width = 30;
    let done = ((fraction.clamp(0.0, 1.0)) * width as f64).round() as usize;
    eprint!(
        "\r  [{}{}] {:>3.0}%  states posted {:>7}  delivered to WFM {:>7}/{:<7} contacts posted {:>6} ",
        "#".repeat(done),
        ".".repeat(width - done),
        fraction * 100.0,
        sent.states_posted,
        delivered,
        sent.distinct.len(),
        sent.contacts_posted
    );
    let _ = std::io::stderr().flush();
}

fn report(
    sent: &Sent,
    got: &[acd_schemas::wfm::AgentStateJson],
    (want_rows, rows): (&QueueFigures, &QueueFigures),
    took: Duration,
) -> bool {
    let mut per_agent: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    let mut seen = HashSet::new();
    let mut twice = 0usize;
    for s in got {
        let t = acd_schemas::time::parse_rfc3339(&s.event_utc_time).unwrap_or_default();
        let key = format!("{}/{}", s.acd_id, s.login_id);
        if !seen.insert((key.clone(), t)) {
            twice += 1;
            continue;
        }
        per_agent.entry(key).or_default().push((t, s.event_code.clone()));
    }
    let missing = sent.distinct.iter().filter(|k| !seen.contains(*k)).count();
    let extra = seen.iter().filter(|k| !sent.distinct.contains(*k)).count();
    let out_of_order = sent.expected.iter().filter(|(agent, want)| per_agent.get(*agent) != Some(want)).count();
    let row =
        |name: &str, acd: String, kafka: String, wfm: String| println!("  {name:<28}{acd:>12}{kafka:>12}{wfm:>12}");
    println!();
    row("", "ACD".into(), "ingest".into(), "WFM".into());
    row("agent states generated", sent.states_generated.to_string(), String::new(), String::new());
    row("duplicates re-sent by ACD", sent.duplicates_injected.to_string(), String::new(), String::new());
    row("agent states posted", String::new(), sent.states_posted.to_string(), String::new());
    row("distinct agent states", sent.distinct.len().to_string(), String::new(), seen.len().to_string());
    row(
        "duplicates removed",
        String::new(),
        String::new(),
        (sent.states_posted - got.len().min(sent.states_posted)).to_string(),
    );
    row("delivered twice", String::new(), String::new(), twice.to_string());
    row("missing at the WFM", String::new(), String::new(), missing.to_string());
    row("agents out of order", String::new(), String::new(), out_of_order.to_string());
    row("contacts posted", sent.contacts_posted.to_string(), sent.contacts_posted.to_string(), String::new());
    let counted = |f: &QueueFigures| f.values().map(|v| v.0).sum::<i64>().to_string();
    let intervals = |f: &QueueFigures| f.keys().map(|(s, _)| *s).collect::<HashSet<_>>().len().to_string();
    row("closed intervals", intervals(want_rows), String::new(), intervals(rows));
    row("queue rows in them", want_rows.len().to_string(), String::new(), rows.len().to_string());
    row("contacts counted in them", counted(want_rows), String::new(), counted(rows));
    let rows_ok = want_rows == rows && !want_rows.is_empty();
    row(
        "queue rows that differ",
        String::new(),
        String::new(),
        want_rows.iter().filter(|(k, v)| rows.get(*k) != Some(*v)).count().to_string(),
    );
    println!("  took {:.1} s", took.as_secs_f64());
    let pass = missing == 0 && extra == 0 && twice == 0 && out_of_order == 0 && !sent.distinct.is_empty() && rows_ok;
    if pass {
        println!(
            "demo check: PASS {} distinct agent states of {} agents delivered exactly once and in order; {} duplicates removed; \
             {} queue rows of {} closed intervals match the contacts",
            seen.len(),
            per_agent.len(),
            sent.states_posted - got.len(),
            want_rows.len(),
            intervals(want_rows)
        );
    } else {
        println!(
            "demo check: FAIL missing {missing}, unexpected {extra}, delivered twice {twice}, agents out of order {out_of_order}, \
             queue rows expected {} got {} (closed intervals must match the contacts)",
            want_rows.len(),
            rows.len()
        );
    }
    pass
}

/// `demo --acd livevox`: livevox-sim plays `--minutes` of agent events ending before the last
/// closed interval; `produce` reads them through the LiveVox connector (session, feed, saved
/// token); the check is every served event at the WFM exactly once, and an agent row for every
/// agent that was logged in.
async fn demo_livevox(args: DemoArgs) -> anyhow::Result<bool> {
    if args.agents == 0 || args.minutes == 0 {
        anyhow::bail!("--agents and --minutes must be positive");
    }
    let started = Instant::now();
    let shutdown = CancellationToken::new();
    let mock = MockCluster::new(1)?;
    let dir = std::env::temp_dir().join(format!("acd-bridge-demo-lv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let wfm = acd_emulators::wfm::start(acd_emulators::wfm::SimArgs::default(), shutdown.clone()).await?;
    let length = Config::default().interval.minutes as i64 * 60_000;
    let end = (now_millis() - 130_000).div_euclid(length) * length;
    let start = end - args.minutes as i64 * 60_000;
    // About one state change per agent and simulated minute.
    let events = args.agents as u64 * args.minutes;
    let lv_args = acd_emulators::livevox::LiveVoxArgs {
        agents: args.agents,
        seed: args.seed,
        rate: 0.0,
        events,
        start_ms: Some(start),
        spacing_ms: (end - start - 60_000) / events.max(1) as i64,
        answer_events: 500,
        ..Default::default()
    };
    let lv = acd_emulators::livevox::start(lv_args.clone(), shutdown.clone()).await?;
    let ingest = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let token_file = dir.join("lv-access");
    let password_file = dir.join("lv-password");
    std::fs::write(&token_file, &lv_args.access_token)?;
    std::fs::write(&password_file, &lv_args.password)?;
    let mut cfg = embedded(&mock, &wfm);
    cfg.consumer.state_dir = dir.join("state").display().to_string();
    cfg.consumer.group_id = "acd-bridge-demo-livevox".into();
    cfg.interval.idle_close_seconds = 1;
    cfg.connectors.livevox = Some(acd_core::config::LiveVoxConfig {
        enabled: true,
        acd_id: "livevox".into(),
        base_url: format!("http://{}", lv.addr),
        client_name: lv_args.client_name.clone(),
        user_name: lv_args.user_name.clone(),
        access_token: acd_core::Secret(lv_args.access_token.clone()),
        password: acd_core::Secret(lv_args.password.clone()),
        access_token_file: token_file.display().to_string(),
        password_file: password_file.display().to_string(),
        state_dir: dir.join("livevox-state").display().to_string(),
        ..Default::default()
    });
    create_topics(&mock, &cfg)?;
    println!(
        "acd-bridge demo --acd livevox: {} agents, {} agent events over {} minutes",
        args.agents, events, args.minutes
    );
    println!("  Kafka    in-process mock cluster at {}", cfg.kafka.brokers);
    println!("  LiveVox  livevox-sim at http://{} (its page shows the feed calls)", lv.addr);
    println!("  WFM      wfm-sim at http://{}", wfm.addr);
    let producer = tokio::spawn(acd_producer::serve(cfg.clone(), ingest, shutdown.clone()));
    let consumer = tokio::spawn(acd_consumer::serve(cfg.clone(), admin, shutdown.clone()));
    let truth = |lv: &acd_emulators::livevox::Running| -> (usize, HashSet<(String, i64)>) {
        let w = lv.world.lock().expect("livevox world");
        let set = w
            .truth()
            .iter()
            .map(|t| (t["loginId"].as_str().unwrap_or("").to_string(), t["eventUtcTime"].as_i64().unwrap_or(0)))
            .collect();
        (w.events.len(), set)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let (generated, mut want) = truth(&lv);
    let mut got = received_states(&wfm);
    while (want.len() < generated || got.len() < want.len()) && Instant::now() < deadline {
        eprint!("\r  served by LiveVox {:>7} of {generated}   delivered to WFM {:>7}", want.len(), got.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
        want = truth(&lv).1;
        got = received_states(&wfm);
    }
    eprintln!("\r  served by LiveVox {:>7} of {generated}   delivered to WFM {:>7}", want.len(), got.len());
    // The agent rows of the closed intervals.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let n = wfm.store.lock().expect("wfm store").to_json()["agentSystemPerformanceReport"]
            .as_array()
            .map_or(0, Vec::len);
        if n > 0 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let received: Vec<(String, i64)> = got
        .iter()
        .filter(|s| s.acd_id == "livevox")
        .map(|s| (s.login_id.clone(), acd_schemas::time::parse_rfc3339(&s.event_utc_time).unwrap_or_default()))
        .collect();
    let distinct: HashSet<(String, i64)> = received.iter().cloned().collect();
    let twice = received.len() - distinct.len();
    let missing = want.iter().filter(|k| !distinct.contains(*k)).count();
    let extra = distinct.iter().filter(|k| !want.contains(*k)).count();
    let (logins, tokens) = {
        let w = lv.world.lock().expect("livevox world");
        (w.logins, w.served.len())
    };
    shutdown.cancel();
    let _ = producer.await;
    let _ = consumer.await;
    let _ = std::fs::remove_dir_all(&dir);
    println!("  {:<34}{:>10}", "agent events served by LiveVox", want.len());
    println!("  {:<34}{:>10}", "feed calls (logins)", format!("{tokens} ({logins})"));
    println!("  {:<34}{:>10}", "agent states at the WFM", distinct.len());
    println!("  {:<34}{:>10}", "delivered twice", twice);
    println!("  {:<34}{:>10}", "missing at the WFM", missing);
    println!("  {:<34}{:>10}", "agent interval rows at the WFM", rows);
    println!("  took {:.1} s", started.elapsed().as_secs_f64());
    let pass = missing == 0 && extra == 0 && twice == 0 && !want.is_empty() && want.len() == generated && rows > 0;
    if pass {
        println!(
            "demo check: PASS {} LiveVox agent events delivered to the WFM exactly once; {rows} agent interval rows computed from them",
            want.len()
        );
    } else {
        println!(
            "demo check: FAIL served {} of {generated}, missing {missing}, unexpected {extra}, delivered twice {twice}, agent rows {rows}",
            want.len()
        );
    }
    Ok(pass)
}

async fn demo_cms(args: DemoArgs) -> anyhow::Result<bool> {
    if args.agents == 0 || args.minutes == 0 {
        anyhow::bail!("--agents and --minutes must be positive");
    }
    let started = Instant::now();
    let shutdown = CancellationToken::new();
    let mock = MockCluster::new(1)?;
    let dir = std::env::temp_dir().join(format!("acd-bridge-demo-cms-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let wfm = acd_emulators::wfm::start(acd_emulators::wfm::SimArgs::default(), shutdown.clone()).await?;
    let ingest = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let rt = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let (ech, hist) = (dir.join("ech"), dir.join("hist"));
    let mut cfg = embedded(&mock, &wfm);
    cfg.consumer.state_dir = dir.join("state").display().to_string();
    cfg.consumer.group_id = "acd-bridge-demo-cms".into();
    cfg.interval.idle_close_seconds = 1;
    cfg.interval.zero_fill_days = 0;
    cfg.connectors.avaya_cms = Some(acd_core::config::AvayaCmsConfig {
        enabled: true,
        acd_id: "cms".into(),
        rt_listen: rt.to_string(),
        rt_refresh_seconds: 5,
        ech_dir: ech.display().to_string(),
        ech_settle_ms: 200,
        hist_dir: hist.display().to_string(),
        ..Default::default()
    });
    create_topics(&mock, &cfg)?;
    let sim_args = acd_emulators::cms::CmsArgs {
        rt: rt.to_string(),
        refresh_seconds: 5,
        ha: true,
        faults: true,
        snapshot_ms: 10,
        ech_dir: ech.display().to_string(),
        hist_dir: hist.display().to_string(),
        agents: args.agents,
        splits: args.queues.max(1),
        minutes: args.minutes,
        seed: args.seed,
        ..Default::default()
    };
    println!(
        "acd-bridge demo --acd cms: {} agents, {} splits, {} minutes of Avaya CMS",
        args.agents, sim_args.splits, args.minutes
    );
    println!("  Kafka    in-process mock cluster at {}", cfg.kafka.brokers);
    println!(
        "  CMS      cms-sim: real-time socket to {rt} (two connections), call history in {}, exports in {}",
        ech.display(),
        hist.display()
    );
    println!("  WFM      wfm-sim at http://{}", wfm.addr);
    let producer = tokio::spawn(acd_producer::serve(cfg.clone(), ingest, shutdown.clone()));
    let consumer = tokio::spawn(acd_consumer::serve(cfg.clone(), admin, shutdown.clone()));
    let truth = acd_emulators::cms::run(sim_args).await?;
    let want_states: HashSet<(String, String, String, String)> = truth
        .agent_states
        .iter()
        .map(|s| (s.login_id.clone(), s.event_code.clone(), s.reason_code.clone(), format_millis(s.event_utc_time)))
        .collect();
    // (start, queue) -> (contacts received, handle time in ms) from the simulator's own arithmetic.
    let want_rows: QueueFigures = truth
        .queue_rows
        .iter()
        .map(|q| ((q.start_ms, q.queue_value.clone()), (q.contacts_received, (q.handle_time * 1000.0).round() as i64)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (states, rows) = loop {
        let states: Vec<_> = received_states(&wfm).into_iter().filter(|s| s.acd_id == "cms").collect();
        let rows = queue_rows(&wfm, &want_rows);
        eprint!(
            "\r  agent states at the WFM {:>6} of {:<6}   queue rows {:>4} of {:<4}",
            states.len(),
            want_states.len(),
            rows.len(),
            want_rows.len()
        );
        if (states.len() >= want_states.len() && rows == want_rows) || Instant::now() > deadline {
            break (states, rows);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!();
    let got_states: HashSet<(String, String, String, String)> = states
        .iter()
        .map(|s| (s.login_id.clone(), s.event_code.clone(), s.reason_code.clone(), s.event_utc_time.clone()))
        .collect();
    let twice = states.len() - got_states.len();
    let missing = want_states.difference(&got_states).count();
    let extra = got_states.difference(&want_states).count();
    let rows_wrong = want_rows.iter().filter(|(k, v)| rows.get(*k) != Some(*v)).count();
    let processed = |d: &std::path::Path| std::fs::read_dir(d.join("processed")).map(|r| r.count()).unwrap_or(0);
    let (ech_done, hist_done) = (processed(&ech), processed(&hist));
    shutdown.cancel();
    let _ = producer.await;
    let _ = consumer.await;
    let _ = std::fs::remove_dir_all(&dir);
    println!("  {:<40}{:>10}", "real-time snapshots (two connections)", truth.snapshots);
    println!("  {:<40}{:>10}", "agent states expected", want_states.len());
    println!("  {:<40}{:>10}", "agent states at the WFM", got_states.len());
    println!("  {:<40}{:>10}", "delivered twice / missing / unexpected", format!("{twice}/{missing}/{extra}"));
    println!(
        "  {:<40}{:>10}",
        "call segments (not ACD contacts)",
        format!("{} ({})", truth.segments, truth.segments_skipped)
    );
    println!("  {:<40}{:>10}", "call history files processed", format!("{ech_done} of {}", truth.ech_files.len()));
    println!("  {:<40}{:>10}", "export files processed", format!("{hist_done} of {}", truth.hist_files.len()));
    println!(
        "  {:<40}{:>10}",
        "queue rows as computed from CMS data",
        format!("{} of {}", want_rows.len() - rows_wrong, want_rows.len())
    );
    println!("  took {:.1} s", started.elapsed().as_secs_f64());
    let pass = twice == 0 && missing == 0 && extra == 0 && rows_wrong == 0 && !want_rows.is_empty();
    if pass {
        println!(
            "demo check: PASS {} CMS agent states delivered exactly once; {} queue rows equal the figures computed from the call records and exports",
            want_states.len(),
            want_rows.len()
        );
    } else {
        println!(
            "demo check: FAIL states missing {missing}, unexpected {extra}, twice {twice}; queue rows wrong {rows_wrong} of {}",
            want_rows.len()
        );
    }
    Ok(pass)
}

/// The configuration of a demo: the embedded Kafka and the WFM emulator.
fn embedded<C: rdkafka::ClientContext>(mock: &MockCluster<'_, C>, wfm: &acd_emulators::wfm::Running) -> Config {
    let mut cfg = Config::default();
    cfg.kafka.brokers = mock.bootstrap_servers();
    cfg.kafka.partitions = 3;
    cfg.wfm.base_url = format!("http://{}", wfm.addr);
    cfg.wfm.access_key_id = "demo".into();
    cfg.wfm.access_key_secret = acd_core::Secret("demo-secret".into());
    cfg
}

/// Every topic of `cfg` on the embedded Kafka.
fn create_topics<C: rdkafka::ClientContext>(mock: &MockCluster<'_, C>, cfg: &Config) -> anyhow::Result<()> {
    let t = &cfg.topics;
    for name in [&t.agent_state, &t.contact, &t.interval, &t.agent_activity, &t.connector_status, &t.dlq] {
        mock.create_topic(name, cfg.kafka.partitions, 1)?;
    }
    Ok(())
}
