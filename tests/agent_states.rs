//! Agent states end to end with real processes: `produce`, `consume` and `wfm-sim`, over a real
//! Apache Kafka broker. Expected results are computed here from what the test sent.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use common::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Fields drop in order: the processes (which print their logs when a test fails) before the
/// setup, whose scratch folder holds those logs.
struct Stack {
    cfg: std::path::PathBuf,
    wfm: Proc,
    produce: Proc,
    consume: Option<Proc>,
    setup: Setup,
}

impl Stack {
    fn start(name: &str, wfm_args: &[&str], extra: &str) -> Stack {
        let mut s = Stack::without_consumer(name, wfm_args, extra);
        s.start_consumer();
        s
    }

    fn without_consumer(name: &str, wfm_args: &[&str], extra: &str) -> Stack {
        let setup = Setup::new(name);
        let cfg = setup.config(extra);
        let listen = format!("127.0.0.1:{}", setup.wfm_port);
        let mut args =
            vec!["wfm-sim", "--listen", &listen, "--access-key-id", "test-key", "--access-key-secret", "test-secret"];
        args.extend_from_slice(wfm_args);
        let wfm = Proc::start("wfm-sim", &args, &setup.scratch.0);
        wait_ok(&setup.wfm("/sim/state"), Duration::from_secs(30));
        let produce = Proc::start("produce", &["produce", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
        wait_ok(&setup.ingest("/healthz"), Duration::from_secs(60));
        Stack { setup, cfg, wfm, produce, consume: None }
    }

    fn start_consumer(&mut self) {
        self.spawn_consumer();
        wait_ok(&self.setup.admin("/healthz"), Duration::from_secs(60));
    }

    fn spawn_consumer(&mut self) {
        let p = Proc::start("consume", &["consume", "--config", self.cfg.to_str().unwrap()], &self.setup.scratch.0);
        self.consume = Some(p);
    }

    fn post_states(&self, states: &[Value]) {
        for chunk in states.chunks(500) {
            let body = json!({ "agentStateList": chunk });
            let r = http().post(self.setup.ingest("/v1/agent-states")).json(&body).send().unwrap();
            assert_eq!(r.status().as_u16(), 202, "{}", r.text().unwrap_or_default());
        }
    }

    fn wfm_state(&self) -> Value {
        http().get(self.setup.wfm("/sim/state")).send().unwrap().json().unwrap()
    }

    fn received(&self) -> Vec<(String, String, String)> {
        self.wfm_state()["agentStates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    format!("{}/{}", s["acdId"].as_str().unwrap(), s["loginId"].as_str().unwrap()),
                    s["eventUtcTime"].as_str().unwrap().to_string(),
                    s["eventCode"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn status(&self) -> Option<Value> {
        http().get(self.setup.admin("/status")).send().ok()?.json().ok()
    }

    /// A second `consume` in the same group: its own admin port and state folder.
    fn second_consumer(&self) -> (Proc, u16) {
        let admin = free_port();
        let text = std::fs::read_to_string(&self.cfg).unwrap();
        let first_admin = format!("admin_listen = \"127.0.0.1:{}\"", self.setup.admin_port);
        assert!(text.contains(&first_admin) && text.contains("/state\""), "{text}");
        let cfg = self.setup.scratch.file(
            "config-second.toml",
            &text
                .replace(&first_admin, &format!("admin_listen = \"127.0.0.1:{admin}\""))
                .replace("/state\"", "/state-second\""),
        );
        let p = Proc::start("consume-second", &["consume", "--config", cfg.to_str().unwrap()], &self.setup.scratch.0);
        (p, admin)
    }

    fn wfm_post(&self, path: &str, body: Value) {
        let r = http().post(self.setup.wfm(path)).json(&body).send().unwrap();
        assert!(r.status().is_success(), "{path}");
    }
}

fn state(agent: usize, t: i64, code: &str) -> Value {
    json!({"loginId": format!("agent{agent}"), "acdId": "east", "eventCode": code, "reasonCode": "",
           "eventUtcTime": acd_schemas::time::format_millis(t)})
}

/// `n_agents` agents with `per_agent` states each, duplicated and reordered as ACDs do; returns
/// what to post and each agent's expected sequence (first occurrences, in posting order).
fn traffic(seed: u64, n_agents: usize, per_agent: usize) -> (Vec<Value>, BTreeMap<String, Vec<String>>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let codes = ["AVAIL", "ACD", "ACW", "AUX", "LOGOUT", "LOGIN"];
    let base = 1_714_000_000_000i64;
    let mut all = Vec::new();
    for a in 0..n_agents {
        let mut t = base;
        for _ in 0..per_agent {
            t += rng.gen_range(1_000..120_000);
            all.push(state(a, t, codes[rng.gen_range(0..codes.len())]));
        }
    }
    all.shuffle(&mut rng);
    let dups: Vec<Value> = all.iter().filter(|_| rng.gen_bool(0.1)).cloned().collect();
    all.extend(dups);
    let n = all.len();
    for _ in 0..n / 10 {
        let i = rng.gen_range(0..n);
        let j = rng.gen_range(0..n);
        all.swap(i, j);
    }
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = HashSet::new();
    for s in &all {
        let key = format!("east/{}", s["loginId"].as_str().unwrap());
        let t = s["eventUtcTime"].as_str().unwrap().to_string();
        if seen.insert((key.clone(), t.clone())) {
            expected.entry(key).or_default().push(t);
        }
    }
    (all, expected)
}

/// Whether a `consume` process has logged an agent-state assignment.
fn assigned(p: &Proc) -> bool {
    p.log().lines().any(|l| l.contains("partitions assigned") && l.contains("agent-states"))
}

fn per_agent(received: &[(String, String, String)]) -> (BTreeMap<String, Vec<String>>, usize) {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = HashSet::new();
    let mut twice = 0;
    for (k, t, _) in received {
        if seen.insert((k.clone(), t.clone())) {
            out.entry(k.clone()).or_default().push(t.clone());
        } else {
            twice += 1;
        }
    }
    (out, twice)
}

/// Waits until the WFM has every state of `expected` (at least once, after crashes and
/// rebalances), asserts that none is missing, and returns how many arrived twice.
fn every_state_delivered(stack: &Stack, expected: &BTreeMap<String, Vec<String>>, within: Duration) -> usize {
    let want = distinct(expected);
    poll("every state at the WFM", within, || {
        let (agents, _) = per_agent(&stack.received());
        (agents.values().map(Vec::len).sum::<usize>() >= want).then_some(())
    });
    let (agents, twice) = per_agent(&stack.received());
    let missing: usize = expected
        .iter()
        .map(|(k, v)| v.iter().filter(|t| !agents.get(k).is_some_and(|got| got.contains(t))).count())
        .sum();
    assert_eq!(missing, 0);
    twice
}

fn distinct(expected: &BTreeMap<String, Vec<String>>) -> usize {
    expected.values().map(Vec::len).sum()
}

/// Waits until the WFM holds every expected state and the consumer has read all it was sent.
fn settle(stack: &Stack, want: usize, posted: u64) -> Vec<(String, String, String)> {
    poll("every state at the WFM", Duration::from_secs(120), || {
        let got = stack.received();
        let (agents, _) = per_agent(&got);
        (agents.values().map(Vec::len).sum::<usize>() >= want).then_some(())
    });
    poll("the consumer to have read everything", Duration::from_secs(60), || {
        let s = stack.status()?;
        (s["agent_states_read"].as_u64()? >= posted && s["agent_states_delivered"].as_u64()? as usize >= want)
            .then_some(())
    });
    stack.received()
}

#[test]
fn duplicated_and_reordered_states_arrive_once_in_each_agents_order() {
    let stack = Stack::start("states-dedup", &[], "");
    let (posts, expected) = traffic(1, 25, 40);
    stack.post_states(&posts);
    let got = settle(&stack, distinct(&expected), posts.len() as u64);
    let (agents, twice) = per_agent(&got);
    assert_eq!(twice, 0, "a clean run delivers nothing twice");
    assert_eq!(agents, expected);
    let s = stack.status().unwrap();
    assert_eq!(s["agent_states_duplicates"].as_u64().unwrap() as usize, posts.len() - distinct(&expected));
}

#[test]
fn tokens_that_expire_every_3_seconds_lose_nothing() {
    let stack = Stack::start("states-tokens", &["--token-ttl", "3", "--refresh-ttl", "6"], "");
    let mut expected_total = 0;
    let mut posted = 0;
    let renewals = |s: &Value| -> u64 {
        ["/authentication/v1/token/access-key", "/public/user/refresh"]
            .iter()
            .filter_map(|p| s["calls"][p].as_object())
            .flat_map(|m| m.values())
            .filter_map(Value::as_u64)
            .sum()
    };
    for round in 0..5 {
        // Each round starts once every token issued so far has expired.
        poll("the tokens to expire", Duration::from_secs(30), || {
            (stack.wfm_state()["liveAccessTokens"].as_u64()? == 0).then_some(())
        });
        let before = renewals(&stack.wfm_state());
        let (posts, expected) = traffic(100 + round, 5, 10);
        let posts: Vec<Value> = posts
            .into_iter()
            .map(|mut s| {
                s["loginId"] = json!(format!("r{round}-{}", s["loginId"].as_str().unwrap()));
                s
            })
            .collect();
        posted += posts.len();
        expected_total += distinct(&expected);
        stack.post_states(&posts);
        poll("a token renewal", Duration::from_secs(30), || (renewals(&stack.wfm_state()) > before).then_some(()));
        settle(&stack, expected_total, posted as u64);
    }
    let got = settle(&stack, expected_total, posted as u64);
    let (agents, _) = per_agent(&got);
    assert_eq!(agents.values().map(Vec::len).sum::<usize>(), expected_total);
    let state = stack.wfm_state();
    let unauthorized: u64 = state["calls"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.starts_with("/wfm/"))
        .filter_map(|(_, m)| m["401"].as_u64())
        .sum();
    let renewed = renewals(&state);
    eprintln!("token renewals {renewed}, data calls answered 401: {unauthorized}");
    assert!(renewed >= 5);
    assert!(unauthorized <= renewed, "at most one failed call per renewal");
}

#[test]
fn consume_killed_mid_stream_delivers_every_state_at_least_once() {
    let mut stack = Stack::start("states-sigkill", &[], "");
    let (posts, expected) = traffic(7, 40, 100);
    let want = distinct(&expected);
    let chunks: Vec<Vec<Value>> = posts.chunks(200).map(<[Value]>::to_vec).collect();
    let n_chunks = chunks.len();
    // What the WFM had when the running instance started: it is killed once it has delivered
    // more (counted from its start, so that states it delivered at once still count).
    let mut before = 0;
    for (i, chunk) in chunks.into_iter().enumerate() {
        stack.post_states(&chunk);
        // Kill the consumer three times, each time once it has delivered something new.
        if i % (n_chunks / 4) == n_chunks / 8 {
            poll("progress before the kill", Duration::from_secs(60), || {
                (stack.received().len() > before).then_some(())
            });
            stack.consume.as_mut().unwrap().kill9();
            before = stack.received().len();
            stack.start_consumer();
        }
    }
    let twice = every_state_delivered(&stack, &expected, Duration::from_secs(180));
    eprintln!(
        "SIGKILL x3: {want} distinct states, all delivered; {twice} delivered twice (at least once after a crash)"
    );
    let kills = stack.consume.as_ref().unwrap().log();
    assert!(!kills.contains("panicked"), "{kills}");
}

/// Two instances in one group: a second joins mid-stream, then the first is stopped. Each
/// rebalance hands partitions over while states are being read and sent.
#[test]
fn an_instance_joining_and_one_leaving_mid_stream_lose_nothing() {
    let mut stack = Stack::start("states-rebalance", &[], "");
    // The first instance must be a member before the second starts: on a just-started broker
    // its join can wait for the group coordinator and for the new topic's metadata, and a
    // second instance joining first would take every partition and leave it nothing to show.
    poll("the first instance's assignment", Duration::from_secs(60), || {
        assigned(stack.consume.as_ref().unwrap()).then_some(())
    });
    let mut admin2 = 0;
    let status_of =
        |port: u16| -> Option<Value> { http().get(format!("http://127.0.0.1:{port}/status")).send().ok()?.json().ok() };
    let (posts, expected) = traffic(11, 40, 100);
    let want = distinct(&expected);
    let chunks: Vec<Vec<Value>> = posts.chunks(200).map(<[Value]>::to_vec).collect();
    let n_chunks = chunks.len();
    let (mut second, mut first_delivered) = (None, 0);
    for (i, chunk) in chunks.into_iter().enumerate() {
        stack.post_states(&chunk);
        if i == n_chunks / 3 {
            let (p, admin) = stack.second_consumer();
            admin2 = admin;
            // The rest is posted once the group has rebalanced, so both instances get some.
            poll("the second instance's assignment", Duration::from_secs(60), || assigned(&p).then_some(()));
            second = Some(p);
        }
        if i == 2 * n_chunks / 3 {
            // Both instances deliver what was posted after the rebalance.
            poll("the second instance delivering", Duration::from_secs(60), || {
                (status_of(admin2)?["agent_states_delivered"].as_u64()? > 0).then_some(())
            });
            first_delivered = stack.status().unwrap()["agent_states_delivered"].as_u64().unwrap();
        }
        if i == 2 * n_chunks / 3 + 1 {
            poll("the first instance delivering after the rebalance", Duration::from_secs(60), || {
                (stack.status()?["agent_states_delivered"].as_u64()? > first_delivered).then_some(())
            });
            assert_eq!(stack.consume.as_mut().unwrap().terminate(), Some(0));
        }
    }
    let twice = every_state_delivered(&stack, &expected, Duration::from_secs(180));
    let first_log = stack.consume.as_ref().unwrap().log();
    assert!(first_log.contains("partitions revoked"), "the first instance gave partitions up: {first_log}");
    assert!(
        first_log.contains("checkpointed offsets committed before the partitions were released"),
        "the first instance committed what it had checkpointed before letting its partitions go: {first_log}"
    );
    let second = second.unwrap();
    let delivered2 = poll("the second instance's status", Duration::from_secs(30), || {
        status_of(admin2)?["agent_states_delivered"].as_u64()
    });
    assert!(delivered2 > 0, "the second instance delivered after taking over");
    let second_log = second.log();
    assert!(!first_log.contains("panicked") && !second_log.contains("panicked"), "{second_log}");
    eprintln!("rebalanced twice: {want} distinct states, all delivered; {twice} delivered twice");
    // The first instance's store holds its dedup journal, and no offsets: Kafka alone keeps them.
    let store = acd_consumer::checkpoint::Checkpoints::open(&stack.setup.scratch.0.join("state")).unwrap();
    assert!(store.scan(b"offset/").unwrap().is_empty(), "offsets in the checkpoint store");
    assert!(!store.scan(acd_consumer::forwarding::seen::PREFIX).unwrap().is_empty(), "no dedup journal");
}

/// A member reading a backlog as fast as it can still answers a rebalance at once: a second
/// instance gets its partitions while the first is in the middle of the backlog.
#[test]
fn an_instance_joining_during_a_backlog_gets_its_partitions_at_once() {
    let mut stack = Stack::without_consumer("states-backlog-join", &[], "");
    let (posts, expected) = traffic(5, 200, 1000);
    let want = distinct(&expected);
    stack.post_states(&posts);
    // A slow WFM (every call answered, 100 ms late) keeps the first instance inside the backlog
    // however fast this machine reads it, so the join below always lands mid-backlog.
    let path = "/wfm/acd/v1/agent-states";
    stack.wfm_post("/sim/faults", json!({"path": path, "count": 1_000_000, "status": 200, "delayMs": 100}));
    stack.start_consumer();
    let delivered = |s: &Stack| s.status().and_then(|v| v["agent_states_delivered"].as_u64());
    poll("the first instance delivering", Duration::from_secs(60), || (delivered(&stack)? > 0).then_some(()));
    let (second, _) = stack.second_consumer();
    poll("the second instance's assignment", Duration::from_secs(60), || assigned(&second).then_some(()));
    let at_join = delivered(&stack).unwrap();
    let r = http().delete(stack.setup.wfm("/sim/faults")).send().unwrap();
    assert!(r.status().is_success());
    assert!(
        at_join < want as u64,
        "the second instance got partitions only once the first had read the whole backlog ({at_join} of {want})"
    );
    let twice = every_state_delivered(&stack, &expected, Duration::from_secs(300));
    eprintln!("joined during a backlog: {want} distinct states, {at_join} delivered at the join, all delivered; {twice} twice");
}

#[test]
fn wfm_503_bursts_and_timeouts_are_retried() {
    let stack = Stack::start("states-faults", &[], "");
    let path = "/wfm/acd/v1/agent-states";
    stack.wfm_post("/sim/faults", json!({"path": path, "count": 3, "status": 503, "retryAfter": 1}));
    stack.wfm_post("/sim/faults", json!({"path": path, "count": 2, "status": 503, "delayMs": 2500}));
    stack.wfm_post("/sim/faults", json!({"path": path, "count": 2, "status": 429}));
    let (posts, expected) = traffic(3, 10, 20);
    stack.post_states(&posts);
    let got = settle(&stack, distinct(&expected), posts.len() as u64);
    let (agents, twice) = per_agent(&got);
    assert_eq!(agents, expected);
    assert_eq!(twice, 0);
    let calls = &stack.wfm_state()["calls"][path];
    assert!(calls["503"].as_u64().unwrap() >= 5, "{calls}");
    assert!(calls["429"].as_u64().unwrap() >= 2, "{calls}");
    let dlq = read_topic(&stack.setup.brokers, &stack.setup.topic("wfm.dlq.v1"));
    assert!(dlq.is_empty(), "transient failures never dead-letter");
}

#[test]
fn records_of_an_older_schema_and_unusable_ones() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let stack = Stack::start("states-schema", &[], "");
    let topic = stack.setup.topic("acd.agent-state.v1");
    // A version-1 record (no receivedUtc), written with the historic schema file alone.
    let text =
        std::fs::read_to_string(format!("{}/schemas/history/agent-state.1.avsc", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let schema = apache_avro::Schema::parse(&json).unwrap();
    let mut rec = apache_avro::types::Record::new(&schema).unwrap();
    rec.put("acdId", "east");
    rec.put("loginId", "old-agent");
    rec.put("eventCode", "AVAIL");
    rec.put("reasonCode", "");
    rec.put("eventUtcTime", apache_avro::types::Value::TimestampMillis(1_714_000_000_000));
    let mut v1 = vec![0xC3, 0x01];
    v1.extend(acd_schemas::canonical::fingerprint(&acd_schemas::canonical::canonical_form(&json)));
    v1.extend(apache_avro::to_avro_datum(&schema, rec).unwrap());
    let producer: ThreadedProducer<DefaultProducerContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &stack.setup.brokers).create().unwrap();
    // Valid Avro that the ingest API would have refused: an empty loginId, a negative talk time.
    let codec = acd_schemas::Codec::default();
    let nameless = acd_schemas::records::AgentState {
        acd_id: "east".into(),
        login_id: String::new(),
        event_code: "AVAIL".into(),
        reason_code: String::new(),
        event_utc_time: 1_714_000_000_000,
        received_utc: None,
    };
    let mut contact: acd_schemas::records::Contact = serde_json::from_value(serde_json::json!({
        "acdId": "east", "contactId": "c-neg", "queueValue": "q-neg", "queueName": "", "isOutbound": false,
        "outcome": "HANDLED", "arrivedUtc": 1_714_000_000_000i64, "endedUtc": 1_714_000_060_000i64,
        "queueDelaySec": 1.0, "talkSec": 1.0, "holdSec": 0.0, "workSec": 0.0, "agentValue": "a-1",
        "agentId": null, "party": null, "receivedUtc": null
    }))
    .unwrap();
    contact.talk_sec = -30.0;
    let contact_bytes = codec.encode(acd_schemas::Stream::Contact, &contact).unwrap();
    let contact_topic = stack.setup.topic("acd.contact.v1");
    producer.send(BaseRecord::to(&topic).partition(0).key("east/bad").payload(&b"\x00garbage"[..])).unwrap();
    producer
        .send(BaseRecord::to(&topic).partition(0).key("east/").payload(&codec.encode_agent_state(&nameless)))
        .unwrap();
    producer.send(BaseRecord::to(&contact_topic).key("east/q-neg").payload(&contact_bytes)).unwrap();
    producer.send(BaseRecord::to(&topic).key("east/old-agent").payload(&v1)).unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
    poll("the v1 record at the WFM", Duration::from_secs(60), || {
        stack.received().iter().any(|(k, _, _)| k == "east/old-agent").then_some(())
    });
    let dlq = poll("three unusable records in the DLQ", Duration::from_secs(30), || {
        let d = read_topic(&stack.setup.brokers, &stack.setup.topic("wfm.dlq.v1"));
        (d.len() >= 3).then_some(d)
    });
    assert_eq!(dlq.len(), 3, "each unusable record dead-lettered once");
    let by_key: BTreeMap<String, (Vec<u8>, BTreeMap<String, String>)> = dlq
        .iter()
        .map(|(key, value, headers, ..)| {
            (key.clone().unwrap_or_default(), (value.clone(), headers.iter().cloned().collect()))
        })
        .collect();
    let (value, h) = &by_key["east/bad"];
    assert_eq!(value, b"\x00garbage");
    assert_eq!(h["dlq.reason"], "undecodable");
    assert_eq!(h["dlq.kind"], "input");
    assert_eq!(h["dlq.source.topic"], topic);
    assert_eq!(h["dlq.source.offset"], "0");
    assert_eq!(h["dlq.source.partition"], "0");
    let (value, h) = &by_key["east/"];
    assert_eq!(value, &codec.encode_agent_state(&nameless), "the original bytes");
    assert_eq!((h["dlq.reason"].as_str(), h["dlq.kind"].as_str()), ("invalid", "input"));
    assert!(h["dlq.error"].starts_with("loginId:"), "{h:?}");
    assert_eq!(h["dlq.source.offset"], "1");
    let (value, h) = &by_key["east/q-neg"];
    assert_eq!(value, &contact_bytes);
    assert_eq!(h["dlq.reason"], "invalid");
    assert!(h["dlq.error"].starts_with("talkSec:"), "{h:?}");
    assert_eq!(h["dlq.source.topic"], contact_topic);
    assert!(!stack.received().iter().any(|(k, _, _)| k == "east/"), "an invalid state is not forwarded");

    // The operator's view of the same dead letters.
    let cfg = stack.cfg.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = run(&["dlq", "list", "--config", cfg, "--reason", "undecodable", "--json"]);
    let lines: Vec<Value> = listed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{listed}");
    assert_eq!(lines[0]["headers"]["dlq.reason"], "undecodable");
    assert!(lines[0]["base64"].is_string(), "a body that is not JSON is shown as base64");
    let undecodable_offset = lines[0]["offset"].to_string();
    assert_eq!(run(&["dlq", "list", "--config", cfg, "--reason", "invalid", "--json"]).lines().count(), 2);
    assert_eq!(run(&["dlq", "list", "--config", cfg, "--reason", "wfm-rejected", "--json"]).trim(), "");
    let table = run(&["dlq", "list", "--config", cfg]);
    assert!(table.contains("undecodable") && table.contains("3 dead letter(s)"), "{table}");
    let shown = run(&["dlq", "show", &undecodable_offset, "--config", cfg]);
    assert!(shown.contains(&format!("dlq.source.topic: {topic}")), "{shown}");
    assert_eq!(run(&["dlq", "export", "--config", cfg]).lines().count(), 3);
    let bad = std::process::Command::new(BIN).args(["dlq", "show", "7", "--config", cfg]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let status = poll("status to show no lag", Duration::from_secs(60), || {
        let v: Value = serde_json::from_str(&run(&["status", "--config", cfg, "--json"])).ok()?;
        (v["lag_total"] == 0 && v["consumer"].is_object()).then_some(v)
    });
    assert_eq!(status["dlq_depth"], 3);
    assert_eq!(status["dlq_by_reason"]["undecodable"], 1);
    assert_eq!(status["dlq_by_reason"]["invalid"], 2);
    let text = run(&["status", "--config", cfg]);
    assert!(text.contains("total lag 0") && text.contains("undecodable 1"), "{text}");
}

#[test]
fn consume_refuses_another_interval_length_and_stops_cleanly_on_sigterm() {
    let mut stack = Stack::without_consumer("states-details", &["--interval-minutes", "30"], "");
    stack.spawn_consumer();
    let consume = stack.consume.as_mut().unwrap();
    let status = poll("consume to exit", Duration::from_secs(60), || consume.child.try_wait().unwrap());
    assert_eq!(status.code(), Some(2), "{}", consume.log());
    assert!(consume.log().contains("interval.minutes"));
    // wfm-sim and produce stop cleanly on SIGTERM.
    assert_eq!(stack.produce.terminate(), Some(0));
    assert_eq!(stack.wfm.terminate(), Some(0));
}

#[test]
fn consume_stops_cleanly_on_sigterm() {
    let mut stack = Stack::start("states-sigterm", &[], "");
    let (posts, expected) = traffic(9, 5, 10);
    stack.post_states(&posts);
    settle(&stack, distinct(&expected), posts.len() as u64);
    assert_eq!(stack.consume.as_mut().unwrap().terminate(), Some(0));
    // Restarted, it sends nothing again: the offsets were committed.
    stack.start_consumer();
    poll("the restarted consumer to join", Duration::from_secs(60), || {
        stack.status().filter(|s| s["partitions"].as_array().is_some_and(|p| !p.is_empty())).map(|_| ())
    });
    let (_, twice) = per_agent(&stack.received());
    assert_eq!(twice, 0);
}

#[test]
fn the_demo_passes() {
    let out = std::process::Command::new(BIN)
        .args(["demo", "--agents", "15", "--minutes", "10", "--speed", "120"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().last().unwrap_or("").starts_with("demo check: PASS"), "{stdout}");
}

#[test]
fn acd_connection_state_reaches_the_wfm_and_status() {
    let mut stack = Stack::start("states-connection", &[], "");
    let at = "2024-04-17T10:00:00.000Z";
    stack.post_states(&[
        json!({"loginId": "a1", "acdId": "east", "eventCode": "AVAIL", "reasonCode": "", "eventUtcTime": at}),
    ]);
    let sim_state = stack.setup.wfm("/sim/state");
    let latest = |acd: &str| -> Option<Value> {
        let state: Value = http().get(&sim_state).send().ok()?.json().ok()?;
        state["connection"].as_array()?.iter().rev().find(|c| c["acdId"] == acd).cloned()
    };
    let connected = poll("east CONNECTED at the WFM", Duration::from_secs(60), || {
        latest("east").filter(|c| c["status"] == "CONNECTED")
    });
    assert_eq!(connected["lastEventUtc"], at);
    let cfg = stack.cfg.to_str().unwrap().to_string();
    let status = |args: &[&str]| -> String {
        let out = std::process::Command::new(BIN).arg("status").args(["--config", &cfg]).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let v: Value = serde_json::from_str(&status(&["--json"])).unwrap();
    assert_eq!(v["acd_connections"]["east"]["status"], "CONNECTED", "{v}");
    assert_eq!(v["connectors"][0]["connector"], "push");
    // The producer stops: its connectors say so, and the WFM hears it.
    assert_eq!(stack.produce.terminate(), Some(0));
    let gone = poll("east DISCONNECTED at the WFM", Duration::from_secs(60), || {
        latest("east").filter(|c| c["status"] == "DISCONNECTED")
    });
    assert_eq!(gone["detail"], "producer stopped");
    let text = status(&[]);
    assert!(text.contains("east: DISCONNECTED"), "{text}");
}

/// Sends SIGTERM to `pid` once `accepted` reaches `after`, and returns how long the process took
/// to exit (it is a zombie until its parent waits for it).
fn sigterm_when(
    pid: u32,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    after: usize,
) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        poll("load before the SIGTERM", Duration::from_secs(120), || {
            (accepted.load(std::sync::atomic::Ordering::SeqCst) >= after).then_some(())
        });
        let sent = std::time::Instant::now();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
        poll("the process to exit", Duration::from_secs(60), || {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next().unwrap_or('Z')).unwrap_or('Z');
            (state == 'Z' || state == 'X').then_some(())
        });
        sent.elapsed()
    })
}

#[test]
fn sigterm_to_produce_and_to_consume_under_load_exits_0_and_loses_nothing_accepted() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut stack = Stack::start("states-sigterm-load", &[], "");
    let (posts, expected) = traffic(11, 60, 120);
    let chunks: Vec<Vec<Value>> = posts.chunks(100).map(<[Value]>::to_vec).collect();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    // Posts chunks from `from` until one is not accepted (the producer going away) or all are.
    let post_from = |stack: &Stack, from: usize, accepted: &AtomicUsize| -> usize {
        let mut i = from;
        while i < chunks.len() {
            let body = json!({ "agentStateList": chunks[i] });
            match http().post(stack.setup.ingest("/v1/agent-states")).json(&body).send() {
                Ok(r) if r.status().as_u16() == 202 => {
                    i += 1;
                    accepted.store(i, Ordering::SeqCst);
                }
                _ => break,
            }
        }
        i
    };
    // produce gets SIGTERM while requests keep coming.
    let killer = sigterm_when(stack.produce.child.id(), accepted.clone(), chunks.len() / 3);
    let mut next = post_from(&stack, 0, &accepted);
    let took = killer.join().unwrap();
    assert_eq!(stack.produce.child.wait().unwrap().code(), Some(0), "produce exits 0 on SIGTERM");
    assert!(took < Duration::from_secs(10), "produce took {took:?} to stop");
    eprintln!("produce stopped {took:?} after SIGTERM, with {next} of {} chunks accepted", chunks.len());
    stack.produce =
        Proc::start("produce", &["produce", "--config", stack.cfg.to_str().unwrap()], &stack.setup.scratch.0);
    wait_ok(&stack.setup.ingest("/healthz"), Duration::from_secs(60));
    // consume gets SIGTERM in the middle of delivering.
    let consume_pid = stack.consume.as_ref().unwrap().child.id();
    let killer = sigterm_when(consume_pid, accepted.clone(), next + (chunks.len() - next) / 2);
    next = post_from(&stack, next, &accepted);
    let took = killer.join().unwrap();
    let code = stack.consume.as_mut().unwrap().child.wait().unwrap().code();
    assert_eq!(code, Some(0), "consume exits 0 on SIGTERM");
    assert!(took < Duration::from_secs(10), "consume took {took:?} to stop");
    eprintln!("consume stopped {took:?} after SIGTERM");
    stack.start_consumer();
    assert_eq!(post_from(&stack, next, &accepted), chunks.len());
    let twice = every_state_delivered(&stack, &expected, Duration::from_secs(180));
    eprintln!("SIGTERM under load: {} states, all delivered, {twice} twice", distinct(&expected));
}
