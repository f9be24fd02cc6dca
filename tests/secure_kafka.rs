//! acd-bridge on a secured Kafka: a broker whose only listener is SASL_SSL (SCRAM-SHA-512, a
//! certificate from a CA made for the test), started by `scripts/kafka start --secure`. The
//! credentials reach librdkafka through `kafka.properties_file`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use serde_json::json;

const PASSWORD: &str = "acd-bridge-Scram-pw-9d41";

/// A configuration for `setup` whose `[kafka]` section names `properties`.
fn config_with(setup: &Setup, properties: &str) -> PathBuf {
    let props = setup.scratch.file(&format!("kafka-{}.properties", rand::random::<u32>()), properties);
    let text = std::fs::read_to_string(setup.config("")).unwrap();
    let text = text.replacen("[kafka]\n", &format!("[kafka]\nproperties_file = \"{}\"\n", props.display()), 1);
    setup.scratch.file(&format!("config-{}.toml", rand::random::<u32>()), &text)
}

#[test]
fn produce_and_consume_over_sasl_ssl_with_scram_and_no_credential_in_any_log() {
    let broker = OwnBroker::start_secure();
    let setup = Setup::on("secure-kafka", &broker.bootstrap());
    let props = std::fs::read_to_string(broker.dir().join("client.properties")).unwrap();
    assert!(props.contains(PASSWORD));
    let cfg = config_with(&setup, &props);
    let wfm_listen = format!("127.0.0.1:{}", setup.wfm_port);
    let wfm = Proc::start("wfm-sim", &["wfm-sim", "--listen", &wfm_listen], &setup.scratch.0);
    wait_ok(&setup.wfm("/sim/state"), Duration::from_secs(30));
    let produce = Proc::start("produce", &["produce", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
    let consume = Proc::start("consume", &["consume", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
    wait_ok(&setup.ingest("/readyz"), Duration::from_secs(90));
    let states: Vec<_> = (0..50)
        .map(|i| {
            json!({"loginId": format!("a{i}"), "acdId": "secure", "eventCode": "AVAIL", "reasonCode": "",
                   "eventUtcTime": acd_schemas::time::format_millis(1_714_000_000_000 + i * 1000)})
        })
        .collect();
    let r = http().post(setup.ingest("/v1/agent-states")).json(&json!({"agentStateList": states})).send().unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().unwrap_or_default());
    poll("the states at the WFM, through the secured broker", Duration::from_secs(90), || {
        let v: serde_json::Value = http().get(setup.wfm("/sim/state")).send().ok()?.json().ok()?;
        (v["agentStates"].as_array()?.iter().filter(|s| s["acdId"] == "secure").count() == 50).then_some(())
    });
    wait_ok(&setup.admin("/readyz"), Duration::from_secs(30));
    for p in [&produce, &consume, &wfm] {
        assert!(!p.log().contains(PASSWORD), "{} logged the SASL password", p.name);
    }
}

#[test]
fn a_wrong_password_and_an_untrusted_certificate_are_named_and_never_ready() {
    let broker = OwnBroker::start_secure();
    let props = std::fs::read_to_string(broker.dir().join("client.properties")).unwrap();
    let cases = [
        ("wrong-password", props.replace(PASSWORD, "not-the-Password-7c2e"), "authentication"),
        (
            "untrusted-ca",
            props.replace(
                &broker.dir().join("ca.pem").display().to_string(),
                &broker.dir().join("other-ca.pem").display().to_string(),
            ),
            "certificate verify failed",
        ),
    ];
    for (name, properties, cause) in cases {
        let setup = Setup::on(name, &broker.bootstrap());
        let cfg = config_with(&setup, &properties);
        let wfm_listen = format!("127.0.0.1:{}", setup.wfm_port);
        let _wfm = Proc::start("wfm-sim", &["wfm-sim", "--listen", &wfm_listen], &setup.scratch.0);
        wait_ok(&setup.wfm("/sim/state"), Duration::from_secs(30));
        let produce = Proc::start("produce", &["produce", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
        let consume = Proc::start("consume", &["consume", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
        for p in [&produce, &consume] {
            poll(&format!("{} to name the cause ({cause})", p.name), Duration::from_secs(60), || {
                p.log().to_lowercase().contains(cause).then_some(())
            });
            let secret = if name == "wrong-password" { "not-the-Password-7c2e" } else { PASSWORD };
            assert!(!p.log().contains(secret), "{} logged the SASL password", p.name);
        }
        // Never ready: /readyz does not answer 200 (or the process refused to start).
        for url in [setup.ingest("/readyz"), setup.admin("/readyz")] {
            if let Ok(r) = http().get(&url).send() {
                assert_ne!(r.status(), 200, "{url} says ready on a broker it cannot use");
            }
        }
    }
}
