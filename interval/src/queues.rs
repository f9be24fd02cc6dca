//! Contacts into queue rows and agent-per-queue rows (When Contact Ended): a contact counts wholly
//! in the interval of its `endedUtc`. One [`QueueBook`] serves one contact partition.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use acd_schemas::records::{Contact, ContactRef, Outcome, Party};
use acd_schemas::time::Millis;
use acd_schemas::wfm::{AgentQueueRow, QueueRow};

use crate::grid::{Closing, Grid};
use crate::keys::{KeyStore, Keys, MemoryKeys, HOT_INTERVALS};
use crate::sent::{MemorySent, Sent, SentBox, SentStore};
use crate::sla::Formula;
use crate::Admit;

/// What the queue arithmetic needs to know.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    pub grid: Grid,
    /// `sla.threshold_seconds`: short is `<=`, long is `>`.
    pub threshold_seconds: f64,
    pub formula: Formula,
    /// `interval.zero_fill_days`, in milliseconds.
    pub zero_fill: Millis,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Cell {
    handled_short: i64,
    handled_long: i64,
    abandoned_short: i64,
    abandoned_long: i64,
    handle_time: f64,
    work_time: f64,
    hold_time: f64,
    queue_delay_time: f64,
    right_contacts: i64,
    right_time: f64,
    wrong_contacts: i64,
    wrong_time: f64,
    /// queueName and isOutbound of the contact with the latest endedUtc (ties: the last read).
    name: (Millis, String, bool),
}

#[derive(Debug, Clone, Default, PartialEq)]
struct AgentCell {
    handled: i64,
    handled_time: f64,
    work_time: f64,
    hold_time: f64,
    right_contacts: i64,
    right_time: f64,
    wrong_contacts: i64,
    wrong_time: f64,
    agent_id: String,
}

#[derive(Debug, Clone)]
struct Queue {
    value: String,
    first_interval: Millis,
    last_contact: Millis,
    /// The queue's name from its latest contact, for zero rows.
    name: (Millis, String, bool),
}

/// One interval's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueReport {
    pub start: Millis,
    pub end: Millis,
    pub queue_rows: Vec<QueueRow>,
    pub agent_queue_rows: Vec<AgentQueueRow>,
}

/// The contacts of one partition, aggregated. Queues and agents are interned: a contact costs
/// map lookups by `&str` and integer-keyed cell updates, no allocation.
#[derive(Debug)]
pub struct QueueBook {
    settings: QueueSettings,
    /// A 128-bit hash of (acdId, contactId) of each counted contact: 16 bytes a key instead of
    /// two strings (collision odds about 1e-27 at 1e6 keys).
    counted: Keys,
    queue_ids: HashMap<String, u32>,
    /// By queue id; `None` once pruned.
    queues: Vec<Option<Queue>>,
    agent_ids: HashMap<String, u32>,
    agents: Vec<String>,
    cells: BTreeMap<(Millis, u32), Cell>,
    agent_cells: BTreeMap<(Millis, u32, u32), AgentCell>,
    /// The highest endedUtc seen.
    high: Option<Millis>,
    /// Which intervals [`QueueBook::close`] returned, and which late contacts changed since.
    closing: Closing,
    /// The horizon of the last prune: pruning again before it moves finds nothing.
    pruned_at: Millis,
    /// The queue and agent-queue rows returned per interval (see [`crate::sent`]).
    sent: SentBox,
}

/// Two SipHash digests of the contact's identity, over domain-separated inputs, as one
/// 128-bit key (deterministic: no random keys in a pure library).
fn contact_key(acd_id: &str, contact_id: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let digest = |domain: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (domain, acd_id, contact_id).hash(&mut h);
        h.finish()
    };
    (digest(1) as u128) << 64 | digest(2) as u128
}

fn replace_name(slot: &mut (Millis, String, bool), ended: Millis, name: &str, outbound: bool) {
    if ended >= slot.0 {
        slot.0 = ended;
        if slot.1 != name {
            slot.1 = name.to_string();
        }
        slot.2 = outbound;
    }
}

/// Counts a handled contact's right- or wrong-party figures.
fn tally_party(party: Option<Party>, handle: f64, right: (&mut i64, &mut f64), wrong: (&mut i64, &mut f64)) {
    let (count, time) = match party {
        Some(Party::Right) => right,
        Some(Party::Wrong) => wrong,
        None => return,
    };
    *count += 1;
    *time += handle;
}

fn intern(ids: &mut HashMap<String, u32>, next: usize, value: &str) -> (u32, bool) {
    if let Some(id) = ids.get(value) {
        return (*id, false);
    }
    let id = next as u32;
    ids.insert(value.to_string(), id);
    (id, true)
}

impl QueueBook {
    /// An empty book, its cold keys in memory.
    pub fn new(settings: QueueSettings) -> QueueBook {
        QueueBook::with_key_store(settings, Box::new(MemoryKeys::default()))
    }

    /// An empty book whose cold dedup keys go to `store`.
    pub fn with_key_store(settings: QueueSettings, store: Box<dyn KeyStore>) -> QueueBook {
        QueueBook::with_stores(settings, store, Box::new(MemorySent::default()))
    }

    /// An empty book whose cold dedup keys go to `keys` and the keys of its returned rows to
    /// `sent`.
    pub fn with_stores(settings: QueueSettings, keys: Box<dyn KeyStore>, sent: Box<dyn SentStore>) -> QueueBook {
        let store = keys;
        QueueBook {
            settings,
            counted: Keys::new(store),
            queue_ids: HashMap::default(),
            queues: Vec::new(),
            agent_ids: HashMap::default(),
            agents: Vec::new(),
            cells: BTreeMap::new(),
            agent_cells: BTreeMap::new(),
            high: None,
            closing: Closing::default(),
            pruned_at: Millis::MIN,
            sent: SentBox(sent),
        }
    }

    /// The highest event time seen (the watermark plus grace).
    pub fn high(&self) -> Option<Millis> {
        self.high
    }

    /// The open intervals (not closed yet), first and last start.
    pub fn open_intervals(&self) -> Option<(Millis, Millis)> {
        self.closing.open(self.first_interval(), self.high, &self.settings.grid)
    }

    fn first_interval(&self) -> Option<Millis> {
        self.queues.iter().flatten().map(|q| q.first_interval).min()
    }

    /// Counts one contact.
    pub fn add(&mut self, c: &Contact) -> Admit {
        self.add_ref(&c.as_ref())
    }

    /// Counts one contact read in place.
    pub fn add_ref(&mut self, c: &ContactRef<'_>) -> Admit {
        let grid = self.settings.grid;
        let start = grid.start_of(c.ended_utc);
        let key = contact_key(c.acd_id, c.contact_id);
        if self.counted.contains(key, start) {
            return Admit::Duplicate;
        }
        if grid.too_late(start, self.high) {
            return Admit::TooLate;
        }
        self.counted.insert(key, start);
        if self.high.is_none_or(|h| c.ended_utc > h) {
            self.high = Some(c.ended_utc);
            self.counted.cool(grid.start_of(c.ended_utc) - HOT_INTERVALS * grid.length);
        }
        if self.closing.is_closed(start) {
            self.closing.reopen(start);
        }

        let (qid, new) = intern(&mut self.queue_ids, self.queues.len(), c.queue_value);
        if new {
            self.queues.push(None);
        }
        let q = self.queues[qid as usize].get_or_insert_with(|| Queue {
            value: c.queue_value.to_string(),
            first_interval: start,
            last_contact: c.ended_utc,
            name: (Millis::MIN, String::new(), false),
        });
        q.first_interval = q.first_interval.min(start);
        q.last_contact = q.last_contact.max(c.ended_utc);
        replace_name(&mut q.name, c.ended_utc, c.queue_name, c.is_outbound);

        let t = self.settings.threshold_seconds;
        let cell = self.cells.entry((start, qid)).or_default();
        replace_name(&mut cell.name, c.ended_utc, c.queue_name, c.is_outbound);
        cell.queue_delay_time += c.queue_delay_sec;
        let short = c.queue_delay_sec <= t;
        match c.outcome {
            Outcome::Abandoned => {
                if short {
                    cell.abandoned_short += 1
                } else {
                    cell.abandoned_long += 1
                }
            }
            Outcome::Handled => {
                let handle = c.talk_sec + c.hold_sec + c.work_sec;
                if short {
                    cell.handled_short += 1
                } else {
                    cell.handled_long += 1
                }
                cell.handle_time += handle;
                cell.work_time += c.work_sec;
                cell.hold_time += c.hold_sec;
                tally_party(
                    c.party,
                    handle,
                    (&mut cell.right_contacts, &mut cell.right_time),
                    (&mut cell.wrong_contacts, &mut cell.wrong_time),
                );
                let agent = c.agent_value.unwrap_or_default();
                let (aid, new) = intern(&mut self.agent_ids, self.agents.len(), agent);
                if new {
                    self.agents.push(agent.to_string());
                }
                let a = self.agent_cells.entry((start, qid, aid)).or_default();
                a.handled += 1;
                a.handled_time += handle;
                a.work_time += c.work_sec;
                a.hold_time += c.hold_sec;
                tally_party(
                    c.party,
                    handle,
                    (&mut a.right_contacts, &mut a.right_time),
                    (&mut a.wrong_contacts, &mut a.wrong_time),
                );
                if let Some(id) = c.agent_id.filter(|id| !id.is_empty() && *id != a.agent_id) {
                    a.agent_id = id.to_string();
                }
            }
        }
        Admit::Counted
    }

    /// The intervals that closed since the last call (in order), then those re-opened by late
    /// contacts, each whole. `idle_for` is how long the partition has had no records; `now` the
    /// wall clock.
    pub fn close(&mut self, idle_for: Millis, now: Millis) -> Vec<QueueReport> {
        let grid = self.settings.grid;
        let open_from = grid.open_from(self.high, idle_for, now);
        let Some(first) = self.first_interval() else {
            return Vec::new();
        };
        let floor = grid.lateness_floor(self.high);
        let cells = &self.cells;
        let due = self.closing.due(first, open_from, grid.length, floor, |from, to| {
            cells.range((from, 0)..(to, 0)).map(|((s, _), _)| *s).collect()
        });
        let out = due.into_iter().filter_map(|s| self.report(s)).collect();
        self.prune();
        out
    }

    /// The rows of interval `start`: every queue with a contact in it, and a zero row for every
    /// queue that had its first contact before and a contact within `zero_fill` of its end.
    fn report(&mut self, start: Millis) -> Option<QueueReport> {
        let end = self.settings.grid.end_of(start);
        let formula = self.settings.formula;
        let mut queue_rows = Vec::new();
        let mut queues: Vec<(u32, &Queue)> =
            self.queues.iter().enumerate().filter_map(|(id, q)| Some((id as u32, q.as_ref()?))).collect();
        queues.sort_by(|a, b| a.1.value.cmp(&b.1.value));
        for (qid, q) in queues {
            let cell = self.cells.get(&(start, qid));
            if cell.is_none() && !(q.first_interval <= start && q.last_contact >= end - self.settings.zero_fill) {
                continue;
            }
            let zero = Cell { name: q.name.clone(), ..Cell::default() };
            let c = cell.unwrap_or(&zero);
            let received = c.handled_short + c.handled_long + c.abandoned_short + c.abandoned_long;
            queue_rows.push(QueueRow {
                queue_value: q.value.clone(),
                queue_name: c.name.1.clone(),
                is_outbound: c.name.2,
                contacts_received: received,
                abandoned_short: c.abandoned_short,
                abandoned_long: c.abandoned_long,
                handled_short: c.handled_short,
                handled_long: c.handled_long,
                handle_time: c.handle_time,
                work_time: c.work_time,
                hold_time: c.hold_time,
                queue_delay_time: c.queue_delay_time,
                svc_lvl_pct: formula.percent(c.handled_short, c.abandoned_short, received),
                right_party_handle_time: c.right_time,
                right_party_contacts: c.right_contacts,
                wrong_party_handle_time: c.wrong_time,
                wrong_party_contacts: c.wrong_contacts,
                backlog: 0,
                backlog_not_expired: 0,
                backlog_expired: 0,
                active: 0,
            });
        }
        let mut agent_queue_rows: Vec<AgentQueueRow> = self
            .agent_cells
            .range((start, 0, 0)..(end, 0, 0))
            .filter_map(|((_, qid, aid), a)| {
                let q = self.queues[*qid as usize].as_ref()?;
                let name = self.cells.get(&(start, *qid)).map(|c| c.name.clone()).unwrap_or_default();
                Some(AgentQueueRow {
                    queue_value: q.value.clone(),
                    queue_name: name.1,
                    is_outbound: name.2,
                    agent_value: self.agents[*aid as usize].clone(),
                    agent_id: a.agent_id.clone(),
                    handled: a.handled,
                    handled_time: a.handled_time,
                    work_time: a.work_time,
                    hold_time: a.hold_time,
                    right_party_handle_time: a.right_time,
                    right_party_contacts: a.right_contacts,
                    wrong_party_handle_time: a.wrong_time,
                    wrong_party_contacts: a.wrong_contacts,
                    active: 0,
                })
            })
            .collect();
        agent_queue_rows.sort_by(|a, b| (&a.queue_value, &a.agent_value).cmp(&(&b.queue_value, &b.agent_value)));
        // Rows returned before (by this book or, through the store, by an earlier one) that this
        // computation no longer produces, such as a zero-filled queue a rebuilt book has not
        // heard of: sent again as zero rows.
        let before = self.sent.0.get(start);
        let produced: std::collections::BTreeSet<&str> = queue_rows.iter().map(|r| r.queue_value.as_str()).collect();
        let mut zero_rows = Vec::new();
        for (queue, (name, outbound)) in before.queues.iter().filter(|(q, _)| !produced.contains(q.as_str())) {
            zero_rows.push(QueueRow {
                queue_value: queue.clone(),
                queue_name: name.clone(),
                is_outbound: *outbound,
                svc_lvl_pct: formula.percent(0, 0, 0),
                ..QueueRow::default()
            });
        }
        queue_rows.extend(zero_rows);
        let produced: std::collections::BTreeSet<(&str, &str)> =
            agent_queue_rows.iter().map(|r| (r.queue_value.as_str(), r.agent_value.as_str())).collect();
        let mut zero_rows = Vec::new();
        for (queue, agent) in before.agent_queues.iter().filter(|(q, a)| !produced.contains(&(q.as_str(), a.as_str())))
        {
            zero_rows.push(AgentQueueRow {
                queue_value: queue.clone(),
                agent_value: agent.clone(),
                ..AgentQueueRow::default()
            });
        }
        agent_queue_rows.extend(zero_rows);
        let now = Sent {
            queues: queue_rows.iter().map(|r| (r.queue_value.clone(), (r.queue_name.clone(), r.is_outbound))).collect(),
            agent_queues: agent_queue_rows.iter().map(|r| (r.queue_value.clone(), r.agent_value.clone())).collect(),
            ..Sent::default()
        };
        if now != before {
            self.sent.0.put(start, &now);
        }
        if queue_rows.is_empty() && agent_queue_rows.is_empty() {
            return None;
        }
        Some(QueueReport { start, end, queue_rows, agent_queue_rows })
    }

    /// Forgets what can no longer change: cells and dedup keys beyond the lateness window; moves
    /// the keys of intervals no longer near the watermark out of memory.
    fn prune(&mut self) {
        let Some(high) = self.high else { return };
        let grid = self.settings.grid;
        let horizon = grid.start_of(high - grid.max_lateness) - grid.length;
        if let Some(closed) = self.closing.closed_until() {
            let horizon = horizon.min(closed);
            // Every key's interval has a cell: when the oldest cell is inside the horizon, so is
            // every key.
            let oldest = self.cells.keys().next().map(|(s, _)| *s);
            if horizon <= self.pruned_at || oldest.is_none_or(|o| o >= horizon) {
                return;
            }
            self.pruned_at = horizon;
            self.counted.forget_before(horizon);
            self.sent.0.forget_before(horizon);
            self.cells.retain(|(s, _), _| *s >= horizon);
            self.agent_cells.retain(|(s, _, _), _| *s >= horizon);
        }
        let zero_fill = self.settings.zero_fill;
        for slot in &mut self.queues {
            if slot.as_ref().is_some_and(|q| q.last_contact < high - zero_fill - grid.max_lateness) {
                let q = slot.take().expect("queue");
                self.queue_ids.remove(&q.value);
            }
        }
    }

    /// Empty intervals passed over by a jump in event time beyond the lateness window.
    pub fn passed_over(&self) -> u64 {
        self.closing.passed_over()
    }

    /// Dedup keys held in memory.
    pub fn remembered(&self) -> usize {
        self.counted.in_memory()
    }

    /// Dedup keys moved to the key store so far.
    pub fn spilled(&self) -> u64 {
        self.counted.spilled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_schemas::time::parse_rfc3339;

    fn t(s: &str) -> Millis {
        parse_rfc3339(&format!("2024-04-17T{s}Z")).unwrap()
    }

    fn settings() -> QueueSettings {
        QueueSettings {
            grid: Grid::minutes(15),
            threshold_seconds: 20.0,
            formula: Formula::HandledOverReceived,
            zero_fill: 7 * 86_400_000,
        }
    }

    fn handled(id: &str, queue: &str, arrived: &str, ended: &str, delay: f64) -> Contact {
        Contact {
            acd_id: "east".into(),
            contact_id: id.into(),
            queue_value: queue.into(),
            queue_name: format!("Q{queue}"),
            is_outbound: false,
            outcome: Outcome::Handled,
            arrived_utc: t(arrived),
            ended_utc: t(ended),
            queue_delay_sec: delay,
            talk_sec: 100.0,
            hold_sec: 20.0,
            work_sec: 10.0,
            agent_value: Some("a1".into()),
            agent_id: Some("id-a1".into()),
            party: None,
            received_utc: None,
        }
    }

    fn abandoned(id: &str, queue: &str, ended: &str, delay: f64) -> Contact {
        Contact {
            outcome: Outcome::Abandoned,
            talk_sec: 0.0,
            hold_sec: 0.0,
            work_sec: 0.0,
            agent_value: None,
            agent_id: None,
            ..handled(id, queue, "00:00:00", ended, delay)
        }
    }

    fn rows_at(reports: &[QueueReport], start: &str) -> Vec<QueueRow> {
        reports.iter().filter(|r| r.start == t(start)).flat_map(|r| r.queue_rows.clone()).collect()
    }

    #[test]
    fn a_gap_longer_than_the_lateness_window_gets_no_zero_rows_but_keeps_its_contacts() {
        // History replayed after a 3-day gap: the last busy interval before the gap is still
        // delivered, the empty ones beyond max_lateness are passed over, the window before the
        // new traffic gets its zero rows as usual.
        let mut b = QueueBook::new(settings());
        b.add(&handled("c1", "q", "09:00:00", "09:05:00", 5.0));
        b.add(&handled("c2", "q", "09:00:00", "09:20:00", 5.0));
        let mut later = handled("c3", "q", "09:00:00", "09:40:00", 5.0);
        later.ended_utc += 3 * 86_400_000;
        later.arrived_utc += 3 * 86_400_000;
        b.add(&later);
        let out = b.close(0, 0);
        assert_eq!(rows_at(&out, "09:00:00")[0].contacts_received, 1);
        assert_eq!(rows_at(&out, "09:15:00")[0].contacts_received, 1);
        assert!(rows_at(&out, "09:30:00").is_empty(), "empty and beyond the window: passed over");
        // The floor is one interval before the start of (high - 48 h): day 1 09:15. Day 0 09:00
        // to there is 97 intervals, two busy; from there to the new one (09:30 on day 3, still
        // open) the window of 193 gets zero rows.
        assert_eq!(b.passed_over(), 97 - 2);
        assert_eq!(out.len(), 2 + 193);
        assert!(out[2..].iter().all(|r| r.queue_rows[0].contacts_received == 0));
    }

    #[test]
    fn nices_worked_example_a_contact_counts_wholly_where_it_ended() {
        // A contact from 09:10 to 09:40 counts in the 09:30 interval only.
        let mut b = QueueBook::new(settings());
        assert_eq!(b.add(&handled("c1", "q", "09:10:00", "09:40:00", 5.0)), Admit::Counted);
        let out = b.close(0, 0);
        assert!(out.is_empty(), "nothing closes before the watermark passes");
        assert_eq!(b.open_intervals(), Some((t("09:30:00"), t("09:30:00"))));
        b.add(&handled("c2", "q", "09:50:00", "09:58:00", 5.0));
        assert_eq!(b.open_intervals(), Some((t("09:30:00"), t("09:45:00"))));
        let out = b.close(0, 0);
        assert_eq!(b.open_intervals(), Some((t("09:45:00"), t("09:45:00"))));
        // 09:58 - 2 min grace = 09:56: 09:30 closed, 09:45 not yet.
        assert_eq!(out.iter().map(|r| r.start).collect::<Vec<_>>(), vec![t("09:30:00")]);
        let row = &out[0].queue_rows[0];
        assert_eq!(row.contacts_received, 1);
        assert_eq!(row.handle_time, 130.0);
        assert!(rows_at(&out, "09:00:00").is_empty() && rows_at(&out, "09:15:00").is_empty());
    }

    #[test]
    fn a_duplicate_of_a_contact_whose_interval_went_cold_is_still_recognised() {
        let mut b = QueueBook::new(settings());
        b.add(&handled("c1", "q", "09:00:00", "09:05:00", 5.0));
        // Three hours later: 09:00 is long closed and its keys out of memory.
        for (i, ended) in ["10:00:00", "11:00:00", "12:00:00"].iter().enumerate() {
            b.add(&handled(&format!("n{i}"), "q", "09:00:00", ended, 5.0));
            b.close(0, 0);
        }
        assert!(b.spilled() >= 1, "the 09:00 key left memory");
        assert_eq!(b.add(&handled("c1", "q", "09:00:00", "09:05:00", 5.0)), Admit::Duplicate);
        let late = b.add(&handled("c9", "q", "09:00:00", "09:06:00", 5.0));
        assert_eq!(late, Admit::Counted, "a new late contact for the cold interval counts");
        let again = b.close(0, 0);
        assert_eq!(rows_at(&again, "09:00:00")[0].contacts_received, 2, "recomputed with both");
    }

    #[test]
    fn a_contact_ending_on_a_boundary_belongs_to_the_next_interval() {
        let mut b = QueueBook::new(settings());
        b.add(&handled("c1", "q", "09:50:00", "10:00:00", 5.0));
        b.add(&handled("c2", "q", "10:20:00", "10:40:00", 5.0));
        let out = b.close(0, 0);
        assert_eq!(rows_at(&out, "10:00:00")[0].contacts_received, 1);
        assert!(rows_at(&out, "09:45:00").is_empty());
    }

    #[test]
    fn abandons_on_both_sides_of_the_threshold_and_the_sla() {
        let mut b = QueueBook::new(settings());
        b.add(&abandoned("a1", "q", "10:01:00", 20.0)); // short: <= T
        b.add(&abandoned("a2", "q", "10:02:00", 20.001)); // long
        b.add(&handled("h1", "q", "10:00:00", "10:03:00", 19.0));
        b.add(&handled("h2", "q", "10:00:00", "10:04:00", 45.0));
        b.add(&handled("later", "q", "10:20:00", "10:30:00", 1.0));
        let row = &rows_at(&b.close(0, 0), "10:00:00")[0];
        assert_eq!((row.abandoned_short, row.abandoned_long, row.handled_short, row.handled_long), (1, 1, 1, 1));
        assert_eq!(row.contacts_received, 4);
        assert_eq!(row.queue_delay_time, 20.0 + 20.001 + 19.0 + 45.0);
        assert_eq!(row.svc_lvl_pct, 25.0);
        assert_eq!((row.handle_time, row.work_time, row.hold_time), (260.0, 20.0, 40.0));
        assert_eq!((row.active, row.backlog), (0, 0));
    }

    #[test]
    fn duplicates_count_once_and_agent_rows_only_for_handled() {
        let mut b = QueueBook::new(settings());
        let c = handled("c1", "q", "10:00:00", "10:05:00", 1.0);
        assert_eq!(b.add(&c), Admit::Counted);
        assert_eq!(b.add(&c), Admit::Duplicate);
        b.add(&abandoned("a1", "q", "10:06:00", 1.0));
        b.add(&handled("late", "q", "10:20:00", "10:40:00", 1.0));
        let out = b.close(0, 0);
        let r = out.iter().find(|r| r.start == t("10:00:00")).unwrap();
        assert_eq!(r.queue_rows[0].contacts_received, 2);
        assert_eq!(r.agent_queue_rows.len(), 1);
        let a = &r.agent_queue_rows[0];
        assert_eq!((a.agent_value.as_str(), a.handled, a.handled_time, a.agent_id.as_str()), ("a1", 1, 130.0, "id-a1"));
    }

    #[test]
    fn queues_get_zero_rows_from_their_first_contact_on() {
        let mut b = QueueBook::new(settings());
        b.add(&handled("c1", "q1", "10:00:00", "10:05:00", 1.0));
        b.add(&handled("c2", "q2", "10:30:00", "10:35:00", 1.0));
        b.add(&handled("c3", "q1", "11:00:00", "11:10:00", 1.0));
        let out = b.close(0, 0);
        let starts: Vec<_> = out.iter().map(|r| r.start).collect();
        assert_eq!(starts, vec![t("10:00:00"), t("10:15:00"), t("10:30:00"), t("10:45:00")]);
        // q1 has a zero row at 10:15, 10:30 and 10:45; q2 only from 10:30 on.
        assert_eq!(out[1].queue_rows.len(), 1);
        assert_eq!(out[1].queue_rows[0].contacts_received, 0);
        assert_eq!(out[1].queue_rows[0].queue_name, "Qq1");
        assert_eq!(out[1].queue_rows[0].svc_lvl_pct, 100.0);
        assert_eq!(out[2].queue_rows.len(), 2);
        assert_eq!(out[3].queue_rows.len(), 2);
    }

    #[test]
    fn a_late_contact_reopens_its_delivered_interval_and_older_ones_are_too_late() {
        let mut b = QueueBook::new(settings());
        b.add(&handled("c1", "q", "10:00:00", "10:05:00", 1.0));
        b.add(&handled("c2", "q", "10:20:00", "10:40:00", 1.0));
        let first = b.close(0, 0);
        assert_eq!(rows_at(&first, "10:00:00")[0].contacts_received, 1);
        assert_eq!(b.add(&handled("c3", "q", "10:00:00", "10:07:00", 1.0)), Admit::Counted);
        let again = b.close(0, 0);
        assert_eq!(again.len(), 1, "only the changed interval comes back");
        assert_eq!(rows_at(&again, "10:00:00")[0].contacts_received, 2);
        // Two days and more later, a contact for 10:00 is too late.
        b.add(&handled("c4", "q", "10:00:00", "10:00:00", 1.0));
        let mut much_later = handled("c5", "q", "10:00:00", "10:00:00", 1.0);
        much_later.ended_utc += 49 * 3_600_000;
        b.add(&much_later);
        assert_eq!(b.add(&handled("c6", "q", "10:00:00", "10:08:00", 1.0)), Admit::TooLate);
    }

    #[test]
    fn idle_partitions_close_by_the_wall_clock_and_names_follow_the_latest_contact() {
        let mut b = QueueBook::new(settings());
        let mut c1 = handled("c1", "q", "10:00:00", "10:05:00", 1.0);
        c1.queue_name = "Old".into();
        let mut c2 = handled("c2", "q", "10:00:00", "10:04:00", 1.0);
        c2.queue_name = "Older".into();
        b.add(&c1);
        b.add(&c2);
        assert!(b.close(29_000, t("10:30:00")).is_empty(), "not idle long enough");
        assert!(b.close(30_000, t("10:16:59")).is_empty(), "end + grace not reached");
        let out = b.close(30_000, t("10:17:00"));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].queue_rows[0].queue_name, "Old");
    }
}
