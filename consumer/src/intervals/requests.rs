//! The one way to turn an interval's rows into WFM requests and send them, used by the interval
//! pipeline and by `replay` alike.
//!
//! Building is pure: at most `wfm.max_rows_per_request` rows a request, a queue's queue and
//! agent-queue rows together, agent performance rows on their own, an agent's activity list
//! whole. Sending goes through a caller's [`Post`] (the pipeline's keeps delivered hashes and
//! waits with its partitions paused; replay's sleeps and reports progress). A refused request of
//! several queues is sent again one queue at a time, so that only the refused queue is
//! dead-lettered: one letter per refused queue and interval.

use acd_core::config::Config;
use acd_interval::Grid;
use acd_schemas::records::AgentActivity;
use acd_schemas::time::{format_millis, Millis};
use acd_schemas::wfm::{
    ActivityJson, AgentActivityEntry, AgentActivityReport, AgentPerformanceRow, AgentQueueRow, IntradayReport,
    QueueRow, ReportData,
};

use crate::deadletter::{DeadLetter, Kind};

/// The most bytes one agent-activity request carries, unless one agent's list alone is longer.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The interval grid of a configuration: length, grace, idle close and lateness.
pub fn grid(cfg: &Config) -> Grid {
    let mut grid = Grid::minutes(cfg.interval.minutes as i64);
    grid.grace = cfg.interval.grace_seconds as i64 * 1000;
    grid.idle_close = cfg.interval.idle_close_seconds as i64 * 1000;
    grid.max_lateness = cfg.interval.max_lateness_hours as i64 * 3_600_000;
    grid
}

/// One queue's rows of one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueGroup {
    pub queue: String,
    pub rows: Vec<QueueRow>,
    pub agent_rows: Vec<AgentQueueRow>,
}

/// One intraday request.
#[derive(Debug, Clone, PartialEq)]
pub struct IntradayRequest {
    pub body: Vec<u8>,
    /// The queues it carries, for sending them one at a time after a refusal; empty for a
    /// request of agent performance rows.
    pub queues: Vec<QueueGroup>,
    /// What a dead letter of it names: its first queue, or `agents`.
    pub what: String,
    /// A name for it that stays the same when the interval is computed again (for the delivered
    /// hash).
    pub tag: String,
}

/// Builds request bodies for one configuration.
#[derive(Clone)]
pub struct Requests {
    acd_type: String,
    report_version: String,
    max_rows: usize,
    grid: Grid,
}

impl Requests {
    pub fn new(cfg: &Config) -> Requests {
        Requests {
            acd_type: cfg.wfm.acd_type.clone(),
            report_version: cfg.wfm.report_version.clone(),
            max_rows: cfg.wfm.max_rows_per_request.max(1),
            grid: grid(cfg),
        }
    }

    /// The intraday body for one interval's rows.
    pub fn intraday_body(&self, start: Millis, report_data: ReportData) -> Vec<u8> {
        serde_json::to_vec(&IntradayReport {
            acd_type: self.acd_type.clone(),
            report_version: self.report_version.clone(),
            start_date: format_millis(start),
            end_date: format_millis(self.grid.end_of(start)),
            status: "SUCCESS".into(),
            status_reason: String::new(),
            report_data,
        })
        .expect("report serialises")
    }

    /// One interval's intraday rows as requests: queues first (a queue's rows together, in
    /// requests of at most `max_rows_per_request` rows), then agent performance rows.
    pub fn intraday(
        &self,
        start: Millis,
        queues: Vec<QueueRow>,
        agent_queues: Vec<AgentQueueRow>,
        agents: Vec<AgentPerformanceRow>,
    ) -> Vec<IntradayRequest> {
        let mut groups: Vec<QueueGroup> = Vec::new();
        let mut index = std::collections::HashMap::new();
        for q in queues {
            let i = *index.entry(q.queue_value.clone()).or_insert_with(|| {
                groups.push(QueueGroup { queue: q.queue_value.clone(), rows: Vec::new(), agent_rows: Vec::new() });
                groups.len() - 1
            });
            groups[i].rows.push(q);
        }
        for a in agent_queues {
            let i = *index.entry(a.queue_value.clone()).or_insert_with(|| {
                groups.push(QueueGroup { queue: a.queue_value.clone(), rows: Vec::new(), agent_rows: Vec::new() });
                groups.len() - 1
            });
            groups[i].agent_rows.push(a);
        }
        let mut cut: Vec<Vec<QueueGroup>> = Vec::new();
        let mut rows = 0;
        for g in groups {
            let n = g.rows.len() + g.agent_rows.len();
            if cut.is_empty() || rows + n > self.max_rows {
                cut.push(Vec::new());
                rows = 0;
            }
            rows += n;
            cut.last_mut().expect("request").push(g);
        }
        let mut out: Vec<IntradayRequest> = cut
            .into_iter()
            .enumerate()
            .map(|(i, groups)| self.queues_request(start, groups, format!("q{i}")))
            .collect();
        for (i, chunk) in agents.chunks(self.max_rows).enumerate() {
            let data = ReportData { agent_system_performance_report: chunk.to_vec(), ..ReportData::default() };
            out.push(IntradayRequest {
                body: self.intraday_body(start, data),
                queues: Vec::new(),
                what: "agents".into(),
                tag: format!("a{i}"),
            });
        }
        out
    }

    /// A request of one queue, for sending the queues of a refused request one at a time.
    pub fn one_queue(&self, start: Millis, group: QueueGroup) -> IntradayRequest {
        let tag = format!("q/{}", group.queue);
        self.queues_request(start, vec![group], tag)
    }

    fn queues_request(&self, start: Millis, groups: Vec<QueueGroup>, tag: String) -> IntradayRequest {
        let data = ReportData {
            queue_report: groups.iter().flat_map(|g| g.rows.clone()).collect(),
            agent_queue_report: groups.iter().flat_map(|g| g.agent_rows.clone()).collect(),
            ..ReportData::default()
        };
        IntradayRequest {
            body: self.intraday_body(start, data),
            what: groups.first().map(|g| g.queue.clone()).unwrap_or_default(),
            queues: groups,
            tag,
        }
    }

    /// One interval's activity lists as request bodies: at most `max_rows_per_request` agents
    /// and [`MAX_REQUEST_BYTES`] a request, each agent's list whole. Each body comes with its
    /// first agent, for the dead-letter key.
    pub fn activity(&self, start: Millis, lists: &[AgentActivityEntry]) -> Vec<(Vec<u8>, String)> {
        let mut bodies = self.activity_bodies(start);
        let mut out: Vec<_> = lists.iter().filter_map(|entry| bodies.push(entry)).collect();
        out.extend(bodies.finish());
        out
    }

    /// [`Requests::activity`] one list at a time: a caller that builds the lists a page at a
    /// time holds one request body, not the whole interval's.
    pub fn activity_bodies(&self, start: Millis) -> ActivityBodies {
        let head = serde_json::to_vec(&AgentActivityReport {
            acd_type: self.acd_type.clone(),
            report_version: self.report_version.clone(),
            start_date: format_millis(start),
            end_date: format_millis(self.grid.end_of(start)),
            report_data: Vec::new(),
        })
        .expect("report serialises");
        // `...,"reportData":[]}`: entries go between the brackets.
        let suffix = head[head.len() - 2..].to_vec();
        let mut prefix = head;
        prefix.truncate(prefix.len() - 2);
        ActivityBodies { prefix, suffix, max_rows: self.max_rows, body: Vec::new(), rows: 0, first: String::new() }
    }
}

/// Agent-activity request bodies of one interval, filled a list at a time (see
/// [`Requests::activity_bodies`]).
pub struct ActivityBodies {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    max_rows: usize,
    body: Vec<u8>,
    rows: usize,
    first: String,
}

impl ActivityBodies {
    /// Adds one agent's list; returns the body it completed, if any, with its first agent.
    pub fn push(&mut self, entry: &AgentActivityEntry) -> Option<(Vec<u8>, String)> {
        let item = serde_json::to_vec(entry).expect("entry serialises");
        let mut done = None;
        let rows = self.rows;
        if rows > 0 && (rows >= self.max_rows || self.body.len() + item.len() + self.suffix.len() > MAX_REQUEST_BYTES) {
            done = self.finish();
        }
        if self.rows == 0 {
            self.body.extend_from_slice(&self.prefix);
            self.first = entry.agent_value.clone();
        } else {
            self.body.push(b',');
        }
        self.body.extend_from_slice(&item);
        self.rows += 1;
        done
    }

    /// The last body, if any list is left in it.
    pub fn finish(&mut self) -> Option<(Vec<u8>, String)> {
        if self.rows == 0 {
            return None;
        }
        self.body.extend_from_slice(&self.suffix);
        self.rows = 0;
        Some((std::mem::take(&mut self.body), std::mem::take(&mut self.first)))
    }
}

/// An activity record from the ACD as the WFM's list entry.
pub fn activity_entry(a: &AgentActivity) -> AgentActivityEntry {
    AgentActivityEntry {
        agent_value: a.agent_value.clone(),
        agent_id: a.agent_id.clone(),
        user_name: a.user_name.clone(),
        agent_activity: a
            .agent_activity
            .iter()
            .map(|s| ActivityJson {
                state: s.state.clone(),
                start_time: format_millis(s.start_time),
                duration: s.duration,
                reason: s.reason.clone(),
            })
            .collect(),
    }
}

/// How one request went.
pub enum Sent {
    Done,
    /// Refused for good: the letter to write (its key still to be set).
    Refused(DeadLetter),
    /// A rebalance or shutdown overtook the round.
    Abandoned,
}

/// How a caller posts a request and dead-letters a refused one.
pub trait Post {
    /// Posts `body` to `path`; `tag` names it for the caller's delivered hashes.
    fn post(
        &mut self,
        path: &str,
        start: Millis,
        body: &[u8],
        kind: Kind,
        tag: &str,
    ) -> impl std::future::Future<Output = Sent>;
    /// A request refused for good; false when the caller must stop (shutting down).
    fn refused(&mut self, letter: DeadLetter, start: Millis, what: &str) -> impl std::future::Future<Output = bool>;
}

/// The dead-letter key and interval header of a refused report.
pub fn keyed_letter(letter: DeadLetter, start: Millis, what: &str) -> DeadLetter {
    let key = format!("{}/{}/{what}", letter.kind.as_str(), format_millis(start));
    DeadLetter { key, ..letter }.header("dlq.interval.start", format_millis(start))
}

/// Sends one interval's intraday requests, each queue of a refused multi-queue request again on
/// its own. False when abandoned.
pub async fn send_intraday(
    post: &mut impl Post,
    requests: &Requests,
    path: &str,
    tag: &str,
    start: Millis,
    list: Vec<IntradayRequest>,
) -> bool {
    for req in list {
        let req_tag = format!("{tag}/{}", req.tag);
        match post.post(path, start, &req.body, Kind::Intraday, &req_tag).await {
            Sent::Done => {}
            Sent::Abandoned => return false,
            Sent::Refused(_) if req.queues.len() > 1 => {
                for group in req.queues {
                    let one = requests.one_queue(start, group);
                    let one_tag = format!("{tag}/{}", one.tag);
                    match post.post(path, start, &one.body, Kind::Intraday, &one_tag).await {
                        Sent::Done => {}
                        Sent::Abandoned => return false,
                        Sent::Refused(letter) => {
                            if !post.refused(letter, start, &one.what).await {
                                return false;
                            }
                        }
                    }
                }
            }
            Sent::Refused(letter) => {
                if !post.refused(letter, start, &req.what).await {
                    return false;
                }
            }
        }
    }
    true
}

/// Sends one interval's activity lists. False when abandoned.
pub async fn send_activity(
    post: &mut impl Post,
    requests: &Requests,
    path: &str,
    tag: &str,
    start: Millis,
    lists: &[AgentActivityEntry],
) -> bool {
    for (i, (body, agent)) in requests.activity(start, lists).into_iter().enumerate() {
        if !send_activity_body(post, path, &format!("{tag}/{i}"), start, &body, &agent).await {
            return false;
        }
    }
    true
}

/// Sends one agent-activity request (`agent`: its first agent, for a dead letter). False when
/// abandoned.
pub async fn send_activity_body(
    post: &mut impl Post,
    path: &str,
    tag: &str,
    start: Millis,
    body: &[u8],
    agent: &str,
) -> bool {
    match post.post(path, start, body, Kind::AgentActivity, tag).await {
        Sent::Done => true,
        Sent::Abandoned => false,
        Sent::Refused(letter) => post.refused(letter, start, agent).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(q: &str) -> QueueRow {
        QueueRow { queue_value: q.into(), contacts_received: 1, ..QueueRow::default() }
    }

    fn agent_queue(q: &str, a: &str) -> AgentQueueRow {
        AgentQueueRow { queue_value: q.into(), agent_value: a.into(), handled: 1, ..AgentQueueRow::default() }
    }

    fn entry(agent: usize, segments: usize) -> AgentActivityEntry {
        AgentActivityEntry {
            agent_value: format!("a{agent}"),
            agent_id: String::new(),
            user_name: String::new(),
            agent_activity: (0..segments)
                .map(|i| ActivityJson {
                    state: "AVAIL".into(),
                    start_time: format_millis(i as i64 * 1000),
                    duration: 1000,
                    reason: "x".repeat(100),
                })
                .collect(),
        }
    }

    fn requests(max_rows: usize) -> Requests {
        let mut cfg = Config::default();
        cfg.wfm.max_rows_per_request = max_rows;
        Requests::new(&cfg)
    }

    #[test]
    fn a_queue_s_rows_stay_together_and_agent_rows_go_on_their_own() {
        let r = requests(3);
        let out = r.intraday(
            900_000,
            vec![queue("q1"), queue("q2"), queue("q3")],
            vec![agent_queue("q1", "a"), agent_queue("q1", "b"), agent_queue("q9", "c")],
            vec![AgentPerformanceRow { agent_value: "a".into(), login_time: 900.0, ..Default::default() }],
        );
        let shape: Vec<Vec<&str>> = out.iter().map(|r| r.queues.iter().map(|g| g.queue.as_str()).collect()).collect();
        // q1 has three rows: a request of its own; q2, q3 and q9 (agent-queue rows only) fill the next.
        assert_eq!(shape, vec![vec!["q1"], vec!["q2", "q3", "q9"], vec![]]);
        assert_eq!(out[2].what, "agents");
        let body: IntradayReport = serde_json::from_slice(&out[1].body).unwrap();
        assert_eq!(body.report_data.queue_report.len(), 2);
        assert_eq!(body.report_data.agent_queue_report.len(), 1);
        assert_eq!(body.start_date, "1970-01-01T00:15:00.000Z");
        let one = r.one_queue(900_000, out[1].queues[2].clone());
        let body: IntradayReport = serde_json::from_slice(&one.body).unwrap();
        assert_eq!((one.what.as_str(), body.report_data.agent_queue_report.len()), ("q9", 1));
    }

    #[test]
    fn activity_requests_are_cut_by_rows_and_by_bytes_never_inside_a_list() {
        let lists: Vec<_> = (0..10).map(|a| entry(a, 3)).collect();
        let bodies = requests(4).activity(900_000, &lists);
        assert_eq!(bodies.len(), 3, "10 agents, 4 a request");
        let mut agents = Vec::new();
        for (body, first) in &bodies {
            let r: AgentActivityReport = serde_json::from_slice(body).expect("a valid body");
            assert_eq!(r.start_date, "1970-01-01T00:15:00.000Z");
            assert_eq!(&r.report_data[0].agent_value, first);
            agents.extend(r.report_data.into_iter().map(|e| e.agent_value));
        }
        assert_eq!(agents, (0..10).map(|a| format!("a{a}")).collect::<Vec<_>>());
        // Lists of about 1.5 MiB each: two fit under the byte cap, not three; a list larger than
        // the cap goes alone and whole.
        let big: Vec<_> = (0..5).map(|a| entry(a, 10_000)).collect();
        let bodies = requests(1000).activity(900_000, &big);
        assert_eq!(bodies.len(), 3);
        assert!(bodies.iter().all(|(b, _)| b.len() <= MAX_REQUEST_BYTES));
        let huge = vec![entry(0, 40_000)];
        let bodies = requests(1000).activity(900_000, &huge);
        assert_eq!(bodies.len(), 1);
        let r: AgentActivityReport = serde_json::from_slice(&bodies[0].0).unwrap();
        assert_eq!(r.report_data[0].agent_activity.len(), 40_000);
    }

    /// A WFM that refuses any request carrying queue `q2`.
    struct Picky {
        posted: Vec<String>,
        letters: Vec<String>,
    }

    impl Post for Picky {
        async fn post(&mut self, _: &str, _: Millis, body: &[u8], kind: Kind, tag: &str) -> Sent {
            self.posted.push(tag.to_string());
            if String::from_utf8_lossy(body).contains("\"q2\"") {
                Sent::Refused(DeadLetter::new(crate::deadletter::Reason::WfmRejected, kind, body.to_vec()))
            } else {
                Sent::Done
            }
        }

        async fn refused(&mut self, letter: DeadLetter, start: Millis, what: &str) -> bool {
            self.letters.push(keyed_letter(letter, start, what).key);
            true
        }
    }

    #[test]
    fn a_refused_request_of_several_queues_is_sent_again_one_queue_at_a_time() {
        let r = requests(10);
        let list = r.intraday(0, vec![queue("q1"), queue("q2"), queue("q3")], Vec::new(), Vec::new());
        let mut wfm = Picky { posted: Vec::new(), letters: Vec::new() };
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(rt.block_on(send_intraday(&mut wfm, &r, "/intraday", "t", 0, list)));
        assert_eq!(wfm.posted, ["t/q0", "t/q/q1", "t/q/q2", "t/q/q3"]);
        assert_eq!(wfm.letters, ["intraday/1970-01-01T00:00:00.000Z/q2"], "one letter, for the refused queue");
    }
}
