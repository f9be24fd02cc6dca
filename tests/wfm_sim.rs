//! `wfm-sim` is strict, but accepts every example payload the WFM publishes.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

#[test]
fn every_published_sample_is_accepted_and_bad_bodies_name_the_field() {
    let scratch = Scratch::new("wfm-sim-samples");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _p = Proc::start("wfm-sim", &["wfm-sim", "--listen", &listen], &scratch.0);
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    wait_ok(&url("/sim/state"), Duration::from_secs(30));
    let c = http();
    let token: Value = c
        .post(url("/authentication/v1/token/access-key"))
        .header("Content-Type", "application/json")
        .body(sample("wfm-token-request.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut refresh = serde_json::from_str::<Value>(&sample("wfm-refresh-request.json")).unwrap();
    refresh["token"] = token["refresh_token"].clone();
    let refreshed: Value = c.post(url("/public/user/refresh")).json(&refresh).send().unwrap().json().unwrap();
    assert!(refreshed["tokenExpirationTimeSec"].as_i64().unwrap() > 0);
    let bearer = format!("Bearer {}", refreshed["token"].as_str().unwrap());
    for (path, file) in [
        ("/wfm/acd/v1/agent-states", "agent-state-list.json"),
        ("/wfm/acd/v1/agent-activity", "agent-activity-report.json"),
    ] {
        let r = c
            .post(url(path))
            .header("Authorization", &bearer)
            .header("Content-Type", "application/json")
            .body(sample(file))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{file}: {}", r.text().unwrap_or_default());
    }
    // The intraday sample is off the grid by 12 s (the ingest API snaps it); on the grid it is accepted.
    let intraday = sample("intraday-report.json")
        .replace("2024-04-17T10:00:12.000Z", "2024-04-17T10:00:00.000Z")
        .replace("2024-04-17T10:15:12.000Z", "2024-04-17T10:15:00.000Z");
    let r = c
        .post(url("/wfm/acd/v1/intraday"))
        .header("Authorization", &bearer)
        .header("Content-Type", "application/json")
        .body(intraday.clone())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap_or_default());
    // Strict where it matters: a missing field is named; no token is a 401.
    let mut broken: Value = serde_json::from_str(&intraday).unwrap();
    broken["reportData"]["queueReport"][0].as_object_mut().unwrap().remove("queueValue");
    let broken = broken.to_string();
    let r = c.post(url("/wfm/acd/v1/intraday")).header("Authorization", &bearer).body(broken).send().unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().unwrap();
    assert!(body["field"].as_str().unwrap().contains("queueReport[0]"), "{body}");
    let r = c.post(url("/wfm/acd/v1/intraday")).body(intraday).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let state: Value = c.get(url("/sim/state")).send().unwrap().json().unwrap();
    assert_eq!(state["queueReport"].as_array().unwrap().len(), 2);
    assert_eq!(state["agentActivity"].as_array().unwrap().len(), 1);
    let page = c.get(url("/")).send().unwrap().text().unwrap();
    assert!(page.contains("ChatSkill_11"));
}
