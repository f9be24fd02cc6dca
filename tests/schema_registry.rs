//! With `kafka.schema_registry_url` set: values in the Confluent wire format, schemas registered
//! under `<topic>-value`, and a consumer that reads both framings from one topic.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::*;
use serde_json::{json, Value};

/// A minimal Confluent-compatible registry: ids by schema text, subjects recorded.
#[derive(Default)]
struct Registry {
    schemas: Vec<String>,
    subjects: BTreeMap<String, Vec<u32>>,
}

fn start_registry() -> (u16, Arc<Mutex<Registry>>) {
    let reg = Arc::new(Mutex::new(Registry::default()));
    let port = free_port();
    let state = reg.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let app = Router::new()
                .route(
                    "/subjects/{subject}/versions",
                    post(
                        |State(r): State<Arc<Mutex<Registry>>>,
                         Path(subject): Path<String>,
                         Json(body): Json<Value>| async move {
                            let text = body["schema"].as_str().unwrap_or_default().to_string();
                            let mut r = r.lock().unwrap();
                            let id = match r.schemas.iter().position(|s| *s == text) {
                                Some(i) => i as u32 + 1,
                                None => {
                                    r.schemas.push(text);
                                    r.schemas.len() as u32
                                }
                            };
                            r.subjects.entry(subject).or_default().push(id);
                            Json(json!({ "id": id }))
                        },
                    ),
                )
                .route(
                    "/schemas/ids/{id}",
                    get(|State(r): State<Arc<Mutex<Registry>>>, Path(id): Path<usize>| async move {
                        let r = r.lock().unwrap();
                        Json(json!({ "schema": r.schemas.get(id - 1).cloned().unwrap_or_default() }))
                    }),
                )
                .with_state(state);
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    wait_ok(&format!("http://127.0.0.1:{port}/schemas/ids/1"), Duration::from_secs(10));
    (port, reg)
}

#[test]
fn confluent_wire_format_end_to_end_and_both_framings_read() {
    let (port, registry) = start_registry();
    let setup = Setup::new("registry");
    // The registry comes through the environment, as an operator would override it.
    let cfg = setup.config("");
    let registry_url = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{}", setup.wfm_port);
    let _wfm = Proc::start("wfm-sim", &["wfm-sim", "--listen", &listen], &setup.scratch.0);
    wait_ok(&setup.wfm("/sim/state"), Duration::from_secs(30));
    let spawn = |cmd: &str| {
        let log = setup.scratch.0.join(format!("{}.log", unique(cmd)));
        let file = std::fs::File::create(&log).unwrap();
        std::process::Command::new(BIN)
            .args([cmd, "--config", cfg.to_str().unwrap()])
            .env("ACD_BRIDGE__KAFKA__SCHEMA_REGISTRY_URL", &registry_url)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap()
    };
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _produce = Kill(spawn("produce"));
    wait_ok(&setup.ingest("/healthz"), Duration::from_secs(60));
    let _consume = Kill(spawn("consume"));

    let body = json!({"agentStateList": [
        {"loginId": "r1", "acdId": "east", "eventCode": "AVAIL", "reasonCode": "", "eventUtcTime": "2024-04-17T10:00:00.000Z"},
        {"loginId": "r2", "acdId": "east", "eventCode": "AUX", "reasonCode": "BREAK", "eventUtcTime": "2024-04-17T10:00:01.000Z"}]});
    let r = http().post(setup.ingest("/v1/agent-states")).json(&body).send().unwrap();
    assert_eq!(r.status().as_u16(), 202);

    // On the topic: magic 0 and the id the registry gave the agent-state schema.
    let topic = setup.topic("acd.agent-state.v1");
    let records = read_topic(&setup.brokers, &topic);
    assert_eq!(records.len(), 2);
    let ids = registry.lock().unwrap().subjects.get(&format!("{topic}-value")).cloned().unwrap_or_default();
    assert!(!ids.is_empty(), "registered under <topic>-value");
    for (_, value, ..) in &records {
        assert_eq!(value[0], 0);
        assert_eq!(u32::from_be_bytes(value[1..5].try_into().unwrap()), ids[0]);
        // Any Avro library decodes it with the registry's schema alone.
        let text = registry.lock().unwrap().schemas[ids[0] as usize - 1].clone();
        let schema = apache_avro::Schema::parse_str(&text).unwrap();
        apache_avro::from_avro_datum(&schema, &mut &value[5..], None).unwrap();
    }

    // A single-object encoded record on the same topic is read too.
    {
        use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
        let codec = acd_schemas::Codec::default();
        let state = acd_schemas::records::AgentState {
            acd_id: "east".into(),
            login_id: "r3".into(),
            event_code: "ACD".into(),
            reason_code: String::new(),
            event_utc_time: 1_713_348_002_000,
            received_utc: None,
        };
        let bytes = codec.encode_agent_state(&state);
        let p: ThreadedProducer<DefaultProducerContext> =
            rdkafka::ClientConfig::new().set("bootstrap.servers", &setup.brokers).create().unwrap();
        p.send(BaseRecord::to(&topic).key("east/r3").payload(&bytes)).unwrap();
        p.flush(Duration::from_secs(10)).unwrap();
    }
    let got = poll("three states at the WFM", Duration::from_secs(90), || {
        let s: Value = http().get(setup.wfm("/sim/state")).send().ok()?.json().ok()?;
        let list = s["agentStates"].as_array()?.clone();
        (list.len() >= 3).then_some(list)
    });
    let mut logins: Vec<&str> = got.iter().map(|s| s["loginId"].as_str().unwrap()).collect();
    logins.sort();
    assert_eq!(logins, ["r1", "r2", "r3"]);
    // Connector status records are written in the registry's framing too, and `consume` reads
    // them with the codec it builds from the same configuration: the ACD's state reaches the WFM.
    let status = setup.topic("acd.connector-status.v1");
    poll("a connector status record", Duration::from_secs(90), || {
        read_topic(&setup.brokers, &status).into_iter().find(|r| r.1.first() == Some(&0)).map(|_| ())
    });
    poll("the ACD's connection state at the WFM", Duration::from_secs(90), || {
        let s: Value = http().get(setup.wfm("/sim/state")).send().ok()?.json().ok()?;
        s["connection"].as_array()?.iter().find(|c| c["acdId"] == "east" && c["status"] == "CONNECTED").map(|_| ())
    });

    // Every topic, read by Confluent's own client (confluent-kafka for Python and its
    // AvroDeserializer with the registry), as the stack's other consumers would.
    for (path, body) in [
        ("/v1/contacts", sample("contacts.json")),
        ("/v1/interval-reports", sample("intraday-report.json")),
        ("/v1/agent-activity", sample("agent-activity-report.json")),
    ] {
        let r = http().post(setup.ingest(path)).header("content-type", "application/json").body(body).send().unwrap();
        assert_eq!(r.status().as_u16(), 202, "{path}: {}", r.text().unwrap_or_default());
    }
    let topics: Vec<String> =
        ["acd.agent-state.v1", "acd.contact.v1", "acd.interval.v1", "acd.agent-activity.v1", "acd.connector-status.v1"]
            .iter()
            .map(|t| setup.topic(t))
            .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/confluent_decode.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&setup.brokers)
        .arg(&registry_url)
        .args(&topics)
        .output()
        .unwrap();
    if out.status.code() == Some(3) {
        eprintln!("SKIPPED the Confluent client check: {}", String::from_utf8_lossy(&out.stderr).trim());
        return;
    }
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for t in &topics {
        let r = &v[t];
        assert!(r["records"].as_u64().unwrap() > 0, "{t}: no records to decode: {r}");
        // The single-object record written above is not in Confluent's framing: all others decode.
        let foreign = u64::from(t.ends_with("acd.agent-state.v1"));
        assert_eq!(r["decoded"].as_u64().unwrap() + foreign, r["records"].as_u64().unwrap(), "{t}: {r}");
    }
}
