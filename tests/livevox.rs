//! The LiveVox connector end to end with real processes: `livevox-sim` (the LiveVox API),
//! `produce` with `[connectors.livevox]`, a real Kafka broker, `consume` and `wfm-sim`. What the
//! WFM receives is compared with the simulator's ground truth: the events it served.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use acd_schemas::time::{format_millis, now_millis};
use common::*;
use serde_json::{json, Value};

const TOKEN: &str = "lv-test-access-token-7f3a";
const PASSWORD: &str = "pw-Zq8!never-logged";
const L: i64 = 15 * 60_000;

/// One test's processes. Fields drop in order: processes (which print their logs when a test
/// fails) before the setup, whose folder holds the logs.
struct Lv {
    sim_port: u16,
    produce_cfg: PathBuf,
    consume_cfg: PathBuf,
    produce: Option<Proc>,
    _consume: Option<Proc>,
    _sim: Proc,
    _wfm: Proc,
    setup: Setup,
}

impl Lv {
    /// The simulator with `sim_args`, the WFM, `produce` (its LiveVox password `password`) and,
    /// when `with_consume`, `consume`.
    fn start(name: &str, sim_args: &[&str], password: &str, with_consume: bool) -> Lv {
        let setup = Setup::new(name);
        let sim_port = free_port();
        let listen = format!("127.0.0.1:{sim_port}");
        let mut args = vec!["livevox-sim", "--listen", &listen, "--access-token", TOKEN, "--password", PASSWORD];
        args.extend_from_slice(sim_args);
        let sim = Proc::start("livevox-sim", &args, &setup.scratch.0);
        wait_ok(&format!("http://127.0.0.1:{sim_port}/sim/state"), Duration::from_secs(30));
        let wfm_listen = format!("127.0.0.1:{}", setup.wfm_port);
        let wfm = Proc::start("wfm-sim", &["wfm-sim", "--listen", &wfm_listen], &setup.scratch.0);
        wait_ok(&setup.wfm("/sim/state"), Duration::from_secs(30));
        let token_file = setup.scratch.file("lv-access", &format!("{TOKEN}\n"));
        let password_file = setup.scratch.file("lv-password", &format!("{password}\n"));
        let base = std::fs::read_to_string(setup.config("")).unwrap();
        let consume_cfg = setup.scratch.file(
            "consume.toml",
            &format!(
                "{base}\n[interval]\nminutes = 15\nidle_close_seconds = 1\ngrace_seconds = 5\nzero_fill_days = 0\n"
            ),
        );
        let produce_cfg = setup.scratch.file(
            "produce.toml",
            &format!(
                "{base}\n[connectors.livevox]\nenabled = true\nacd_id = \"lv\"\nbase_url = \"http://127.0.0.1:{sim_port}\"\n\
                 access_token_file = \"{}\"\nclient_name = \"client\"\nuser_name = \"api-user\"\npassword_file = \"{}\"\n\
                 feed_timeout_ms = 5000\nstate_dir = \"{}\"\n",
                token_file.display(),
                password_file.display(),
                setup.scratch.0.join("lv-state").display()
            ),
        );
        let mut lv =
            Lv { sim_port, produce_cfg, consume_cfg, produce: None, _consume: None, _sim: sim, _wfm: wfm, setup };
        lv.start_produce();
        if with_consume {
            let c =
                Proc::start("consume", &["consume", "--config", lv.consume_cfg.to_str().unwrap()], &lv.setup.scratch.0);
            lv._consume = Some(c);
        }
        lv
    }

    fn start_produce(&mut self) {
        let p =
            Proc::start("produce", &["produce", "--config", self.produce_cfg.to_str().unwrap()], &self.setup.scratch.0);
        wait_ok(&self.setup.ingest("/healthz"), Duration::from_secs(60));
        self.produce = Some(p);
    }

    fn sim(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.sim_port)
    }

    fn sim_state(&self) -> Value {
        http().get(self.sim("/sim/state")).send().unwrap().json().unwrap()
    }

    fn sim_post(&self, path: &str, body: Value) {
        assert!(http().post(self.sim(path)).json(&body).send().unwrap().status().is_success(), "{path}");
    }

    fn truth(&self) -> Vec<Value> {
        let v: Value = http().get(self.sim("/sim/truth")).send().unwrap().json().unwrap();
        v["agentStates"].as_array().unwrap().clone()
    }

    fn wfm(&self) -> Value {
        http().get(self.setup.wfm("/sim/state")).send().unwrap().json().unwrap()
    }

    /// Waits until every event generated so far was served, and every served one reached the
    /// WFM exactly as the simulator emitted it (as agent states of acdId `lv`).
    fn settle(&self) -> usize {
        poll("every generated event served", Duration::from_secs(120), || {
            let s = self.sim_state();
            (s["eventsServed"] == s["eventsGenerated"]).then_some(())
        });
        let want: BTreeSet<(String, String, String, String)> = self
            .truth()
            .iter()
            .map(|t| {
                (
                    t["loginId"].as_str().unwrap().to_string(),
                    t["eventCode"].as_str().unwrap().to_string(),
                    t["reasonCode"].as_str().unwrap().to_string(),
                    format_millis(t["eventUtcTime"].as_i64().unwrap()),
                )
            })
            .collect();
        poll("every served event at the WFM", Duration::from_secs(120), || {
            let got = wfm_agent_states(&self.wfm(), "lv");
            (got == want).then_some(())
        });
        want.len()
    }

    fn status_json(&self) -> Value {
        let out = std::process::Command::new(BIN)
            .args(["status", "--config", self.consume_cfg.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The LiveVox connector as `acd-bridge status` reads it from the connector-status topic.
    fn connector(&self) -> Option<Value> {
        self.status_json()["connectors"].as_array()?.iter().find(|c| c["connector"] == "livevox").cloned()
    }

    fn produce_log(&self) -> String {
        self.produce.as_ref().map(|p| p.log()).unwrap_or_default()
    }
}

#[test]
fn produce_killed_mid_feed_resumes_with_its_saved_token_and_loses_nothing() {
    let mut lv = Lv::start(
        "lv-kill",
        &["--events", "3000", "--rate", "0", "--answer-events", "25", "--spacing-ms", "50"],
        PASSWORD,
        true,
    );
    // Kill it once it has taken a part of the feed.
    poll("some answers", Duration::from_secs(60), || (lv.sim_state()["eventsServed"].as_u64()? >= 500).then_some(()));
    lv.produce.as_mut().unwrap().kill9();
    let before = lv.sim_state();
    let given: BTreeSet<String> =
        before["answers"].as_array().unwrap().iter().filter_map(|a| a["token"].as_str().map(str::to_string)).collect();
    let calls_before = before["answers"].as_array().unwrap().len();
    lv.start_produce();
    poll("the restarted connector's first call", Duration::from_secs(60), || {
        (lv.sim_state()["answers"].as_array()?.len() > calls_before).then_some(())
    });
    let after = lv.sim_state();
    let first = &after["answers"][calls_before]["presented"];
    assert!(first.is_string(), "the restarted connector resumed with a saved token, not {{}}: {first}");
    assert!(given.contains(first.as_str().unwrap()), "a token the feed gave before the kill");
    // More events while it runs.
    lv.sim_post("/sim/generate", json!({"events": 200}));
    let n = lv.settle();
    assert!(n >= 3000, "{n} states");
    let log = lv.produce_log();
    assert!(log.contains("resumes after its saved token"), "{log}");
}

#[test]
fn an_expired_session_means_one_new_login_not_a_loop_of_401s() {
    let lv = Lv::start("lv-expiry", &["--events", "200", "--rate", "0", "--answer-events", "50"], PASSWORD, true);
    lv.settle();
    assert_eq!(lv.sim_state()["logins"], 1);
    lv.sim_post("/sim/expire-sessions", json!({}));
    lv.sim_post("/sim/generate", json!({"events": 100}));
    lv.settle();
    let s = lv.sim_state();
    assert_eq!(s["logins"], 2, "one new login after the session died: {s}");
    assert_eq!(s["failedLogins"], 0);
    let unauthorized = s["answers"].as_array().unwrap().iter().filter(|a| a["status"] == 401).count();
    assert_eq!(unauthorized, 0, "the feed's answers: no 401 reaches the connector's retry loop");
}

#[test]
fn wrong_credentials_are_disconnected_named_retried_and_never_logged() {
    let lv = Lv::start("lv-wrong", &["--events", "10", "--rate", "0"], "not-the-password", false);
    poll("a second login attempt", Duration::from_secs(60), || {
        (lv.sim_state()["failedLogins"].as_u64()? >= 2).then_some(())
    });
    let c = poll("the connector's state on the topic", Duration::from_secs(60), || {
        lv.connector().filter(|c| {
            c["status"] == "DISCONNECTED" && c["detail"].as_str().unwrap_or("").contains("refused the login")
        })
    });
    assert!(c["detail"].as_str().unwrap().contains("password_file"), "names what to check: {c}");
    let log = lv.produce_log();
    assert!(log.contains("LiveVox refused the login"), "{log}");
    assert!(!log.contains("not-the-password") && !log.contains(TOKEN), "a credential in the log: {log}");
    assert_eq!(lv.sim_state()["eventsServed"], 0);
}

#[test]
fn too_many_requests_and_unavailable_are_waited_out_as_asked() {
    let lv = Lv::start("lv-faults", &["--events", "50", "--rate", "0"], PASSWORD, true);
    lv.settle();
    lv.sim_post("/sim/faults", json!({"tooMany": 2, "retryAfter": 1, "unavailable": 2}));
    // The connector keeps calling (an empty answer comes back after the hold): every fault is
    // served, then new events still arrive.
    poll("every fault served", Duration::from_secs(60), || {
        let f = lv.sim_state()["faults"].clone();
        (f["too_many"] == 0 && f["unavailable"] == 0).then_some(())
    });
    lv.sim_post("/sim/generate", json!({"events": 100}));
    lv.settle();
    let answers = lv.sim_state()["answers"].as_array().unwrap().clone();
    let statuses: Vec<u64> = answers.iter().map(|a| a["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 2, "{statuses:?}");
    // After each 429 the next call came no sooner than its Retry-After (1 s).
    for (i, a) in answers.iter().enumerate().filter(|(_, a)| a["status"] == 429) {
        let gap = answers[i + 1]["at"].as_i64().unwrap() - a["at"].as_i64().unwrap();
        assert!(gap >= 1000, "called again {gap} ms after a 429 with Retry-After: 1");
        assert_eq!(answers[i + 1]["presented"], a["presented"], "the same token again");
    }
    let log = lv.produce_log();
    assert!(!log.contains(PASSWORD) && !log.contains(TOKEN));
}

#[test]
fn a_refused_token_restarts_the_feed_and_status_says_degraded_naming_the_gap() {
    let lv = Lv::start("lv-refused", &["--events", "100", "--rate", "0"], PASSWORD, true);
    lv.settle();
    // The saved token is refused, and the fresh start cannot get through yet.
    lv.sim_post("/sim/faults", json!({"refuseTokens": 1, "unavailable": 1000}));
    lv.sim_post("/sim/generate", json!({"events": 20}));
    let c = poll("DEGRADED with the gap named", Duration::from_secs(60), || {
        lv.connector()
            .filter(|c| c["status"] == "DEGRADED" && c["detail"].as_str().unwrap_or("").contains("may be missing"))
    });
    assert!(c["detail"].as_str().unwrap().contains("refused"), "{c}");
    lv.sim_post("/sim/faults", json!({"unavailable": 0}));
    // Restarted from `{}`: the feed serves its whole window again; the WFM has every state once
    // (`consume` removes what was read twice).
    lv.settle();
    let answers = lv.sim_state()["answers"].as_array().unwrap().clone();
    let restart = answers.iter().position(|a| a["status"] == 410).unwrap();
    assert!(answers[restart + 1..]
        .iter()
        .all(|a| a["presented"].is_null() || a["status"] == 200 || a["status"] == 503));
    assert!(answers[restart + 1..].iter().any(|a| a["presented"].is_null()), "the feed started again with {{}}");
    poll("CONNECTED again", Duration::from_secs(60), || lv.connector().filter(|c| c["status"] == "CONNECTED"));
    let wfm = lv.wfm();
    let states: Vec<&Value> = wfm["agentStates"].as_array().unwrap().iter().filter(|s| s["acdId"] == "lv").collect();
    let distinct: BTreeSet<String> = states.iter().map(|s| s.to_string()).collect();
    assert_eq!(distinct.len(), states.len(), "no state reached the WFM twice");
}

/// Activity lists by (startDate, agentValue): (state, startTime, duration) each.
type Lists = BTreeMap<(String, String), Vec<(String, String, i64)>>;

/// The contract's default categories, for LiveVox's event types.
fn category(code: &str) -> u8 {
    match code {
        "LOGOFF" => 0,
        "READY" => 1,
        "NOT_READY" | "LOGON" => 2,
        _ => 3,
    }
}

#[test]
fn agent_rows_computed_from_livevox_states_equal_the_simulators_truth() {
    // Two hours of history, ending well before now, every agent logged off at the end: all of
    // its intervals close.
    let start = (now_millis() / L - 12) * L + 7_000;
    let start_arg = start.to_string();
    let lv = Lv::start(
        "lv-rows",
        &["--events", "1500", "--rate", "0", "--spacing-ms", "4000", "--start-ms", &start_arg, "--agents", "12"],
        PASSWORD,
        true,
    );
    lv.settle();
    // Independently of the interval library: per agent and interval, login/ready/not-ready
    // milliseconds, rounded half up to seconds.
    let mut by_agent: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for t in lv.truth() {
        by_agent
            .entry(t["loginId"].as_str().unwrap().to_string())
            .or_default()
            .push((t["eventUtcTime"].as_i64().unwrap(), t["eventCode"].as_str().unwrap().to_string()));
    }
    let mut want: BTreeMap<(String, String), (i64, i64, i64)> = BTreeMap::new();
    // Activity: each state's segment, whole, in the interval where it ends; logged-off ones left out.
    let mut want_activity: Lists = BTreeMap::new();
    for (agent, mut states) in by_agent {
        states.sort();
        for w in states.windows(2) {
            let ((from, code), (to, _)) = (&w[0], &w[1]);
            if category(code) != 0 {
                want_activity.entry((format_millis(to / L * L), agent.clone())).or_default().push((
                    code.clone(),
                    format_millis(*from),
                    to - from,
                ));
            }
        }
        let mut per: BTreeMap<i64, (i64, i64, i64)> = BTreeMap::new();
        for w in states.windows(2) {
            let ((from, code), (to, _)) = (&w[0], &w[1]);
            let cat = category(code);
            let mut t = *from;
            while t < *to {
                let end = ((t / L) + 1) * L;
                let until = end.min(*to);
                let e = per.entry(t / L * L).or_default();
                if cat != 0 {
                    e.0 += until - t;
                }
                if cat == 1 {
                    e.1 += until - t;
                }
                if cat == 2 {
                    e.2 += until - t;
                }
                t = until;
            }
        }
        for (s, (login, ready, not_ready)) in per {
            let r = |ms: i64| (ms + 500) / 1000;
            if r(login) > 0 {
                want.insert((format_millis(s), agent.clone()), (r(login), r(ready), r(not_ready)));
            }
        }
    }
    assert!(want.len() >= 50, "{} agent rows", want.len());
    poll("the WFM's agent rows equal the truth's", Duration::from_secs(180), || {
        let wfm = lv.wfm();
        let got: BTreeMap<(String, String), (i64, i64, i64)> = wfm["agentSystemPerformanceReport"]
            .as_array()?
            .iter()
            .filter(|r| r["loginTime"].as_f64() != Some(0.0))
            .map(|r| {
                (
                    (r["startDate"].as_str().unwrap().to_string(), r["agentValue"].as_str().unwrap().to_string()),
                    (
                        r["loginTime"].as_f64().unwrap() as i64,
                        r["readyTime"].as_f64().unwrap() as i64,
                        r["notReadyTime"].as_f64().unwrap() as i64,
                    ),
                )
            })
            .collect();
        (got == want).then_some(())
    });
    assert!(want_activity.len() >= 50, "{} activity lists", want_activity.len());
    poll("the WFM's activity lists equal the truth's", Duration::from_secs(120), || {
        let wfm = lv.wfm();
        let got: Lists = wfm["agentActivity"]
            .as_array()?
            .iter()
            .filter(|r| !r["agentActivity"].as_array().is_some_and(Vec::is_empty))
            .map(|r| {
                let mut list: Vec<(String, String, i64)> = r["agentActivity"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| {
                        (
                            a["state"].as_str().unwrap().to_string(),
                            a["startTime"].as_str().unwrap().to_string(),
                            a["duration"].as_i64().unwrap(),
                        )
                    })
                    .collect();
                list.sort_by(|a, b| a.1.cmp(&b.1));
                ((r["startDate"].as_str().unwrap().to_string(), r["agentValue"].as_str().unwrap().to_string()), list)
            })
            .collect();
        (got == want_activity).then_some(())
    });
}
