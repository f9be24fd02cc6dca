//! The Avaya CMS connector end to end with real processes: `cms-sim` (connecting to the
//! real-time socket as CMS does, writing call history files and exports), `produce` with
//! `[connectors.avaya_cms]`, a real Kafka broker, `consume` and `wfm-sim`. What the WFM receives
//! is compared with the simulator's ground truth, computed from what it generated.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use acd_schemas::time::format_millis;
use common::*;
use serde_json::Value;

/// One test's processes; processes drop (printing their logs on failure) before the setup.
struct Cms {
    produce_cfg: PathBuf,
    produce: Option<Proc>,
    _consume: Proc,
    _wfm: Proc,
    rt_port: u16,
    ech: PathBuf,
    hist: PathBuf,
    consume_cfg: PathBuf,
    setup: Setup,
}

impl Cms {
    /// wfm-sim, `consume` (intervals of `minutes`) and `produce` with the CMS section plus `extra`.
    fn start(name: &str, minutes: u32, extra: &str) -> Cms {
        let setup = Setup::new(name);
        let wfm_listen = format!("127.0.0.1:{}", setup.wfm_port);
        let m = minutes.to_string();
        let wfm =
            Proc::start("wfm-sim", &["wfm-sim", "--listen", &wfm_listen, "--interval-minutes", &m], &setup.scratch.0);
        wait_ok(&setup.wfm("/sim/state"), Duration::from_secs(30));
        let base = std::fs::read_to_string(setup.config("")).unwrap();
        let intervals = format!(
            "\n[interval]\nminutes = {minutes}\nidle_close_seconds = 1\ngrace_seconds = 5\nzero_fill_days = 0\n"
        );
        let consume_cfg = setup.scratch.file("consume.toml", &format!("{base}{intervals}"));
        let rt_port = free_port();
        let (ech, hist) = (setup.scratch.0.join("ech"), setup.scratch.0.join("hist"));
        let produce_cfg = setup.scratch.file(
            "produce.toml",
            &format!(
                "{base}{intervals}\n[connectors.avaya_cms]\nenabled = true\nacd_id = \"cms\"\n\
                 rt_listen = \"127.0.0.1:{rt_port}\"\nech_dir = \"{}\"\nech_settle_ms = 300\nhist_dir = \"{}\"\n\
                 rt_refresh_seconds = 3\nqueue_names = {{ \"57\" = \"Billing\" }}\n{extra}\n",
                ech.display(),
                hist.display(),
            ),
        );
        let consume = Proc::start("consume", &["consume", "--config", consume_cfg.to_str().unwrap()], &setup.scratch.0);
        let mut cms =
            Cms { produce_cfg, produce: None, _consume: consume, _wfm: wfm, rt_port, ech, hist, consume_cfg, setup };
        cms.start_produce();
        cms
    }

    fn start_produce(&mut self) {
        let p =
            Proc::start("produce", &["produce", "--config", self.produce_cfg.to_str().unwrap()], &self.setup.scratch.0);
        wait_ok(&self.setup.ingest("/healthz"), Duration::from_secs(60));
        self.produce = Some(p);
    }

    /// Runs `cms-sim` with `args` to its end; its truth.
    fn sim(&self, args: &[&str]) -> Value {
        let truth = self.setup.scratch.0.join(format!("truth-{}.json", rand::random::<u32>()));
        let rt = format!("127.0.0.1:{}", self.rt_port);
        let mut all = vec!["cms-sim", "--truth", truth.to_str().unwrap(), "--refresh-seconds", "3"];
        all.extend_from_slice(args);
        let all: Vec<String> = all.iter().map(|a| if *a == "RT" { rt.clone() } else { a.to_string() }).collect();
        let out = std::process::Command::new(BIN).args(&all).output().unwrap();
        assert!(
            out.status.success(),
            "cms-sim failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&std::fs::read(truth).unwrap()).unwrap()
    }

    fn wfm(&self) -> Value {
        http().get(self.setup.wfm("/sim/state")).send().unwrap().json().unwrap()
    }

    fn produce_log(&self) -> String {
        self.produce.as_ref().map(|p| p.log()).unwrap_or_default()
    }

    /// The CMS connectors as `acd-bridge status` reads them from the connector-status topic.
    fn connectors(&self) -> BTreeMap<String, String> {
        let out = std::process::Command::new(BIN)
            .args(["status", "--config", self.consume_cfg.to_str().unwrap(), "--json"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["connectors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        (
                            c["connector"].as_str().unwrap_or("").to_string(),
                            c["status"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until the WFM holds exactly the truth's agent states (acdId `cms`).
    fn states_match(&self, truth: &Value) -> usize {
        let want: BTreeSet<(String, String, String, String)> = truth["agentStates"]
            .as_array()
            .unwrap()
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
        let mut last = BTreeSet::new();
        let found = try_poll(Duration::from_secs(90), || {
            last = wfm_agent_states(&self.wfm(), "cms");
            (last == want).then_some(())
        });
        if found.is_none() {
            let missing: Vec<_> = want.difference(&last).take(10).collect();
            let extra: Vec<_> = last.difference(&want).take(10).collect();
            panic!(
                "agent states differ: {} wanted, {} at the WFM; missing {missing:?}; unexpected {extra:?}",
                want.len(),
                last.len()
            );
        }
        // Each exactly once.
        let n = self.wfm()["agentStates"].as_array().unwrap().iter().filter(|s| s["acdId"] == "cms").count();
        assert_eq!(n, want.len(), "some agent state reached the WFM twice");
        want.len()
    }

    /// Waits until the WFM's queue and agent-queue rows with contacts are the truth's, field by field.
    fn rows_match(&self, truth: &Value, sum_to_minutes: i64) {
        let want_q = queue_figures(truth["queueRows"].as_array().unwrap(), sum_to_minutes, "startMs");
        let want_a = agent_figures(truth["agentQueueRows"].as_array().unwrap(), sum_to_minutes, "startMs");
        let mut got = (BTreeMap::new(), BTreeMap::new());
        let same = try_poll(Duration::from_secs(120), || {
            let w = self.wfm();
            let q = queue_figures(w["queueReport"].as_array()?, 0, "startDate");
            let a = agent_figures(w["agentQueueReport"].as_array()?, 0, "startDate");
            got = (q, a);
            (got.0 == want_q && got.1 == want_a).then_some(())
        });
        if same.is_none() {
            for (k, v) in &want_q {
                if got.0.get(k) != Some(v) {
                    panic!(
                        "queue row {k:?}: wanted {v:?}, the WFM has {:?} ({} rows wanted, {} held)",
                        got.0.get(k),
                        want_q.len(),
                        got.0.len()
                    );
                }
            }
            for (k, v) in &got.0 {
                assert!(want_q.contains_key(k), "unexpected queue row {k:?}: {v:?}");
            }
            assert_eq!(got.1, want_a, "agent-queue rows");
        }
    }
}

fn try_poll<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn start_of(row: &Value, key: &str, sum_to_minutes: i64) -> String {
    let t = match &row[key] {
        Value::String(s) => acd_schemas::time::parse_rfc3339(s).unwrap(),
        v => v.as_i64().unwrap(),
    };
    if sum_to_minutes > 0 {
        let l = sum_to_minutes * 60_000;
        format_millis(t.div_euclid(l) * l)
    } else {
        format_millis(t)
    }
}

/// (start, queue) -> the counted figures (times in milliseconds), rows without contacts left out.
fn queue_figures(rows: &[Value], sum_to_minutes: i64, key: &str) -> BTreeMap<(String, String), [i64; 9]> {
    let mut out: BTreeMap<(String, String), [i64; 9]> = BTreeMap::new();
    for r in rows {
        let f = |n: &str| r[n].as_f64().unwrap_or(0.0);
        let ms = |n: &str| (f(n) * 1000.0).round() as i64;
        let v = [
            f("contactsReceived") as i64,
            f("handledShort") as i64,
            f("handledLong") as i64,
            f("abandonedShort") as i64,
            f("abandonedLong") as i64,
            ms("handleTime"),
            ms("holdTime"),
            ms("workTime"),
            ms("queueDelayTime"),
        ];
        if v[0] == 0 {
            continue;
        }
        let e =
            out.entry((start_of(r, key, sum_to_minutes), r["queueValue"].as_str().unwrap().to_string())).or_default();
        for (a, b) in e.iter_mut().zip(v) {
            *a += b;
        }
    }
    out
}

fn agent_figures(rows: &[Value], sum_to_minutes: i64, key: &str) -> BTreeMap<(String, String, String), [i64; 4]> {
    let mut out: BTreeMap<(String, String, String), [i64; 4]> = BTreeMap::new();
    for r in rows {
        let f = |n: &str| r[n].as_f64().unwrap_or(0.0);
        let ms = |n: &str| (f(n) * 1000.0).round() as i64;
        let v = [f("handled") as i64, ms("handledTime"), ms("holdTime"), ms("workTime")];
        if v[0] == 0 {
            continue;
        }
        let k = (
            start_of(r, key, sum_to_minutes),
            r["queueValue"].as_str().unwrap().to_string(),
            r["agentValue"].as_str().unwrap().to_string(),
        );
        let e = out.entry(k).or_default();
        for (a, b) in e.iter_mut().zip(v) {
            *a += b;
        }
    }
    out
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn real_time_socket_with_an_ha_copy_garbage_and_reconnects_gives_the_wfm_every_state_once() {
    let cms = Cms::start("cms-rt", 15, "");
    let truth = cms.sim(&["--rt", "RT", "--agents", "40", "--minutes", "30", "--ha", "--faults", "--seed", "7"]);
    let n = cms.states_match(&truth);
    assert!(n > 200, "{n} states");
    let log = cms.produce_log();
    assert!(log.contains("CMS real-time line skipped"), "the garbage lines were counted and skipped");
    assert!(log.contains("ended mid-snapshot"), "the cut connection was seen: {log}");
    let metrics = http().get(cms.setup.ingest("/metrics")).send().unwrap().text().unwrap();
    let skipped = metrics
        .lines()
        .find(|l| l.starts_with("acd_connector_items_skipped_total") && l.contains("avaya_cms.rt"))
        .unwrap_or_default()
        .to_string();
    // Two unreadable lines, on each of the two connections.
    assert!(skipped.ends_with(" 4"), "four unreadable lines counted: {skipped}");
    // The simulator has hung up: the state says so on the status topic.
    poll("avaya_cms.rt DISCONNECTED in status", Duration::from_secs(60), || {
        (cms.connectors().get("avaya_cms.rt").map(String::as_str) == Some("DISCONNECTED")).then_some(())
    });
}

#[test]
fn real_time_socket_in_the_numeric_code_layout() {
    let cms = Cms::start(
        "cms-rt-codes",
        15,
        "rt_delimiter = \"whitespace\"\nrt_columns = [\"LOGID\", \"WORKMODE\", \"AUXREASON\", \"AGTIME\", \"WORKSKILL\"]\n",
    );
    let truth = cms.sim(&["--rt", "RT", "--layout", "codes", "--agents", "25", "--minutes", "20", "--seed", "3"]);
    assert!(cms.states_match(&truth) > 100);
}

#[test]
fn call_history_and_exports_give_the_wfm_the_figures_the_simulator_generated() {
    let cms = Cms::start("cms-files", 15, "");
    let ech = cms.ech.display().to_string();
    let hist = cms.hist.display().to_string();
    let truth = cms.sim(&[
        "--ech-dir",
        &ech,
        "--hist-dir",
        &hist,
        "--agents",
        "30",
        "--minutes",
        "60",
        "--splits",
        "3",
        "--seed",
        "11",
    ]);
    let all: Vec<String> =
        truth["echFiles"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
    poll("every ECH file processed", Duration::from_secs(60), || {
        (files_in(&cms.ech.join("processed")) == all).then_some(())
    });
    poll("every export processed", Duration::from_secs(60), || {
        (files_in(&cms.hist.join("processed")).len() == truth["histFiles"].as_array()?.len()).then_some(())
    });
    assert!(files_in(&cms.ech.join("rejected")).is_empty());
    cms.rows_match(&truth, 0);
    // The queue name from queue_names reached the WFM.
    let w = cms.wfm();
    assert!(w["queueReport"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["queueValue"] == "57" && r["queueName"] == "Billing"));
    poll("ECH and export sources CONNECTED in status", Duration::from_secs(60), || {
        let c = cms.connectors();
        (c.get("avaya_cms.ech").map(String::as_str) == Some("CONNECTED")
            && c.get("avaya_cms.hist").map(String::as_str) == Some("CONNECTED"))
        .then_some(())
    });
}

#[test]
fn bad_call_history_files_are_rejected_whole_and_a_slow_file_is_read_once_complete() {
    let cms = Cms::start("cms-reject", 15, "");
    std::fs::create_dir_all(&cms.ech).unwrap();
    // A good file written as a slow transfer does: the first half, a pause, the rest.
    let t0 = (acd_schemas::time::now_millis() / 1000 - 3600) as u32;
    let mut good = Vec::new();
    good.extend_from_slice(&181u32.to_le_bytes());
    good.extend_from_slice(&1u32.to_le_bytes());
    for i in 0..40u32 {
        let mut rec = vec![0u8; 720];
        rec[0..4].copy_from_slice(&(1000 + i).to_le_bytes());
        rec[16..20].copy_from_slice(&10u32.to_le_bytes()); // DISPTIME
        rec[28..32].copy_from_slice(&(t0 + i * 30).to_le_bytes()); // SEGSTART_UTC
        rec[70..72].copy_from_slice(&57i16.to_le_bytes()); // DISPSPLIT
        rec[95] = 3; // CALL_DISP: abandoned
        rec[98] = 1; // SEGMENT
        good.extend_from_slice(&rec);
    }
    // A truncated file and one of an unknown version: rejected whole, with the reason beside them.
    let mut truncated = good.clone();
    truncated[4] = 2;
    truncated.truncate(8 + 720 * 3 + 100);
    std::fs::write(cms.ech.join("chr0002"), &truncated).unwrap();
    let mut unknown = vec![0u8; 8 + 492];
    unknown[0] = 12;
    std::fs::write(cms.ech.join("chr0003"), &unknown).unwrap();
    poll("both bad files rejected", Duration::from_secs(60), || {
        (files_in(&cms.ech.join("rejected")).len() == 4).then_some(())
    });
    let reason = std::fs::read_to_string(cms.ech.join("rejected/chr0002.reason")).unwrap();
    assert!(reason.contains("length 2268 is not 8 + a multiple of 720"), "{reason}");
    let reason = std::fs::read_to_string(cms.ech.join("rejected/chr0003.reason")).unwrap();
    assert!(reason.contains("unknown VERSION 12"), "{reason}");
    poll("ech DEGRADED after the rejection", Duration::from_secs(60), || {
        (cms.connectors().get("avaya_cms.ech").map(String::as_str) == Some("DEGRADED")).then_some(())
    });
    assert_eq!(end_offsets(&cms.setup.brokers, &cms.setup.topic("acd.contact.v1")), 0, "nothing of them published");
    // The good file, written as a slow transfer does: the first half, a pause, the rest.
    let path = cms.ech.join("chr0004");
    std::fs::write(&path, &good[..good.len() / 2 + 100]).unwrap();
    // The writer's own pace (not a wait for acd-bridge): shorter than the settle time.
    std::thread::sleep(Duration::from_millis(150));
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut f, &good[good.len() / 2 + 100..]).unwrap();
    drop(f);
    poll("the good file processed", Duration::from_secs(60), || {
        (files_in(&cms.ech.join("processed")) == ["chr0004"]).then_some(())
    });
    // Exactly the good file's 40 contacts were published, none of the rejected ones.
    let records = read_topic(&cms.setup.brokers, &cms.setup.topic("acd.contact.v1"));
    assert_eq!(records.len(), 40, "contacts on the topic");
    poll("ech CONNECTED after the good file", Duration::from_secs(60), || {
        (cms.connectors().get("avaya_cms.ech").map(String::as_str) == Some("CONNECTED")).then_some(())
    });
}

#[test]
fn produce_killed_in_the_middle_of_a_call_history_file_loses_nothing() {
    let mut cms = Cms::start("cms-kill", 30, "");
    let ech = cms.ech.display().to_string();
    // Written to a folder of its own first, so that the kill can come while produce reads.
    let staging = cms.setup.scratch.0.join("staging");
    let staging_s = staging.display().to_string();
    let truth = cms.sim(&[
        "--ech-dir",
        &staging_s,
        "--agents",
        "6000",
        "--minutes",
        "60",
        "--interval-minutes",
        "30",
        "--seed",
        "5",
    ]);
    std::fs::create_dir_all(&cms.ech).unwrap();
    let files = files_in(&staging);
    for f in &files {
        std::fs::rename(staging.join(f), cms.ech.join(f)).unwrap();
    }
    let topic = cms.setup.topic("acd.contact.v1");
    poll("the first contacts on Kafka", Duration::from_secs(60), || {
        (end_offsets(&cms.setup.brokers, &topic) > 0).then_some(())
    });
    cms.produce.as_mut().unwrap().kill9();
    let done_at_kill = files_in(&cms.ech.join("processed")).len();
    eprintln!("killed with {done_at_kill} of {} files processed", files.len());
    assert!(done_at_kill < files.len(), "the kill came before every file was done");
    cms.start_produce();
    poll("every file processed", Duration::from_secs(120), || {
        (files_in(&cms.ech.join("processed")).len() == files.len()).then_some(())
    });
    let _ = ech;
    cms.rows_match(&truth, 0);
}

#[test]
fn exports_across_the_autumn_dst_change_rolled_up_to_30_minutes_with_agent_performance() {
    let cms = Cms::start("cms-dst", 30, "time_zone = \"America/New_York\"\nhist_agent_performance = true\n");
    std::fs::create_dir_all(&cms.hist).unwrap();
    let header = "row_date,starttime,intrvl,split,acdcalls,abncalls,acceptable,slvlabns,servicelevel,anstime,abntime,acdtime,acwtime,holdacdtime";
    // 2024-11-03 in New York: 01:00-02:00 happens twice (EDT, then EST). 15-minute rows.
    let mut csv = format!("{header}\n");
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    let rows = [
        ("0100", 1, "05:00"),
        ("0115", 2, "05:00"),
        ("0130", 4, "05:30"),
        ("0145", 8, "05:30"),
        ("0100", 16, "06:00"),
        ("0115", 32, "06:00"),
        ("0130", 64, "06:30"),
        ("0145", 128, "06:30"),
        ("0200", 256, "07:00"),
    ];
    for (hhmm, calls, utc) in rows {
        csv.push_str(&format!("2024-11-03,{hhmm},15,57,{calls},0,{calls},0,20,0,0,{},0,0\n", calls * 10));
        *want.entry(format!("2024-11-03T{utc}:00.000Z")).or_default() += calls;
    }
    std::fs::write(cms.hist.join("hsplit_20241103.csv"), csv).unwrap();
    let agents = "row_date,starttime,intrvl,split,logid,acdcalls,acdtime,acwtime,holdacdtime,ti_stafftime,ti_availtime,ti_auxtime\n\
                  2024-11-03,0100,15,57,967385,2,100,10,5,900,300,60\n\
                  2024-11-03,0100,15,58,967385,0,0,0,0,0,0,0\n\
                  2024-11-03,0115,15,57,967385,1,50,5,0,900,200,0\n\
                  2024-11-03,0100,15,57,967385,3,300,30,0,900,100,100\n";
    std::fs::write(cms.hist.join("hagent_20241103.csv"), agents).unwrap();
    // The spring-forward gap: 02:30 does not exist on 2024-03-10.
    let gap = format!("{header}\n2024-03-10,0230,15,57,1,0,1,0,20,0,0,10,0,0\n");
    std::fs::write(cms.hist.join("hsplit_20240310.csv"), gap).unwrap();
    poll("the gap file rejected", Duration::from_secs(60), || {
        std::fs::read_to_string(cms.hist.join("rejected/hsplit_20240310.csv.reason")).ok()
    });
    let reason = std::fs::read_to_string(cms.hist.join("rejected/hsplit_20240310.csv.reason")).unwrap();
    assert!(reason.contains("02:30 does not exist in America/New_York"), "{reason}");
    let got = poll("the 30-minute rows of the DST day", Duration::from_secs(120), || {
        let w = cms.wfm();
        let got: BTreeMap<String, i64> = w["queueReport"]
            .as_array()?
            .iter()
            .filter(|r| r["queueValue"] == "57")
            .map(|r| (r["startDate"].as_str().unwrap().to_string(), r["contactsReceived"].as_i64().unwrap()))
            .collect();
        (got == want).then_some(got)
    });
    assert_eq!(got.len(), 5, "both 01:00 and both 01:30 intervals kept apart");
    let agent_rows = poll("the agent rows", Duration::from_secs(60), || {
        let w = cms.wfm();
        let a: BTreeMap<String, (i64, f64)> = w["agentSystemPerformanceReport"]
            .as_array()?
            .iter()
            .filter(|r| r["agentValue"] == "967385")
            .map(|r| {
                (
                    r["startDate"].as_str().unwrap().to_string(),
                    (r["loginTime"].as_f64().unwrap() as i64, r["readyTime"].as_f64().unwrap()),
                )
            })
            .collect();
        (a.len() == 2).then_some(a)
    });
    // 05:00Z: the EDT 01:00 and 01:15 rows of both splits; 06:00Z: the EST 01:00 row.
    assert_eq!(agent_rows["2024-11-03T05:00:00.000Z"], (1800, 500.0));
    assert_eq!(agent_rows["2024-11-03T06:00:00.000Z"], (900, 100.0));
    let handled = poll("the agent-queue rows", Duration::from_secs(60), || {
        let w = cms.wfm();
        let a: BTreeMap<String, i64> = w["agentQueueReport"]
            .as_array()?
            .iter()
            .map(|r| (r["startDate"].as_str().unwrap().to_string(), r["handled"].as_i64().unwrap()))
            .collect();
        (a.len() == 2).then_some(a)
    });
    assert_eq!(handled["2024-11-03T05:00:00.000Z"], 3);
    assert_eq!(handled["2024-11-03T06:00:00.000Z"], 3);
}

#[test]
fn the_cms_demo_passes() {
    let out = std::process::Command::new(BIN)
        .args(["demo", "--acd", "cms", "--agents", "15", "--minutes", "30"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().last().unwrap_or("").starts_with("demo check: PASS"), "{stdout}");
}
