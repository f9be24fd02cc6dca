//! Interval figures end to end: a generated contact center through `produce`, Kafka and
//! `consume` into `wfm-sim`, compared field by field with an oracle computed here from the input,
//! independently of the interval library, in a clean run, with `consume` SIGKILLed, and with two
//! instances sharing the work.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use acd_producer::simulator::{SimEvent, Simulator};
use acd_schemas::records::{AgentState, Contact, Outcome, Party};
use acd_schemas::time::{format_millis, now_millis};
use common::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const L: i64 = 15 * 60_000;
const T: f64 = 20.0;

struct Input {
    contacts: Vec<Contact>,
    states: Vec<AgentState>,
}

/// Two hours of 200 agents and 20 queues, ending a while ago, every agent logged out at the end.
fn generate(seed: u64) -> Input {
    let end = (now_millis() / L) * L - 2 * L;
    let start = end - 8 * L;
    let mut sim = Simulator::new("east", 200, 20, seed, start);
    let (mut contacts, mut states) = (Vec::new(), Vec::new());
    for e in sim.advance(end) {
        match e {
            SimEvent::State(s) => states.push(s),
            SimEvent::Contact(c) => contacts.push(c),
        }
    }
    let mut last: BTreeMap<String, AgentState> = BTreeMap::new();
    for s in &states {
        last.insert(s.login_id.clone(), s.clone());
    }
    for (i, (_, s)) in last.into_iter().enumerate() {
        if s.event_code != "LOGOUT" {
            states.push(AgentState { event_code: "LOGOUT".into(), event_utc_time: end + i as i64, ..s });
        }
    }
    Input { contacts, states }
}

fn contact_json(c: &Contact) -> Value {
    json!({"acdId": c.acd_id, "contactId": c.contact_id, "queueValue": c.queue_value, "queueName": c.queue_name,
        "isOutbound": c.is_outbound, "outcome": c.outcome, "arrivedUtc": format_millis(c.arrived_utc),
        "endedUtc": format_millis(c.ended_utc), "queueDelaySec": c.queue_delay_sec, "talkSec": c.talk_sec,
        "holdSec": c.hold_sec, "workSec": c.work_sec, "agentValue": c.agent_value, "agentId": c.agent_id, "party": c.party})
}

fn state_json(s: &AgentState) -> Value {
    json!({"loginId": s.login_id, "acdId": s.acd_id, "eventCode": s.event_code, "reasonCode": s.reason_code,
        "eventUtcTime": format_millis(s.event_utc_time)})
}

/// What the ACD sends: every event, some twice, in a shuffled order within a few minutes.
fn posting_order<T: Clone>(items: &[T], time: impl Fn(&T) -> i64, rng: &mut rand::rngs::StdRng) -> Vec<T> {
    let mut out: Vec<(i64, T)> = items.iter().map(|i| (time(i) + rng.gen_range(0..240_000), i.clone())).collect();
    for i in items {
        if rng.gen_bool(0.05) {
            out.push((time(i) + rng.gen_range(0..600_000), i.clone()));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    let mut out: Vec<T> = out.into_iter().map(|(_, i)| i).collect();
    for chunk in out.chunks_mut(50) {
        chunk.shuffle(rng);
    }
    out
}

// ---------------------------------------------------------------- the oracle (docs/intervals.md)

#[derive(Default, Debug, Clone, PartialEq)]
struct QueueFig {
    handled_short: i64,
    handled_long: i64,
    abandoned_short: i64,
    abandoned_long: i64,
    handle: f64,
    work: f64,
    hold: f64,
    delay: f64,
    right: (i64, f64),
    wrong: (i64, f64),
}

/// (startDate, queueValue, agentValue) -> (handled, handled time, work, hold).
type AgentQueueFigs = BTreeMap<(String, String, String), (i64, f64, f64, f64)>;
/// (startDate, agentValue) -> segments (state, startTime, duration).
type ActivityFigs = BTreeMap<(String, String), Vec<(String, String, i64)>>;

struct Oracle {
    queues: BTreeMap<(String, String), QueueFig>,
    agent_queues: AgentQueueFigs,
    agents: BTreeMap<(String, String), (i64, i64, i64)>,
    activity: ActivityFigs,
}

fn category(code: &str) -> u8 {
    match code.to_uppercase().as_str() {
        "LOGOUT" | "LOGOFF" | "LOGGED_OUT" | "UNSTAFF" | "UNSTAFFED" | "10" | "110" => 0,
        "AVAIL" | "AVAILABLE" | "READY" | "IDLE" | "20" => 1,
        "AUX" | "NOT READY" | "NOT_READY" | "NOTREADY" | "BREAK" | "LUNCH" | "LOGIN" | "LOGON" | "50" | "51" | "52"
        | "100" => 2,
        _ => 3,
    }
}

fn round(ms: i64) -> i64 {
    (ms + 500) / 1000
}

fn oracle(input: &Input) -> Oracle {
    let mut o = Oracle {
        queues: BTreeMap::new(),
        agent_queues: BTreeMap::new(),
        agents: BTreeMap::new(),
        activity: BTreeMap::new(),
    };
    let mut seen = HashSet::new();
    for c in &input.contacts {
        if !seen.insert((c.acd_id.clone(), c.contact_id.clone())) {
            continue;
        }
        let start = format_millis(c.ended_utc.div_euclid(L) * L);
        let f = o.queues.entry((start.clone(), c.queue_value.clone())).or_default();
        f.delay += c.queue_delay_sec;
        let short = c.queue_delay_sec <= T;
        if c.outcome == Outcome::Abandoned {
            if short {
                f.abandoned_short += 1
            } else {
                f.abandoned_long += 1
            }
            continue;
        }
        if short {
            f.handled_short += 1
        } else {
            f.handled_long += 1
        }
        let handle = c.talk_sec + c.hold_sec + c.work_sec;
        f.handle += handle;
        f.work += c.work_sec;
        f.hold += c.hold_sec;
        match c.party {
            Some(Party::Right) => {
                f.right.0 += 1;
                f.right.1 += handle
            }
            Some(Party::Wrong) => {
                f.wrong.0 += 1;
                f.wrong.1 += handle
            }
            None => {}
        }
        let a = o.agent_queues.entry((start, c.queue_value.clone(), c.agent_value.clone().unwrap())).or_default();
        a.0 += 1;
        a.1 += handle;
        a.2 += c.work_sec;
        a.3 += c.hold_sec;
    }
    let mut by_agent: BTreeMap<String, BTreeMap<i64, String>> = BTreeMap::new();
    for s in &input.states {
        by_agent.entry(s.login_id.clone()).or_default().entry(s.event_utc_time).or_insert(s.event_code.clone());
    }
    for (agent, states) in &by_agent {
        let list: Vec<(i64, &String)> = states.iter().map(|(t, c)| (*t, c)).collect();
        let mut per: BTreeMap<i64, (i64, i64, i64)> = BTreeMap::new();
        for (i, (t, code)) in list.iter().enumerate() {
            let Some((next, _)) = list.get(i + 1) else { continue }; // every agent ends logged out
            let cat = category(code);
            if cat != 0 {
                let ends = format_millis(next.div_euclid(L) * L);
                o.activity.entry((ends, agent.clone())).or_default().push((
                    code.to_string(),
                    format_millis(*t),
                    next - t,
                ));
            }
            let mut from = *t;
            while from < *next {
                let s = from.div_euclid(L) * L;
                let to = (*next).min(s + L);
                let e = per.entry(s).or_default();
                if cat != 0 {
                    e.0 += to - from
                }
                if cat == 1 {
                    e.1 += to - from
                }
                if cat == 2 {
                    e.2 += to - from
                }
                from = to;
            }
        }
        for (s, (login, ready, not_ready)) in per {
            if round(login) > 0 {
                o.agents.insert((format_millis(s), agent.clone()), (round(login), round(ready), round(not_ready)));
            }
        }
    }
    o
}

/// Differences between the WFM's state and the oracle, at most 10 described.
fn diff(wfm: &Value, o: &Oracle) -> Vec<String> {
    let mut d = Vec::new();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
    let mut got_q = BTreeMap::new();
    for r in wfm["queueReport"].as_array().unwrap() {
        got_q.insert(
            (r["startDate"].as_str().unwrap().to_string(), r["queueValue"].as_str().unwrap().to_string()),
            r.clone(),
        );
    }
    for (k, f) in &o.queues {
        let Some(r) = got_q.remove(k) else {
            d.push(format!("queue row {k:?} missing"));
            continue;
        };
        let n = |f: &str| r[f].as_i64().unwrap();
        let x = |f: &str| r[f].as_f64().unwrap();
        let received = f.handled_short + f.handled_long + f.abandoned_short + f.abandoned_long;
        let ok = n("handledShort") == f.handled_short
            && n("handledLong") == f.handled_long
            && n("abandonedShort") == f.abandoned_short
            && n("abandonedLong") == f.abandoned_long
            && n("contactsReceived") == received
            && close(x("handleTime"), f.handle)
            && close(x("workTime"), f.work)
            && close(x("holdTime"), f.hold)
            && close(x("queueDelayTime"), f.delay)
            && n("rightPartyContacts") == f.right.0
            && close(x("rightPartyHandleTime"), f.right.1)
            && n("wrongPartyContacts") == f.wrong.0
            && close(x("wrongPartyHandleTime"), f.wrong.1)
            && close(
                x("svcLvlPct"),
                if received == 0 { 100.0 } else { 100.0 * f.handled_short as f64 / received as f64 },
            );
        if !ok {
            d.push(format!("queue row {k:?}: got {r}, want {f:?}"));
        }
    }
    for (k, r) in got_q {
        if r["contactsReceived"].as_i64() != Some(0) {
            d.push(format!("unexpected queue row {k:?}: {r}"));
        }
    }
    let mut got_aq = BTreeMap::new();
    for r in wfm["agentQueueReport"].as_array().unwrap() {
        let k = (
            r["startDate"].as_str().unwrap().to_string(),
            r["queueValue"].as_str().unwrap().to_string(),
            r["agentValue"].as_str().unwrap().to_string(),
        );
        got_aq.insert(k, r.clone());
    }
    for (k, (handled, time, work, hold)) in &o.agent_queues {
        match got_aq.remove(k) {
            Some(r)
                if r["handled"].as_i64() == Some(*handled)
                    && close(r["handledTime"].as_f64().unwrap(), *time)
                    && close(r["workTime"].as_f64().unwrap(), *work)
                    && close(r["holdTime"].as_f64().unwrap(), *hold) => {}
            other => d.push(format!("agent-queue row {k:?}: got {other:?}, want {handled} {time}")),
        }
    }
    d.extend(got_aq.keys().map(|k| format!("unexpected agent-queue row {k:?}")));
    let mut got_a = BTreeMap::new();
    for r in wfm["agentSystemPerformanceReport"].as_array().unwrap() {
        if r["loginTime"].as_f64() == Some(0.0) {
            continue; // an overwritten row
        }
        got_a.insert(
            (r["startDate"].as_str().unwrap().to_string(), r["agentValue"].as_str().unwrap().to_string()),
            r.clone(),
        );
    }
    for (k, (login, ready, not_ready)) in &o.agents {
        match got_a.remove(k) {
            Some(r)
                if r["loginTime"].as_f64() == Some(*login as f64)
                    && r["readyTime"].as_f64() == Some(*ready as f64)
                    && r["notReadyTime"].as_f64() == Some(*not_ready as f64) => {}
            other => d.push(format!("agent row {k:?}: got {other:?}, want {login} {ready} {not_ready}")),
        }
    }
    d.extend(got_a.keys().map(|k| format!("unexpected agent row {k:?}")));
    let mut got_act = BTreeMap::new();
    for r in wfm["agentActivity"].as_array().unwrap() {
        let list: Vec<(String, String, i64)> = r["agentActivity"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["state"].as_str().unwrap().to_string(),
                    s["startTime"].as_str().unwrap().to_string(),
                    s["duration"].as_i64().unwrap(),
                )
            })
            .collect();
        if !list.is_empty() {
            got_act.insert(
                (r["startDate"].as_str().unwrap().to_string(), r["agentValue"].as_str().unwrap().to_string()),
                list,
            );
        }
    }
    for (k, want) in &o.activity {
        match got_act.remove(k) {
            Some(got) if &got == want => {}
            other => d.push(format!("activity {k:?}: got {other:?}, want {want:?}")),
        }
    }
    d.extend(got_act.keys().map(|k| format!("unexpected activity list {k:?}")));
    d.truncate(10);
    d
}

// ---------------------------------------------------------------- running it

/// Fields drop in order: the processes (which print their logs when a test fails) before the
/// setup, whose scratch folder holds those logs.
struct Run {
    cfg: std::path::PathBuf,
    _wfm: Proc,
    _produce: Proc,
    setup: Setup,
}

impl Run {
    fn start(name: &str) -> Run {
        Run::with(Setup::new(name))
    }

    fn with(setup: Setup) -> Run {
        let cfg = setup.config("");
        // Interval settings for the run (the Setup config has no [interval] section).
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        text.push_str("\n[interval]\nminutes = 15\nidle_close_seconds = 1\nzero_fill_days = 0\n");
        std::fs::write(&cfg, text).unwrap();
        let listen = format!("127.0.0.1:{}", setup.wfm_port);
        let wfm = Proc::start("wfm-sim", &["wfm-sim", "--listen", &listen], &setup.scratch.0);
        wait_ok(&setup.wfm("/sim/state"), Duration::from_secs(30));
        let produce = Proc::start("produce", &["produce", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
        wait_ok(&setup.ingest("/healthz"), Duration::from_secs(60));
        Run { setup, cfg, _wfm: wfm, _produce: produce }
    }

    /// A consumer with its own admin port and state folder (one per instance).
    fn consumer(&self, n: u16) -> Proc {
        self.consumer_at(n).0
    }

    /// [`Run::consumer`], with its admin port.
    fn consumer_at(&self, n: u16) -> (Proc, u16) {
        let admin = free_port();
        let state = self.setup.scratch.0.join(format!("state-{n}"));
        let text = std::fs::read_to_string(&self.cfg)
            .unwrap()
            .replace(&format!("127.0.0.1:{}\"\n", self.setup.admin_port), &format!("127.0.0.1:{admin}\"\n"))
            .replace(&self.setup.scratch.0.join("state").display().to_string(), &state.display().to_string());
        let cfg = self.setup.scratch.file(&format!("consumer-{n}.toml"), &text);
        let p = Proc::start(
            &format!("consume-{n}"),
            &["consume", "--config", cfg.to_str().unwrap()],
            &self.setup.scratch.0,
        );
        wait_ok(&format!("http://127.0.0.1:{admin}/healthz"), Duration::from_secs(60));
        (p, admin)
    }

    fn post(&self, path: &str, list: &str, items: Vec<Value>) {
        for chunk in items.chunks(400) {
            let r = http().post(self.setup.ingest(path)).json(&json!({ list: chunk })).send().unwrap();
            assert_eq!(r.status().as_u16(), 202, "{}", r.text().unwrap_or_default());
        }
    }

    /// [`Run::post`], sending each request again while `produce` answers 503 (Kafka not back
    /// yet), as an ACD's client would.
    fn post_patiently(&self, path: &str, list: &str, items: &[Value]) {
        for chunk in items.chunks(400) {
            poll("produce to accept a request", Duration::from_secs(120), || {
                let r = http().post(self.setup.ingest(path)).json(&json!({ list: chunk })).send().ok()?;
                match r.status().as_u16() {
                    202 => Some(()),
                    503 => None,
                    s => panic!("{path}: {s} {}", r.text().unwrap_or_default()),
                }
            });
        }
    }

    fn wfm(&self) -> Value {
        http().get(self.setup.wfm("/sim/state")).send().unwrap().json().unwrap()
    }

    fn settle(&self, o: &Oracle) {
        let mut last = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        while std::time::Instant::now() < deadline {
            last = diff(&self.wfm(), o);
            if last.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("the WFM does not hold the oracle's figures:\n{}", last.join("\n"));
    }
}

fn feed(run: &Run, input: &Input, seed: u64, mut between: impl FnMut(usize)) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let contacts: Vec<Value> =
        posting_order(&input.contacts, |c| c.ended_utc, &mut rng).iter().map(contact_json).collect();
    let states: Vec<Value> =
        posting_order(&input.states, |s| s.event_utc_time, &mut rng).iter().map(state_json).collect();
    let rounds = 10;
    for i in 0..rounds {
        let c = &contacts[contacts.len() * i / rounds..contacts.len() * (i + 1) / rounds];
        let s = &states[states.len() * i / rounds..states.len() * (i + 1) / rounds];
        run.post("/v1/contacts", "contacts", c.to_vec());
        run.post("/v1/agent-states", "agentStateList", s.to_vec());
        between(i);
    }
}

#[test]
fn a_generated_run_matches_the_oracle_field_by_field() {
    let input = generate(11);
    let o = oracle(&input);
    assert!(
        o.queues.len() >= 100 && o.agents.len() >= 500,
        "{} queue rows, {} agent rows",
        o.queues.len(),
        o.agents.len()
    );
    let run = Run::start("intervals-clean");
    let _c = run.consumer(1);
    feed(&run, &input, 1, |_| {});
    run.settle(&o);
}

#[test]
fn consume_killed_five_times_still_matches_the_oracle() {
    let input = generate(12);
    let o = oracle(&input);
    let run = Run::start("intervals-kill");
    let mut c = Some(run.consumer(1));
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut kills = 0;
    // The WFM's call counts when the running instance started: it is killed once it has
    // made calls since (counted from its start, so that work it did at once still counts).
    let mut before = run.wfm()["calls"].clone();
    feed(&run, &input, 2, |i| {
        if i % 2 == 1 && kills < 5 {
            // A random moment: let it work a little, then SIGKILL and restart.
            poll("some progress", Duration::from_secs(60), || (run.wfm()["calls"] != before).then_some(()));
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..400))); // where in the work the kill lands
            c.as_mut().unwrap().kill9();
            kills += 1;
            before = run.wfm()["calls"].clone();
            c = Some(run.consumer(1));
        }
    });
    assert_eq!(kills, 5);
    run.settle(&o);
    // Kafka's own tool reads both groups caught up: lag 0 on every partition that has records,
    // although the interval books can still be rebuilt from earlier offsets.
    let topics = [run.setup.topic("acd.contact.v1"), run.setup.topic("acd.agent-state.v1")];
    let groups = [run.setup.prefix.clone(), format!("{}.intervals", run.setup.prefix)];
    let caught_up = |group: &str| -> Option<Vec<GroupRow>> {
        let rows = kafka_describe_group(&run.setup.brokers, group)?;
        let with_records: Vec<_> = rows.into_iter().filter(|r| r.end > 0).collect();
        let want = if group.ends_with(".intervals") { &topics[..] } else { &topics[1..] };
        let covered = want.iter().all(|t| with_records.iter().any(|r| &r.topic == t));
        (covered && with_records.iter().all(|r| r.lag == Some(0))).then_some(with_records)
    };
    if kafka_describe_group(&run.setup.brokers, &groups[0]).is_some() {
        for group in &groups {
            let what = format!("kafka-consumer-groups to show {group} with lag 0");
            let rows = poll(&what, Duration::from_secs(60), || caught_up(group));
            eprintln!("{group}: {} partitions with records, lag 0 on each", rows.len());
        }
    }
    // The books are still rebuilt from the rebuild offsets in the commits' metadata: a SIGKILL
    // now, then a restart, reads contacts again (not from the committed, caught-up positions),
    // and the WFM's figures stay exact with no report sent again.
    let status = std::process::Command::new(BIN)
        .args(["status", "--config", run.cfg.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    let backlog = status["rebuild_backlog_total"].as_u64().unwrap();
    assert!(backlog > 0 && status["lag_total"] == 0, "{status}");
    let before = run.wfm();
    c.as_mut().unwrap().kill9();
    let (_c2, admin) = run.consumer_at(1);
    let reread = poll("the restarted instance to rebuild its books", Duration::from_secs(120), || {
        let m = http().get(format!("http://127.0.0.1:{admin}/metrics")).send().ok()?.text().ok()?;
        let line = m.lines().find(|l| l.starts_with("acd_interval_records_read_total"))?;
        let n: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        (n >= backlog).then_some(n)
    });
    eprintln!("the restart re-read {reread} records from the rebuild offsets");
    run.settle(&o);
    let after = run.wfm();
    assert_eq!(
        after["calls"]["/wfm/acd/v1/intraday"], before["calls"]["/wfm/acd/v1/intraday"],
        "a report was sent again"
    );
}

#[test]
fn two_instances_one_killed_still_match_the_oracle() {
    let input = generate(13);
    let o = oracle(&input);
    let run = Run::start("intervals-two");
    let mut a = run.consumer(1);
    let _b = run.consumer(2);
    feed(&run, &input, 3, |i| {
        if i == 4 {
            a.kill9();
        }
    });
    run.settle(&o);
}

#[test]
fn a_late_contact_makes_its_delivered_interval_be_sent_again_corrected() {
    let run = Run::start("intervals-late");
    let _c = run.consumer(1);
    let base = (now_millis() / L) * L - 4 * L;
    let contact = |id: &str, ended: i64, delay: f64| {
        json!({"acdId": "east", "contactId": id, "queueValue": "7001", "queueName": "Late", "outcome": "HANDLED",
            "arrivedUtc": format_millis(ended - 60_000), "endedUtc": format_millis(ended), "queueDelaySec": delay,
            "talkSec": 50.0, "holdSec": 0.0, "workSec": 10.0, "agentValue": "a1"})
    };
    run.post("/v1/contacts", "contacts", vec![contact("c1", base + 60_000, 5.0)]);
    let row = |wfm: &Value| -> Option<Value> {
        wfm["queueReport"]
            .as_array()?
            .iter()
            .find(|r| r["startDate"] == format_millis(base) && r["queueValue"] == "7001")
            .cloned()
    };
    let first = poll("the interval delivered", Duration::from_secs(60), || row(&run.wfm()));
    assert_eq!(first["contactsReceived"], 1);
    assert_eq!(first["handleTime"], 60.0);
    // Well after delivery, a contact that ended in the same interval.
    run.post("/v1/contacts", "contacts", vec![contact("c2", base + 120_000, 45.0)]);
    let again = poll("the interval sent again", Duration::from_secs(60), || {
        row(&run.wfm()).filter(|r| r["contactsReceived"] == 2)
    });
    assert_eq!(again["handledShort"], 1);
    assert_eq!(again["handledLong"], 1);
    assert_eq!(again["handleTime"], 120.0);
    assert_eq!(again["svcLvlPct"], 50.0);
    assert!(run.wfm()["replaced"].as_u64().unwrap() >= 1, "the WFM upserted the row");
}

#[test]
fn pre_aggregated_rows_and_activity_lists_pass_through() {
    let run = Run::start("intervals-passthrough");
    let (_c, admin) = run.consumer_at(1);
    let post = |path: &str, body: String| {
        let r =
            http().post(run.setup.ingest(path)).header("Content-Type", "application/json").body(body).send().unwrap();
        assert_eq!(r.status().as_u16(), 202);
    };
    post("/v1/interval-reports", sample("intraday-report.json"));
    post("/v1/agent-activity", sample("agent-activity-report.json"));
    let wfm = poll("rows and activity at the WFM", Duration::from_secs(60), || {
        let w = run.wfm();
        (w["queueReport"].as_array()?.len() == 2
            && w["agentActivity"].as_array()?.len() == 1
            && w["agentSystemPerformanceReport"].as_array()?.len() == 2)
            .then_some(w)
    });
    let q = wfm["queueReport"].as_array().unwrap().iter().find(|r| r["queueValue"] == "8057").unwrap().clone();
    assert_eq!(q["startDate"], "2024-04-17T10:00:00.000Z");
    assert_eq!(q["handleTime"], 276.0);
    assert_eq!(wfm["agentActivity"][0]["agentActivity"][0]["duration"], 139_090);
    // A wiped WFM gets them back from replay, rolled up and whole as before.
    assert!(http().post(run.setup.wfm("/sim/reset")).send().unwrap().status().is_success());
    let out = std::process::Command::new(BIN)
        .args(["replay", "--config", run.cfg.to_str().unwrap(), "--from", "2024-01-15T16:45:00Z"])
        .args(["--to", "2024-04-17T10:15:00Z"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = run.wfm();
    for list in ["queueReport", "agentQueueReport", "agentSystemPerformanceReport", "agentActivity"] {
        assert_eq!(again[list], wfm[list], "{list} after replay");
    }
    // The same queue fed by contacts too: counted and logged.
    let contact = json!({"acdId": "east", "contactId": "x1", "queueValue": "8057", "outcome": "ABANDONED",
        "arrivedUtc": "2024-04-17T10:01:00Z", "endedUtc": "2024-04-17T10:02:00Z", "queueDelaySec": 60});
    run.post("/v1/contacts", "contacts", vec![contact]);
    poll("the both-ways metric", Duration::from_secs(60), || {
        let m = http().get(format!("http://127.0.0.1:{admin}/metrics")).send().ok()?.text().ok()?;
        m.contains("acd_queue_fed_both_ways_total{queue=\"8057\"} 1").then_some(())
    });
}

#[test]
fn a_30_second_wfm_outage_dead_letters_nothing_and_loses_nothing() {
    let input = generate(14);
    let o = oracle(&input);
    let run = Run::start("intervals-outage");
    let _c = run.consumer(1);
    feed(&run, &input, 4, |i| {
        if i == 3 {
            let r = http().post(run.setup.wfm("/sim/outage")).json(&json!({"seconds": 30})).send().unwrap();
            assert!(r.status().is_success());
        }
    });
    run.settle(&o);
    let calls = run.wfm()["calls"].clone();
    let failed: u64 = calls.as_object().unwrap().values().filter_map(|m| m["503"].as_u64()).sum();
    assert!(failed > 0, "the outage was felt: {calls}");
    let dlq = read_topic(&run.setup.brokers, &run.setup.topic("wfm.dlq.v1"));
    assert!(dlq.is_empty(), "an outage dead-letters nothing: {} records", dlq.len());
}

#[test]
fn a_rejected_queue_alone_goes_to_the_dead_letter_topic() {
    let run = Run::start("intervals-reject");
    let _c = run.consumer(1);
    let r = http().post(run.setup.wfm("/sim/reject-queue")).json(&json!({"queueValue": "9002"})).send().unwrap();
    assert!(r.status().is_success());
    let base = (now_millis() / L) * L - 4 * L;
    // Two queues; whichever partitions they land on, only the refused one is dead-lettered.
    let contact = |id: &str, queue: &str| {
        json!({"acdId": "east", "contactId": id, "queueValue": queue, "queueName": queue, "outcome": "ABANDONED",
            "arrivedUtc": format_millis(base + 30_000), "endedUtc": format_millis(base + 60_000), "queueDelaySec": 30.0})
    };
    let contacts: Vec<Value> =
        (0..40).map(|i| contact(&format!("r{i}"), if i % 2 == 0 { "9001" } else { "9002" })).collect();
    run.post("/v1/contacts", "contacts", contacts);
    let dlq = poll("the rejected queue in the DLQ", Duration::from_secs(60), || {
        let d = read_topic(&run.setup.brokers, &run.setup.topic("wfm.dlq.v1"));
        (!d.is_empty()).then_some(d)
    });
    let accepted = poll("the other queue at the WFM", Duration::from_secs(60), || {
        let w = run.wfm();
        let rows: Vec<Value> =
            w["queueReport"].as_array()?.iter().filter(|r| r["queueValue"] == "9001").cloned().collect();
        (!rows.is_empty()).then_some(rows)
    });
    assert_eq!(accepted[0]["contactsReceived"], 20);
    assert!(!run.wfm()["queueReport"].as_array().unwrap().iter().any(|r| r["queueValue"] == "9002"));
    assert_eq!(dlq.len(), 1, "one dead letter per rejected queue and interval");
    let (key, value, headers, ..) = &dlq[0];
    assert_eq!(key.as_deref(), Some(format!("intraday/{}/9002", format_millis(base)).as_str()));
    let h: BTreeMap<String, String> = headers.iter().cloned().collect();
    assert_eq!(h["dlq.reason"], "wfm-rejected");
    assert_eq!(h["dlq.kind"], "intraday");
    assert_eq!(h["dlq.endpoint"], "/wfm/acd/v1/intraday");
    assert_eq!(h["dlq.http.status"], "400");
    assert_eq!(h["dlq.interval.start"], format_millis(base));
    for k in ["dlq.error", "dlq.response.body", "dlq.attempts", "dlq.first.attempt.utc", "dlq.last.attempt.utc"] {
        assert!(h.contains_key(k), "{k} missing: {h:?}");
    }
    let body: Value = serde_json::from_slice(value).unwrap();
    let queues: Vec<&str> = body["reportData"]["queueReport"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["queueValue"].as_str().unwrap())
        .collect();
    assert_eq!(queues, ["9002"], "the dead letter carries exactly the body that was refused");
    // An operator can read it without acd-bridge.
    let topic = run.setup.topic("wfm.dlq.v1");
    match std::process::Command::new("kcat")
        .args(["-C", "-b", &run.setup.brokers, "-t", &topic, "-e", "-q", "-J"])
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("wfm-rejected") && text.contains("9002") && text.contains("dlq.http.status"),
                "{text}"
            );
        }
        Err(_) => eprintln!("kcat is not installed: the kcat view of the dead letter was not checked"),
    }

    // Re-drive: a dry run sends nothing; once the WFM takes the queue again, redrive completes it;
    // a second redrive sends nothing.
    let cfg = run.cfg.to_str().unwrap();
    let acd = |args: &[&str]| {
        let out = std::process::Command::new(BIN).args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let intraday_calls = || -> u64 {
        run.wfm()["calls"]["/wfm/acd/v1/intraday"].as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
    };
    let before = intraday_calls();
    let (code, out) = acd(&["dlq", "redrive", "--config", cfg, "--dry-run"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("would POST"), "{out}");
    assert_eq!(intraday_calls(), before, "a dry run sends nothing");
    let r = http().delete(run.setup.wfm("/sim/reject-queue")).send().unwrap();
    assert!(r.status().is_success());
    let (code, out) = acd(&["dlq", "redrive", "--config", cfg, "--reason", "wfm-rejected"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 delivered"), "{out}");
    let row = run.wfm()["queueReport"].as_array().unwrap().iter().find(|r| r["queueValue"] == "9002").cloned();
    assert_eq!(row.expect("the rejected queue, re-driven")["contactsReceived"], 20);
    let (_, listed) = acd(&["dlq", "list", "--config", cfg, "--json"]);
    let letter: Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    assert_eq!(letter["redriven"], "delivered");
    let sent = intraday_calls();
    let (code, out) = acd(&["dlq", "redrive", "--config", cfg]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("1 skipped as already re-driven"), "{out}");
    assert_eq!(intraday_calls(), sent, "a second redrive sends nothing");
}

#[test]
fn a_wiped_wfm_gets_its_range_back_from_replay() {
    let input = generate(15);
    let o = oracle(&input);
    let run = Run::start("intervals-replay");
    let c = run.consumer(1);
    feed(&run, &input, 5, |_| {});
    run.settle(&o);
    drop(c);
    let r = http().post(run.setup.wfm("/sim/reset")).send().unwrap();
    assert!(r.status().is_success());
    assert!(run.wfm()["queueReport"].as_array().unwrap().is_empty());
    let first =
        input.contacts.iter().map(|c| c.ended_utc).chain(input.states.iter().map(|s| s.event_utc_time)).min().unwrap();
    let last =
        input.contacts.iter().map(|c| c.ended_utc).chain(input.states.iter().map(|s| s.event_utc_time)).max().unwrap();
    let (from, to) = (format_millis(first.div_euclid(L) * L), format_millis(last.div_euclid(L) * L + L));
    let out = std::process::Command::new(BIN)
        .args(["replay", "--config", run.cfg.to_str().unwrap(), "--from", &from, "--to", &to])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("0 refused"), "{stdout}");
    let d = diff(&run.wfm(), &o);
    assert!(d.is_empty(), "after replay the WFM differs from the oracle:\n{}", d.join("\n"));
}

/// What `kafka-consumer-groups --reset-offsets --to-earliest` does to a stopped group: commits
/// the earliest offsets for every partition of its topics.
fn rewind_group(brokers: &str, group: &str, topics: &[String]) {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for t in topics {
        let md = c.fetch_metadata(Some(t), Duration::from_secs(10)).unwrap();
        for p in md.topics()[0].partitions() {
            let (lo, _) = c.fetch_watermarks(t, p.id(), Duration::from_secs(10)).unwrap();
            tpl.add_partition_offset(t, p.id(), rdkafka::Offset::Offset(lo)).unwrap();
        }
    }
    c.commit(&tpl, CommitMode::Sync).unwrap();
}

#[test]
fn a_group_rewound_to_the_start_recomputes_and_sends_nothing_again() {
    let input = generate(16);
    let o = oracle(&input);
    let run = Run::start("intervals-rewind");
    let mut c = run.consumer(1);
    feed(&run, &input, 6, |_| {});
    run.settle(&o);
    assert_eq!(c.terminate(), Some(0));
    let before = run.wfm();
    let topics: Vec<String> = ["acd.agent-state.v1", "acd.contact.v1", "acd.interval.v1", "acd.agent-activity.v1"]
        .iter()
        .map(|t| run.setup.topic(t))
        .collect();
    rewind_group(&run.setup.brokers, &run.setup.prefix, &topics[..1]);
    rewind_group(&run.setup.brokers, &format!("{}.intervals", run.setup.prefix), &topics);
    let (_c, admin) = run.consumer_at(1);
    // It reads everything again (the group is caught up) ...
    let states = input.states.len() as u64;
    poll("the rewound consumer to catch up", Duration::from_secs(120), || {
        let m = http().get(format!("http://127.0.0.1:{admin}/metrics")).send().ok()?.text().ok()?;
        let read = |name: &str| -> Option<u64> {
            m.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse().ok()
        };
        (read("acd_agent_states_read_total")? >= states && read("acd_interval_records_read_total")? >= states)
            .then_some(())
    });
    // Intervals recomputed and found delivered count as delivered on the status board.
    let last_intraday = o.queues.keys().map(|k| &k.0).chain(o.agents.keys().map(|k| &k.0)).max().unwrap().clone();
    let last_activity = o.activity.keys().map(|k| &k.0).max().unwrap().clone();
    let status = poll("no lag, every interval closed", Duration::from_secs(60), || {
        let out = std::process::Command::new(BIN)
            .args(["status", "--config", run.cfg.to_str().unwrap(), "--json"])
            .env("ACD_BRIDGE__CONSUMER__ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
            .output()
            .ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        let last = &v["consumer"]["last_delivered_interval"];
        (v["lag_total"] == 0
            && last["intraday"] == last_intraday.as_str()
            && last["agent-activity"] == last_activity.as_str())
        .then_some(v)
    });
    assert_eq!(status["dlq_depth"], 0);
    assert_eq!(status["consumer"]["open_intervals"], serde_json::json!({}), "{status}");
    let m = http().get(format!("http://127.0.0.1:{admin}/metrics")).send().unwrap().text().unwrap();
    assert!(m.contains("acd_consumer_lag "), "lag is in /metrics");
    // ... and the WFM receives nothing new: states are known to the dedup journal, reports to
    // their delivered hashes.
    let after = run.wfm();
    assert_eq!(after["agentStates"].as_array().unwrap().len(), before["agentStates"].as_array().unwrap().len());
    assert_eq!(after["calls"]["/wfm/acd/v1/intraday"], before["calls"]["/wfm/acd/v1/intraday"]);
    assert_eq!(after["calls"]["/wfm/acd/v1/agent-activity"], before["calls"]["/wfm/acd/v1/agent-activity"]);
    assert!(diff(&after, &o).is_empty());
}

// ---------------------------------------------------------------- losing the broker

/// The broker-loss scenario on a broker of the test's own: the first half of the input in, and
/// every interval up to now closed by the wall-clock rule, so agents still logged in at that
/// point are reported logged in for the intervals after it; then the broker is SIGKILLed until
/// the consumer has lost its partitions (and for `outage` at least), and started again; then the
/// rest of the input, in which those agents log out. The interval books are rebuilt from Kafka
/// after the outage, and the WFM must still end with exactly the oracle's figures: no row the
/// complete input does not produce may keep a non-zero figure.
fn broker_loss(name: &str, seed: u64, outage: Duration, kill_consumer: bool) {
    let broker = OwnBroker::start();
    let input = generate(seed);
    let o = oracle(&input);
    let run = Run::with(Setup::on(name, &broker.bootstrap()));
    let (mut c, admin) = run.consumer_at(1);
    let status =
        || -> Option<Value> { http().get(format!("http://127.0.0.1:{admin}/status")).send().ok()?.json().ok() };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let contacts: Vec<Value> =
        posting_order(&input.contacts, |c| c.ended_utc, &mut rng).iter().map(contact_json).collect();
    let states: Vec<Value> =
        posting_order(&input.states, |s| s.event_utc_time, &mut rng).iter().map(state_json).collect();
    let (hc, hs) = (contacts.len() / 2, states.len() / 2);
    run.post("/v1/contacts", "contacts", contacts[..hc].to_vec());
    run.post("/v1/agent-states", "agentStateList", states[..hs].to_vec());
    // Every agent logs out within the first second of the data's last interval: the oracle has
    // no row there, so a non-zero one at the WFM came from a premature figure.
    let last = input.states.iter().map(|s| s.event_utc_time).max().unwrap() / L * L;
    assert!(!o.agents.keys().any(|(start, _)| *start == format_millis(last)));
    poll("the wall-clock rule to close the data's last interval", Duration::from_secs(120), || {
        run.wfm()["agentSystemPerformanceReport"]
            .as_array()?
            .iter()
            .any(|r| r["startDate"] == format_millis(last) && r["loginTime"].as_f64() > Some(0.0))
            .then_some(())
    });
    let log_before = c.log().len();
    let lost = std::time::Instant::now();
    broker.kill9();
    poll("the consumer to see Kafka gone", Duration::from_secs(60), || {
        (status()?["kafka"]["state"] == "DISCONNECTED").then_some(())
    });
    poll("the consumer to lose its partitions", Duration::from_secs(120), || {
        (status()?["interval_partitions"].as_u64()? == 0).then_some(())
    });
    if kill_consumer {
        c.kill9();
    }
    // The outage lasts as long as the scenario says (this sleep waits for nothing).
    std::thread::sleep(outage.saturating_sub(lost.elapsed()));
    let outage_took = lost.elapsed();
    broker.restart();
    if kill_consumer {
        c = run.consumer(1);
    } else {
        poll("the consumer to see Kafka back", Duration::from_secs(120), || {
            (status()?["kafka"]["state"] == "CONNECTED").then_some(())
        });
    }
    run.post_patiently("/v1/contacts", "contacts", &contacts[hc..]);
    run.post_patiently("/v1/agent-states", "agentStateList", &states[hs..]);
    run.settle(&o);
    if !kill_consumer {
        // One line when Kafka went, one every 30 s while it stayed away, one when it was back;
        // nothing else at WARN or ERROR.
        let log = c.log();
        let during: Vec<&str> =
            log[log_before..].lines().filter(|l| l.contains(" WARN ") || l.contains("ERROR ")).collect();
        let allowed = 2 + outage_took.as_secs() as usize / 30 + 2;
        assert!(
            during.len() <= allowed,
            "{} lines at WARN or ERROR, {allowed} allowed:\n{}",
            during.len(),
            during.join("\n")
        );
        assert_eq!(log[log_before..].matches("Kafka unreachable").count(), 1, "{}", &log[log_before..]);
        assert!(log[log_before..].contains("Kafka reachable again"));
    }
}

#[test]
fn a_broker_killed_mid_traffic_leaves_no_stale_row() {
    broker_loss("intervals-broker-kill", 21, Duration::ZERO, false);
}

#[test]
fn a_broker_down_for_60_seconds_leaves_no_stale_row() {
    broker_loss("intervals-broker-60s", 22, Duration::from_secs(60), false);
}

#[test]
fn consume_killed_while_the_broker_is_down_leaves_no_stale_row() {
    broker_loss("intervals-broker-and-consume", 23, Duration::ZERO, true);
}
