//! The load harness: acd-bridge beside librdkafka's raw speed (`kcat`) on the same machine, broker
//! and records. Not a test: it measures and prints, it asserts nothing.
//!
//!   cargo bench --bench pipeline -- ingest    push-ingest: batches of 500 agent states vs kcat -P
//!   cargo bench --bench pipeline -- consume   consumer on 1,000,000 pre-filled states vs kcat -C
//!   cargo bench --bench pipeline -- latency   ingest 202 to WFM receipt at 2,000 and 20,000/s
//!   cargo bench --bench pipeline -- contacts  interval pipeline on 1,000,000 contacts vs kcat -C
//!   cargo bench --bench pipeline -- livevox   LiveVox feed answers of 1,000 events to Kafka
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

fn kcat_produce(brokers: &str, topic: &str, records: &[AgentState]) -> f64 {
    let codec = Codec::default();
    let path = std::env::temp_dir().join(unique("kcat-in"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let (kd, md) = ("|~K~|", "|~RS~|");
    let mut n = 0;
    for s in records {
        let v = codec.encode(Stream::AgentState, s).unwrap();
        if v.windows(md.len()).any(|w| w == md.as_bytes()) {
            continue;
        }
        f.write_all(s.key().as_bytes()).unwrap();
        f.write_all(kd.as_bytes()).unwrap();
        f.write_all(&v).unwrap();
        f.write_all(md.as_bytes()).unwrap();
        n += 1;
    }
    f.flush().unwrap();
    drop(f);
    let t = Instant::now();
    let st = Command::new("kcat")
        .args(["-P", "-b", brokers, "-t", topic, "-K", kd, "-D", md, "-X", "enable.idempotence=true", "-X", "acks=all"])
        .args(["-X", "linger.ms=5", "-X", "compression.codec=lz4", "-l", path.to_str().unwrap()])
        .status()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    assert!(st.success());
    n as f64 / secs
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
    let n: usize = std::env::var("BENCH_INGEST_STATES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let setup = Setup::new("bench-ingest");
    let cfg = setup.config("");
    let _p = Proc::start("produce", &["produce", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
    wait_ok(&setup.ingest("/healthz"), Duration::from_secs(60));
    // An agent changes state every minute or so.
    let records = states(n, 1000, 1_714_000_000_000, 60_000);
    let bodies: Arc<Vec<String>> = Arc::new(
        records
            .chunks(500)
            .map(|c| json!({"agentStateList": c.iter().map(as_json).collect::<Vec<_>>()}).to_string())
            .collect(),
    );
    let url = setup.ingest("/v1/agent-states");
    // kcat first as well, so that neither side meets a broker still warming up (its JIT), and
    // the best of its runs before and after ours is the baseline.
    let kcat_topic = setup.topic("kcat-produce");
    create_topic(&setup.brokers, &kcat_topic, 3);
    let kcat_before = kcat_produce(&setup.brokers, &kcat_topic, &records);
    // Warm up: topic metadata, connections.
    http().post(&url).header("Content-Type", "application/json").body(bodies[0].clone()).send().unwrap();
    let next = Arc::new(AtomicUsize::new(1));
    let t = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (bodies, next, url) = (bodies.clone(), next.clone(), url.clone());
            std::thread::spawn(move || {
                let c = http();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= bodies.len() {
                        return;
                    }
                    let r =
                        c.post(&url).header("Content-Type", "application/json").body(bodies[i].clone()).send().unwrap();
                    assert_eq!(r.status().as_u16(), 202);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let ours = (bodies.len() - 1) as f64 * 500.0 / secs;
    let kcat = kcat_before.max(kcat_produce(&setup.brokers, &kcat_topic, &records));
    let kcat = kcat.max(kcat_produce(&setup.brokers, &kcat_topic, &records));
    println!(
        "ingest: {ours:.0} agent states/s accepted (HTTP batches of 500, 8 clients, acks=all, idempotent) | kcat -P {kcat:.0}/s (best of 3, before and after) | ratio {:.2}",
        ours / kcat
    );
}

/// Starts wfm-sim, then `consume`; returns both and the instant `consume` was started.
fn wfm_and_consumer(setup: &Setup) -> (Proc, Proc, Instant) {
    let listen = format!("127.0.0.1:{}", setup.wfm_port);
    let wfm = Proc::start("wfm-sim", &["wfm-sim", "--listen", &listen], &setup.scratch.0);
    wait_ok(&setup.wfm("/sim/state"), Duration::from_secs(30));
    let cfg = setup.config("");
    let t = Instant::now();
    let consume = Proc::start("consume", &["consume", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
    (wfm, consume, t)
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

fn bench_consume() {
    let n: usize = std::env::var("BENCH_STATES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let setup = Setup::new("bench-consume");
    let topic = setup.topic("acd.agent-state.v1");
    create_topic(&setup.brokers, &topic, 6);
    prefill(&setup.brokers, &topic, n);
    let kcat_before = kcat_consume(&setup.brokers, &topic, n, 3);
    let (wfm, consumer, t) = wfm_and_consumer(&setup);
    let c = http();
    let mut first: Option<f64> = None;
    poll("the consumer to deliver everything", Duration::from_secs(1800), || {
        let s: Value = c.get(setup.admin("/status")).send().ok()?.json().ok()?;
        let delivered = s["agent_states_delivered"].as_u64()? as usize;
        if delivered > 0 && first.is_none() {
            first = Some(t.elapsed().as_secs_f64());
        }
        (delivered >= n).then_some(())
    });
    let secs = t.elapsed().as_secs_f64();
    let ours = n as f64 / secs;
    let steady = n as f64 / (secs - first.unwrap_or(0.0));
    let rss = Command::new("ps").args(["-o", "rss=", "-p", &consumer.child.id().to_string()]).output().unwrap();
    let rss_mb = String::from_utf8_lossy(&rss.stdout).trim().parse::<f64>().unwrap_or(0.0) / 1024.0;
    drop((consumer, wfm));
    let kcat = kcat_before.max(kcat_consume(&setup.brokers, &topic, n, 2));
    println!(
        "consume: {n} agent states in {secs:.2} s = {ours:.0}/s from start ({steady:.0}/s after the first delivery), \
         decode+dedup+WFM POST+checkpoint | kcat -C {kcat:.0}/s (best of 5, before and after) | ratio {:.2} | consumer RSS {rss_mb:.0} MB",
        ours / kcat
    );
}

fn bench_latency() {
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
    for rate in [2_000usize, 20_000] {
        // Event time is the wall clock, as from a live ACD.
        let base = acd_schemas::time::now_millis();
        let seconds = 15;
        let batch = if rate <= 2_000 { 100 } else { 500 };
        let per_sec = rate / batch;
        let total = rate * seconds;
        // Event time runs with the wall clock: 2,000 agents share the offered rate.
        let records = states(total, 2000, base, (2000 * 1000 / rate) as i64);
        let bodies: Vec<(i64, String)> = records
            .chunks(batch)
            .map(|c| {
                (c[0].event_utc_time, json!({"agentStateList": c.iter().map(as_json).collect::<Vec<_>>()}).to_string())
            })
            .collect();
        let acked = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<String, i64>::new()));
        let start = Instant::now();
        let interval = Duration::from_secs_f64(1.0 / per_sec as f64);
        let mut handles = Vec::new();
        for (i, (_, body)) in bodies.into_iter().enumerate() {
            let due = start + interval * i as u32;
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d); // pacing the offered load, not waiting for a result
            }
            let (url, acked) = (url.clone(), acked.clone());
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
        let lat = poll("every state at the WFM", Duration::from_secs(120), || {
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
        if std::env::var_os("BENCH_LATENCY_DETAIL").is_some() {
            let s: Value = http().get(setup.wfm("/sim/state")).send().unwrap().json().unwrap();
            let list = s["agentStates"].as_array().unwrap();
            let recv = s["agentStatesReceivedMs"].as_array().unwrap();
            let mut slow: Vec<(i64, i64, String)> = Vec::new();
            for (st, r) in list.iter().zip(recv) {
                let key = format!("{}/{}", st["loginId"].as_str().unwrap(), st["eventUtcTime"].as_str().unwrap());
                if let Some(a) = acked.get(&key) {
                    if r.as_i64().unwrap() - a > 500 {
                        slow.push((*a, r.as_i64().unwrap(), key));
                    }
                }
            }
            slow.sort();
            for (a, r, k) in slow.iter().step_by(20) {
                eprintln!(
                    "slow: acked {} received {} ({} ms) {k}",
                    acd_schemas::time::format_millis(*a),
                    acd_schemas::time::format_millis(*r),
                    r - a
                );
            }
        }
        let mut lat = lat;
        lat.sort_unstable();
        let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        println!(
            "latency at {rate}/s (offered {offered:.0}/s, {total} states): ingest 202 -> WFM receipt p50 {} ms, p99 {} ms, max {} ms",
            q(0.5),
            q(0.99),
            lat[lat.len() - 1]
        );
    }
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

fn bench_contacts() {
    let n: usize = std::env::var("BENCH_CONTACTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
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
    let kcat_before = kcat_consume(&setup.brokers, &topic, n, 3);
    let (wfm, c, t) = wfm_and_consumer(&setup);
    let client = http();
    let read = |client: &reqwest::blocking::Client| -> Option<u64> {
        let m = client.get(setup.admin("/metrics")).send().ok()?.text().ok()?;
        m.lines().find(|l| l.starts_with("acd_interval_records_read_total"))?.split_whitespace().nth(1)?.parse().ok()
    };
    let mut peak_rss = 0.0f64;
    let mut first: Option<(f64, u64)> = None;
    poll("the interval pipeline to read every contact", Duration::from_secs(1800), || {
        let rss = Command::new("ps").args(["-o", "rss=", "-p", &c.child.id().to_string()]).output().ok()?;
        peak_rss = peak_rss.max(String::from_utf8_lossy(&rss.stdout).trim().parse::<f64>().unwrap_or(0.0) / 1024.0);
        let got = read(&client)?;
        if got > 0 && first.is_none() {
            first = Some((t.elapsed().as_secs_f64(), got));
        }
        (got as usize >= n).then_some(())
    });
    let secs = t.elapsed().as_secs_f64();
    let metrics = client.get(setup.admin("/metrics")).send().ok().and_then(|r| r.text().ok()).unwrap_or_default();
    let gauge = |name: &str| -> String {
        metrics.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("?").into()
    };
    let (hot, spilled) = (gauge("acd_contact_keys_in_memory"), gauge("acd_contact_keys_spilled"));
    let ours = n as f64 / secs;
    let (t0, n0) = first.unwrap_or((0.0, 0));
    let steady = (n as u64 - n0) as f64 / (secs - t0).max(1e-3);
    drop((c, wfm));
    let kcat = kcat_before.max(kcat_consume(&setup.brokers, &topic, n, 2));
    println!(
        "contacts: {n} contacts ({n} distinct dedup keys) in {secs:.1} s = {ours:.0}/s from process start \
         ({steady:.0}/s once reading; start-up and group join {t0:.1} s), decode+dedup+aggregate+deliver closed intervals \
         | kcat -C {kcat:.0}/s (best of 5, before and after) | ratio {:.2} (steady {:.2}) | consumer peak RSS {peak_rss:.0} MB; dedup keys in memory {hot}, in sled {spilled}",
        ours / kcat,
        steady / kcat
    );
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
}
