//! The push-ingest API against a real Apache Kafka broker: samples accepted and decodable with
//! the `.avsc` files alone, bad input refused whole, Kafka outages answered with 503.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn produce(setup: &Setup, extra: &str) -> Proc {
    let cfg = setup.config(extra);
    let p = Proc::start("produce", &["produce", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
    wait_ok(&setup.ingest("/healthz"), Duration::from_secs(60));
    p
}

fn post(url: &str, body: &str) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = http().post(url).header("Content-Type", "application/json").body(body.to_string()).send().unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let v = r.json().unwrap_or(Value::Null);
    (status, v, headers)
}

/// Decodes a single-object encoded value with nothing but the `.avsc` file.
fn decode_with_avsc(file: &str, bytes: &[u8]) -> apache_avro::types::Value {
    let text = std::fs::read_to_string(format!("{}/schemas/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let schema = apache_avro::Schema::parse_str(&text).unwrap();
    let fps: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}/schemas/fingerprints.json", env!("CARGO_MANIFEST_DIR"))).unwrap(),
    )
    .unwrap();
    let want = fps[file]["crc64avro"].as_str().unwrap();
    assert_eq!(&bytes[..2], &[0xC3, 0x01], "single-object marker");
    let got: String = bytes[2..10].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(got, want, "fingerprint of {file} as a second Avro implementation computes it");
    apache_avro::from_avro_datum(&schema, &mut &bytes[10..], None).unwrap()
}

fn field<'a>(v: &'a apache_avro::types::Value, name: &str) -> &'a apache_avro::types::Value {
    match v {
        apache_avro::types::Value::Record(fields) => &fields.iter().find(|(n, _)| n == name).unwrap().1,
        other => panic!("not a record: {other:?}"),
    }
}

fn s(v: &apache_avro::types::Value) -> String {
    match v {
        apache_avro::types::Value::String(s) => s.clone(),
        apache_avro::types::Value::Union(_, b) => s(b),
        apache_avro::types::Value::Enum(_, sym) => sym.clone(),
        other => format!("{other:?}"),
    }
}

fn millis(v: &apache_avro::types::Value) -> i64 {
    match v {
        apache_avro::types::Value::TimestampMillis(t) | apache_avro::types::Value::Long(t) => *t,
        other => panic!("not a timestamp: {other:?}"),
    }
}

#[test]
fn every_sample_is_accepted_and_lands_on_its_topic() {
    let setup = Setup::new("ingest-samples");
    let _p = produce(&setup, "");
    let cases = [
        ("/v1/agent-states", "agent-state-list.json", 1),
        ("/v1/contacts", "contacts.json", 2),
        ("/v1/interval-reports", "intraday-report.json", 6),
        ("/v1/agent-activity", "agent-activity-report.json", 1),
    ];
    for (path, file, n) in cases {
        let (status, body, _) = post(&setup.ingest(path), &sample(file));
        assert_eq!(status, 202, "{file}: {body}");
        assert_eq!(body, json!({ "accepted": n }), "{file}");
    }

    let states = read_topic(&setup.brokers, &setup.topic("acd.agent-state.v1"));
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].0.as_deref(), Some("Tenant_Name/aa4rszz@mmm.com"));
    let v = decode_with_avsc("agent-state.avsc", &states[0].1);
    assert_eq!(s(field(&v, "eventCode")), "CallContact");
    assert_eq!(millis(field(&v, "eventUtcTime")), 1_696_147_149_860);

    let contacts = read_topic(&setup.brokers, &setup.topic("acd.contact.v1"));
    assert_eq!(contacts.len(), 2);
    for (key, value, ..) in &contacts {
        assert_eq!(key.as_deref(), Some("east/8057"));
        let v = decode_with_avsc("contact.avsc", value);
        let id = s(field(&v, "contactId"));
        match id.as_str() {
            "c-1" => {
                assert_eq!(s(field(&v, "outcome")), "HANDLED");
                assert_eq!(field(&v, "talkSec"), &apache_avro::types::Value::Double(250.0));
                assert_eq!(s(field(&v, "agentValue")), "967382");
            }
            "c-2" => {
                assert_eq!(s(field(&v, "outcome")), "ABANDONED");
                assert_eq!(millis(field(&v, "endedUtc")), 1_713_348_930_000);
            }
            other => panic!("unexpected contact {other}"),
        }
    }

    let rows = read_topic(&setup.brokers, &setup.topic("acd.interval.v1"));
    let mut keys: Vec<String> = rows.iter().map(|r| r.0.clone().unwrap()).collect();
    keys.sort();
    assert_eq!(keys, ["agent/945987", "agent/945988", "queue/8056", "queue/8056", "queue/8057", "queue/8057"]);
    for (_, value, ..) in &rows {
        let v = decode_with_avsc("interval.avsc", value);
        // 10:00:12-10:15:12 is snapped to the 10:00 interval.
        assert_eq!(millis(field(&v, "startDate")), 1_713_348_000_000);
        assert_eq!(millis(field(&v, "endDate")), 1_713_348_900_000);
    }

    let activity = read_topic(&setup.brokers, &setup.topic("acd.agent-activity.v1"));
    assert_eq!(activity.len(), 1);
    assert_eq!(activity[0].0.as_deref(), Some("agent/19837005"));
    let v = decode_with_avsc("agent-activity.avsc", &activity[0].1);
    assert_eq!(s(field(&v, "userName")), "aa4rszz@mmm.com");

    // A second Avro implementation reads the same bytes, when it is installed.
    fastavro_reads(&setup, &states[0].1, "agent-state.avsc", "CallContact");
}

fn fastavro_reads(setup: &Setup, bytes: &[u8], avsc: &str, expect: &str) {
    let has = std::process::Command::new("python3")
        .args(["-c", "import fastavro"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !has {
        eprintln!("fastavro not installed: second-implementation check skipped");
        return;
    }
    let file = setup.scratch.0.join("value.bin");
    std::fs::write(&file, bytes).unwrap();
    let script = format!(
        "import io,json,fastavro\nb=open({f:?},'rb').read()\nassert b[:2]==b'\\xc3\\x01'\n\
         s=fastavro.parse_schema(json.load(open({a:?})))\nprint(json.dumps(fastavro.schemaless_reader(io.BytesIO(b[10:]),s),default=str))",
        f = file.display().to_string(),
        a = format!("{}/schemas/{avsc}", env!("CARGO_MANIFEST_DIR"))
    );
    let out = std::process::Command::new("python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(expect));
}

#[test]
fn bad_input_is_refused_whole_and_publishes_nothing() {
    let setup = Setup::new("ingest-bad");
    let _p = produce(&setup, "#ingest\ntokens = [\"good-token\"]\nmax_body_bytes = 4096\n");
    let auth = "Bearer good-token";
    let send = |path: &str, body: &str, ctype: &str, token: &str| {
        let r = http()
            .post(setup.ingest(path))
            .header("Content-Type", ctype)
            .header("Authorization", token)
            .body(body.to_string())
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };
    let valid = r#"{"acdId":"e","contactId":"1","queueValue":"q","outcome":"HANDLED","arrivedUtc":"2024-01-01T00:00:00Z","endedUtc":"2024-01-01T00:05:00Z","queueDelaySec":1,"talkSec":10,"holdSec":0,"workSec":2,"agentValue":"a"}"#;
    let with = |bad: &str| format!(r#"{{"contacts":[{valid},{bad}]}}"#);
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), ""),
        (
            with(
                r#"{"acdId":"e","contactId":"2","outcome":"HANDLED","arrivedUtc":"2024-01-01T00:00:00Z","endedUtc":"2024-01-01T00:05:00Z","queueDelaySec":1,"talkSec":1,"holdSec":0,"workSec":0,"agentValue":"a"}"#,
            ),
            "contacts[1].queueValue",
        ),
        (
            with(
                r#"{"acdId":"e","contactId":"2","queueValue":"q","outcome":"HANDLED","arrivedUtc":"2024-01-01T00:00:00Z","endedUtc":"2024-01-01T00:05:00Z","queueDelaySec":-4,"talkSec":1,"holdSec":0,"workSec":0,"agentValue":"a"}"#,
            ),
            "contacts[1].queueDelaySec",
        ),
        (
            with(
                r#"{"acdId":"e","contactId":"2","queueValue":"q","outcome":"HANDLED","arrivedUtc":"2024-01-01 00:00","endedUtc":"2024-01-01T00:05:00Z","queueDelaySec":4,"talkSec":1,"holdSec":0,"workSec":0,"agentValue":"a"}"#,
            ),
            "contacts[1].arrivedUtc",
        ),
        (
            with(
                r#"{"acdId":"e","contactId":"2","queueValue":"q","outcome":"HANDLED","arrivedUtc":"2024-01-01T00:09:00Z","endedUtc":"2024-01-01T00:05:00Z","queueDelaySec":4,"talkSec":1,"holdSec":0,"workSec":0,"agentValue":"a"}"#,
            ),
            "contacts[1].endedUtc",
        ),
    ];
    for (body, field) in &cases {
        let (status, answer) = send("/v1/contacts", body, "application/json", auth);
        assert_eq!(status, 400, "{body}: {answer}");
        let errors = answer["errors"].as_array().unwrap();
        assert!(!errors.is_empty());
        if !field.is_empty() {
            assert!(errors.iter().any(|e| e["field"] == *field && e["index"] == 1), "{field} not named in {answer}");
        }
    }
    let (status, _) = send("/v1/contacts", &with(valid), "application/json", "Bearer wrong");
    assert_eq!(status, 401);
    let (status, _) = send("/v1/contacts", &with(valid), "application/json", "");
    assert_eq!(status, 401);
    let (status, _) = send("/v1/contacts", &with(valid), "text/plain", auth);
    assert_eq!(status, 415);
    let big = format!(r#"{{"contacts":[{}]}}"#, vec![valid; 40].join(","));
    let (status, _) = send("/v1/contacts", &big, "application/json", auth);
    assert_eq!(status, 413);
    // The charset parameter is allowed, and the good request goes through: the topic was empty.
    let before = end_offsets(&setup.brokers, &setup.topic("acd.contact.v1"));
    assert_eq!(before, 0, "something was published by a refused request");
    let (status, answer) =
        send("/v1/contacts", &format!(r#"{{"contacts":[{valid}]}}"#), "application/json; charset=utf-8", auth);
    assert_eq!((status, answer), (202, json!({"accepted": 1})));
    assert_eq!(end_offsets(&setup.brokers, &setup.topic("acd.contact.v1")), 1);
    // Health, readiness and metrics need no token.
    for p in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(http().get(setup.ingest(p)).send().unwrap().status().as_u16(), 200, "{p}");
    }
    let metrics = http().get(setup.ingest("/metrics")).send().unwrap().text().unwrap();
    assert!(metrics.contains("acd_ingest_requests_total"), "{metrics}");
    assert!(!metrics.contains("good-token"));
}

#[test]
fn configuration_errors_name_the_key_and_exit_2() {
    let setup = Setup::new("ingest-cfg");
    let cfg = setup.scratch.file("bad.toml", "[kafka]\nbrokers = \"x:1\"\n[interval]\nminutes = 20\n");
    let out = std::process::Command::new(BIN).args(["produce", "--config", cfg.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interval.minutes"));
    let out = std::process::Command::new(BIN)
        .args(["consume", "--config", cfg.to_str().unwrap()])
        .env("ACD_BRIDGE__INTERVAL__MINUTES", "30")
        .env("ACD_BRIDGE__KAFKA__BROKERZ", "y")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kafka.brokerz"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new(BIN).args(["produce"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Stops and starts a broker of its own, so the other tests keep theirs.
#[test]
fn kafka_outage_answers_503_and_loses_nothing() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka");
    if std::env::var("KAFKA_BOOTSTRAP").is_err() && !std::path::Path::new("/var/run/docker.sock").exists() {
        panic!("no broker");
    }
    let port = free_port_pair();
    let kafka = |cmd: &str| {
        let out = std::process::Command::new(&script).args([cmd, "--port", &port.to_string()]).output().unwrap();
        assert!(out.status.success(), "scripts/kafka {cmd}: {}", String::from_utf8_lossy(&out.stderr));
    };
    kafka("start");
    struct Wipe(std::path::PathBuf, u16);
    impl Drop for Wipe {
        fn drop(&mut self) {
            let _ = std::process::Command::new(&self.0).args(["wipe", "--port", &self.1.to_string()]).output();
        }
    }
    let _wipe = Wipe(script.clone(), port);
    let mut setup = Setup::new("ingest-outage");
    setup.brokers = format!("127.0.0.1:{port}");
    let _p = produce(&setup, "#ingest\nack_timeout_ms = 2000\n");
    let state = |login: &str| {
        format!(
            r#"{{"agentStateList":[{{"loginId":"{login}","acdId":"e","eventCode":"AVAIL","reasonCode":"","eventUtcTime":"2024-01-01T00:00:00Z"}}]}}"#
        )
    };
    let url = setup.ingest("/v1/agent-states");
    assert_eq!(post(&url, &state("before")).0, 202);
    kafka("stop");
    let (status, body, headers) = post(&url, &state("during"));
    assert_eq!(status, 503, "{body}");
    assert!(headers.get("retry-after").is_some());
    poll("readyz to turn 503", Duration::from_secs(30), || {
        (http().get(setup.ingest("/readyz")).send().ok()?.status().as_u16() == 503).then_some(())
    });
    kafka("start");
    poll("ingest to accept again", Duration::from_secs(90), || (post(&url, &state("after")).0 == 202).then_some(()));
    let logins: HashMap<String, usize> = read_topic(&setup.brokers, &setup.topic("acd.agent-state.v1"))
        .into_iter()
        .map(|(k, ..)| k.unwrap())
        .fold(HashMap::new(), |mut m, k| {
            *m.entry(k).or_default() += 1;
            m
        });
    assert!(logins.contains_key("e/before"), "{logins:?}");
    assert!(logins.contains_key("e/after"), "{logins:?}");
    poll("readyz to turn 200", Duration::from_secs(30), || {
        (http().get(setup.ingest("/readyz")).send().ok()?.status().as_u16() == 200).then_some(())
    });
}

/// A port P with P+1 free too (the broker's controller).
fn free_port_pair() -> u16 {
    loop {
        let p = free_port();
        if p < 65000 && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

/// A test CA and a server certificate for 127.0.0.1 made with openssl; None where openssl is absent.
fn test_ca(dir: &std::path::Path) -> Option<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf)> {
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    let ok = run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=acd-bridge test CA",
    ]) && run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    ok.then(|| (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key")))
}

#[test]
fn the_ingest_api_over_tls_to_a_client_that_trusts_only_the_test_ca() {
    let setup = Setup::new("ingest-tls");
    let Some((ca, cert, key)) = test_ca(&setup.scratch.0) else {
        eprintln!("SKIPPED: openssl is not on this machine, so no test certificate can be made");
        return;
    };
    let token = "tls-token-Zq81";
    let cfg = setup.config(&format!(
        "#ingest\ntokens = [\"{token}\"]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    let _p = Proc::start("produce", &["produce", "--config", cfg.to_str().unwrap()], &setup.scratch.0);
    let ca_pem = std::fs::read(&ca).unwrap();
    let trusting = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
        .build()
        .unwrap();
    let url = |p: &str| format!("https://127.0.0.1:{}{p}", setup.ingest_port);
    poll("the ingest API over TLS", Duration::from_secs(60), || {
        trusting.get(url("/healthz")).send().ok().filter(|r| r.status().is_success())
    });
    let body = serde_json::json!({"agentStateList": [{"loginId": "a1", "acdId": "east", "eventCode": "AVAIL",
        "reasonCode": "", "eventUtcTime": "2024-04-17T10:00:00.000Z"}]});
    let r = trusting.post(url("/v1/agent-states")).bearer_auth(token).json(&body).send().unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().unwrap_or_default());
    let r = trusting.post(url("/v1/agent-states")).bearer_auth("wrong").json(&body).send().unwrap();
    assert_eq!(r.status(), 401);
    // A client that does not trust the test CA refuses the server; plain HTTP gets no answer.
    let stranger = reqwest::blocking::Client::builder().tls_built_in_root_certs(true).build().unwrap();
    let e = stranger.get(url("/healthz")).send().unwrap_err();
    assert!(format!("{e:?}").to_lowercase().contains("certificate"), "{e:?}");
    assert!(http().get(setup.ingest("/healthz")).send().map(|r| !r.status().is_success()).unwrap_or(true));
    // A key that does not belong to the certificate is a configuration error naming the key.
    let other = setup.scratch.0.join("ca2");
    std::fs::create_dir_all(&other).unwrap();
    let (_, other_cert, _) = test_ca(&other).unwrap();
    let bad = setup.config(&format!(
        "#ingest\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n",
        other_cert.display(),
        key.display()
    ));
    let out = std::process::Command::new(BIN).args(["produce", "--config", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ingest.tls_key_file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
