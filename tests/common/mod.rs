//! Shared test helpers: the broker, real `acd-bridge` processes, unique topics per test, and
//! polling with a deadline (no test sleeps to wait for something).
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

pub const BIN: &str = env!("CARGO_BIN_EXE_acd-bridge");

/// The broker every test talks to: `KAFKA_BOOTSTRAP`, or an `apache/kafka` container when a
/// Docker daemon answers. The in-process mock cluster is never used here.
pub fn bootstrap() -> String {
    static BROKER: OnceLock<String> = OnceLock::new();
    BROKER
        .get_or_init(|| {
            if let Ok(b) = std::env::var("KAFKA_BOOTSTRAP") {
                eprintln!("tests: Apache Kafka broker at {b} (KAFKA_BOOTSTRAP)");
                return b;
            }
            if Path::new("/var/run/docker.sock").exists() {
                let b = container::start();
                eprintln!("tests: Apache Kafka broker at {b} (testcontainers, apache/kafka)");
                return b;
            }
            panic!("no Kafka broker: set KAFKA_BOOTSTRAP, or run the tests with scripts/test, which starts one");
        })
        .clone()
}

mod container {
    use testcontainers::core::{IntoContainerPort, WaitFor};
    use testcontainers::runners::SyncRunner;
    use testcontainers::{Container, GenericImage, ImageExt};

    /// Starts apache/kafka in KRaft mode with its listener on a fixed host port, kept for the
    /// whole test binary.
    pub fn start() -> String {
        let port = super::free_port();
        let image = GenericImage::new("apache/kafka", "3.9.1")
            .with_wait_for(WaitFor::message_on_stdout("Kafka Server started"))
            .with_mapped_port(port, 9092.tcp())
            .with_env_var("KAFKA_NODE_ID", "1")
            .with_env_var("KAFKA_PROCESS_ROLES", "broker,controller")
            .with_env_var("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
            .with_env_var("KAFKA_ADVERTISED_LISTENERS", format!("PLAINTEXT://127.0.0.1:{port}"))
            .with_env_var("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
            .with_env_var("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT")
            .with_env_var("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
            .with_env_var("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
            .with_env_var("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
            .with_env_var("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
            .with_env_var("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
            .with_env_var("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false");
        let container: Container<GenericImage> = image.start().expect("start apache/kafka container");
        Box::leak(Box::new(container));
        format!("127.0.0.1:{port}")
    }
}

/// A port nobody listens on right now, below the kernel's ephemeral range (32768 and up), so
/// that no outgoing connection (a Kafka client's, say) takes it before the process that is to
/// listen on it starts. Never the same port twice in one test binary: two ports asked for one
/// setup (a WFM and an admin listener, say) would otherwise collide now and then.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = rand::random::<u16>() % 12_000 + 20_000;
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
}

/// A name unique to this test run, for topics, groups and folders.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), rand::random::<u16>())
}

/// A scratch folder removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(unique(name));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::File::create(&p).unwrap().write_all(text.as_bytes()).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // ACD_TEST_KEEP=1 keeps the folder (process logs, state) for a look afterwards.
        if std::env::var_os("ACD_TEST_KEEP").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One test's topics and addresses.
pub struct Setup {
    pub brokers: String,
    pub prefix: String,
    pub ingest_port: u16,
    pub admin_port: u16,
    pub wfm_port: u16,
    pub scratch: Scratch,
}

impl Setup {
    pub fn new(name: &str) -> Setup {
        Setup::on(name, &bootstrap())
    }

    /// A setup whose processes talk to `brokers` (a broker of the test's own, say).
    pub fn on(name: &str, brokers: &str) -> Setup {
        Setup {
            brokers: brokers.to_string(),
            prefix: unique(name),
            ingest_port: free_port(),
            admin_port: free_port(),
            wfm_port: free_port(),
            scratch: Scratch::new(name),
        }
    }

    pub fn topic(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// A configuration file for this test, with `extra` TOML appended to the sections.
    pub fn config(&self, extra: &str) -> PathBuf {
        let text = format!(
            r#"
[kafka]
brokers = "{brokers}"
partitions = 3
{debug}

[topics]
agent_state = "{p}.acd.agent-state.v1"
contact = "{p}.acd.contact.v1"
interval = "{p}.acd.interval.v1"
agent_activity = "{p}.acd.agent-activity.v1"
connector_status = "{p}.acd.connector-status.v1"
dlq = "{p}.wfm.dlq.v1"

[ingest]
listen = "127.0.0.1:{ingest}"
{ingest_extra}

[consumer]
group_id = "{p}"
state_dir = "{state}"
admin_listen = "127.0.0.1:{admin}"

[wfm]
base_url = "http://127.0.0.1:{wfm}"
access_key_id = "test-key"
access_key_secret = "test-secret"
timeout_seconds = 2
{wfm_extra}
"#,
            brokers = self.brokers,
            p = self.prefix,
            ingest = self.ingest_port,
            admin = self.admin_port,
            wfm = self.wfm_port,
            state = self.scratch.0.join("state").display(),
            ingest_extra = section(extra, "ingest"),
            wfm_extra = section(extra, "wfm"),
            debug = std::env::var("ACD_TEST_RDKAFKA_DEBUG")
                .map(|d| format!("properties = {{ debug = \"{d}\" }}"))
                .unwrap_or_default(),
        );
        self.scratch.file(&format!("config-{}.toml", rand::random::<u32>()), &text)
    }

    pub fn ingest(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ingest_port)
    }

    pub fn wfm(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.wfm_port)
    }

    pub fn admin(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }
}

/// Lines of `extra` between `#<name>` and the next `#` marker, so tests can add keys per section.
fn section(extra: &str, name: &str) -> String {
    let mut out = String::new();
    let mut on = false;
    for line in extra.lines() {
        if let Some(s) = line.trim().strip_prefix('#') {
            on = s.trim() == name;
            continue;
        }
        if on {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A running `acd-bridge` process, SIGKILLed when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
    log: PathBuf,
}

impl Proc {
    pub fn start(name: &str, args: &[&str], log_dir: &Path) -> Proc {
        Proc::launch(name, None, args, log_dir)
    }

    /// [`Proc::start`], under a wrapper command when `wrap` is given (split at spaces), such as
    /// a profiler.
    pub fn launch(name: &str, wrap: Option<&str>, args: &[&str], log_dir: &Path) -> Proc {
        let log = log_dir.join(format!("{}.log", unique(name)));
        let file = std::fs::File::create(&log).unwrap();
        let mut words = wrap.unwrap_or_default().split_whitespace();
        let mut command = match words.next() {
            Some(wrapper) => {
                let mut c = Command::new(wrapper);
                c.args(words).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let child = command
            .args(args)
            .env(
                "ACD_BRIDGE_LOG",
                std::env::var("ACD_TEST_LOG").unwrap_or_else(|_| "info,librdkafka=warn,rdkafka=warn".into()),
            )
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        Proc { child, name: name.to_string(), log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill9(&mut self) {
        unsafe {
            libc_kill(self.child.id() as i32, 9);
        }
        let _ = self.child.wait();
    }

    pub fn terminate(&mut self) -> Option<i32> {
        unsafe {
            libc_kill(self.child.id() as i32, 15);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                self.kill9();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.kill9();
        }
        if std::thread::panicking() {
            eprintln!("---- log of {} ----\n{}", self.name, self.log());
        }
    }
}

/// Polls `f` until it returns `Some` or the deadline passes.
pub fn poll<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// Waits until `url` answers 200.
pub fn wait_ok(url: &str, within: Duration) {
    let c = http();
    poll(url, within, || c.get(url).send().ok().filter(|r| r.status().is_success()).map(|_| ()));
}

/// One record read back: key, value, headers, partition, offset.
pub type Record = (Option<String>, Vec<u8>, Vec<(String, String)>, i32, i64);

/// Every record of `topic`, from the beginning to the end offsets at the time of the call.
pub fn read_topic(brokers: &str, topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for t in md.topics() {
        for p in t.partitions() {
            let (lo, hi) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10)).unwrap();
            if hi > lo {
                tpl.add_partition_offset(topic, p.id(), Offset::Offset(lo)).unwrap();
                ends.push((p.id(), hi));
            }
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return out;
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut done: std::collections::HashMap<i32, bool> = ends.iter().map(|(p, _)| (*p, false)).collect();
    while done.values().any(|d| !d) && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let headers = m
                .headers()
                .map(|h| {
                    use rdkafka::message::Headers;
                    h.iter()
                        .map(|x| (x.key.to_string(), String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let hi = ends.iter().find(|(p, _)| *p == m.partition()).map(|(_, h)| *h).unwrap_or(0);
            if m.offset() + 1 >= hi {
                done.insert(m.partition(), true);
            }
            out.push((
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                m.payload().unwrap_or_default().to_vec(),
                headers,
                m.partition(),
                m.offset(),
            ));
        }
    }
    out
}

/// The sum of the end offsets of `topic` (0 when it does not exist).
pub fn end_offsets(brokers: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).create().unwrap();
    let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) else { return 0 };
    md.topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).map(|(_, hi)| hi).unwrap_or(0))
        .sum()
}

/// One partition of a group as Kafka's own `kafka-consumer-groups --describe` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub topic: String,
    pub partition: i32,
    /// `CURRENT-OFFSET`, `LOG-END-OFFSET` and `LAG`; None where the tool shows `-`.
    pub current: Option<i64>,
    pub end: i64,
    pub lag: Option<i64>,
}

/// Runs Kafka's own `kafka-consumer-groups --describe --group G` (through `scripts/kafka
/// groups`) and reads its table; None (with a message) where Java is absent.
pub fn kafka_describe_group(brokers: &str, group: &str) -> Option<Vec<GroupRow>> {
    if std::process::Command::new("java").arg("-version").output().is_err() {
        eprintln!("java is absent: Kafka's kafka-consumer-groups tool is not run");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka");
    let out = std::process::Command::new(script)
        .args(["groups", "--bootstrap", brokers, "--", "--describe", "--group", group])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "kafka-consumer-groups: {text}{}", String::from_utf8_lossy(&out.stderr));
    let num = |s: &str| s.parse::<i64>().ok();
    Some(
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() >= 6 && f[0] == group)
            .map(|f| GroupRow {
                topic: f[1].to_string(),
                partition: f[2].parse().unwrap(),
                current: num(f[3]),
                end: num(f[4]).unwrap(),
                lag: num(f[5]),
            })
            .collect(),
    )
}

/// One of the WFM API's example bodies (`tests/fixtures/wfm/`).
pub fn sample(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wfm").join(name)).unwrap()
}

/// A single-node broker of one test's own (`scripts/kafka` on a free port), for tests that kill
/// it; its data is wiped when dropped.
pub struct OwnBroker {
    pub port: u16,
}

impl OwnBroker {
    pub fn start() -> OwnBroker {
        Self::start_with(&[])
    }

    /// A broker with a SASL_SSL listener only (`scripts/kafka start --secure`).
    pub fn start_secure() -> OwnBroker {
        Self::start_with(&["--secure"])
    }

    /// Its folder: `client.properties`, `ca.pem`, `other-ca.pem` of a secure one.
    pub fn dir(&self) -> PathBuf {
        std::env::var("ACD_KAFKA_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join(".kafka"))
            .join(self.port.to_string())
    }

    fn start_with(extra: &[&str]) -> OwnBroker {
        // The broker takes the port, its controller the next one.
        let port = loop {
            let p = free_port();
            if p < 65_000 && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
                break p;
            }
        };
        let b = OwnBroker { port };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka");
        let out = Command::new(script).args(["start", "--port", &port.to_string()]).args(extra).output().unwrap();
        assert!(out.status.success(), "scripts/kafka start: {}", String::from_utf8_lossy(&out.stderr));
        b
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn run(&self, cmd: &str) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka");
        let out = Command::new(script).args([cmd, "--port", &self.port.to_string()]).output().unwrap();
        assert!(out.status.success(), "scripts/kafka {cmd}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// SIGKILLs the broker and waits until it is gone.
    pub fn kill9(&self) {
        let home = std::env::var("ACD_KAFKA_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join(".kafka"));
        let pid: i32 = std::fs::read_to_string(home.join(self.port.to_string()).join("broker.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        unsafe {
            libc_kill(pid, 9);
        }
        poll("the broker gone", Duration::from_secs(30), || (unsafe { libc_kill(pid, 0) } != 0).then_some(()));
    }

    /// Starts it again on the same data.
    pub fn restart(&self) {
        self.run("start");
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka");
        let _ = Command::new(script).args(["wipe", "--port", &self.port.to_string()]).output();
    }
}

/// The agent states the WFM emulator holds for `acd_id`, as (loginId, eventCode, reasonCode,
/// eventUtcTime) in its JSON form.
pub fn wfm_agent_states(
    wfm_state: &serde_json::Value,
    acd_id: &str,
) -> std::collections::BTreeSet<(String, String, String, String)> {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    wfm_state["agentStates"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|s| s["acdId"] == acd_id)
                .map(|s| (text(&s["loginId"]), text(&s["eventCode"]), text(&s["reasonCode"]), text(&s["eventUtcTime"])))
                .collect()
        })
        .unwrap_or_default()
}
