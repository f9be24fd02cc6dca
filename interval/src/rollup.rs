//! Pre-aggregated rows from ACDs that count for themselves: delivered as they come, after two
//! half-interval rows are summed into one whole-interval row (svcLvlPct recomputed from the
//! summed counts). A half whose partner never comes is delivered alone when its interval closes.

use std::collections::BTreeMap;

use acd_schemas::records::IntervalRow;
use acd_schemas::time::Millis;
use acd_schemas::wfm::{AgentPerformanceRow, AgentQueueRow, QueueRow};

use crate::sla::Formula;

/// Halves waiting for their partner, by (whole interval start, row key).
#[derive(Debug, Clone)]
pub struct Rollup {
    length: Millis,
    formula: Formula,
    halves: BTreeMap<(Millis, String, u8), IntervalRow>,
}

fn sum_queue(a: &QueueRow, b: &QueueRow, f: Formula) -> QueueRow {
    let mut r = QueueRow {
        contacts_received: a.contacts_received + b.contacts_received,
        abandoned_short: a.abandoned_short + b.abandoned_short,
        abandoned_long: a.abandoned_long + b.abandoned_long,
        handled_short: a.handled_short + b.handled_short,
        handled_long: a.handled_long + b.handled_long,
        handle_time: a.handle_time + b.handle_time,
        work_time: a.work_time + b.work_time,
        hold_time: a.hold_time + b.hold_time,
        queue_delay_time: a.queue_delay_time + b.queue_delay_time,
        right_party_handle_time: a.right_party_handle_time + b.right_party_handle_time,
        right_party_contacts: a.right_party_contacts + b.right_party_contacts,
        wrong_party_handle_time: a.wrong_party_handle_time + b.wrong_party_handle_time,
        wrong_party_contacts: a.wrong_party_contacts + b.wrong_party_contacts,
        backlog: b.backlog,
        backlog_not_expired: b.backlog_not_expired,
        backlog_expired: b.backlog_expired,
        active: b.active,
        ..b.clone()
    };
    r.svc_lvl_pct = f.percent(r.handled_short, r.abandoned_short, r.contacts_received);
    r
}

fn sum_agent_queue(a: &AgentQueueRow, b: &AgentQueueRow) -> AgentQueueRow {
    AgentQueueRow {
        handled: a.handled + b.handled,
        handled_time: a.handled_time + b.handled_time,
        work_time: a.work_time + b.work_time,
        hold_time: a.hold_time + b.hold_time,
        right_party_handle_time: a.right_party_handle_time + b.right_party_handle_time,
        right_party_contacts: a.right_party_contacts + b.right_party_contacts,
        wrong_party_handle_time: a.wrong_party_handle_time + b.wrong_party_handle_time,
        wrong_party_contacts: a.wrong_party_contacts + b.wrong_party_contacts,
        ..b.clone()
    }
}

fn sum_agent(a: &AgentPerformanceRow, b: &AgentPerformanceRow) -> AgentPerformanceRow {
    AgentPerformanceRow {
        ready_time: a.ready_time + b.ready_time,
        not_ready_time: a.not_ready_time + b.not_ready_time,
        login_time: a.login_time + b.login_time,
        ..b.clone()
    }
}

fn row_key(r: &IntervalRow) -> String {
    match (&r.queue, &r.agent_queue, &r.agent_performance) {
        (Some(q), _, _) => format!("q/{}", q.queue_value),
        (_, Some(q), _) => format!("aq/{}/{}", q.queue_value, q.agent_value),
        (_, _, Some(a)) => format!("a/{}", a.agent_value),
        _ => String::new(),
    }
}

impl Rollup {
    /// Rolls rows up into `length`-millisecond intervals.
    pub fn new(length: Millis, formula: Formula) -> Rollup {
        Rollup { length, formula, halves: BTreeMap::new() }
    }

    /// A row in; a whole-interval row out when there is one to deliver.
    pub fn add(&mut self, row: IntervalRow) -> Option<IntervalRow> {
        if row.end_date - row.start_date >= self.length {
            return Some(row);
        }
        let whole = row.start_date.div_euclid(self.length) * self.length;
        let half = (row.start_date > whole) as u8;
        let key = row_key(&row);
        self.halves.insert((whole, key.clone(), half), row);
        let (a, b) = (self.halves.get(&(whole, key.clone(), 0))?, self.halves.get(&(whole, key.clone(), 1))?);
        let mut sum = b.clone();
        sum.start_date = whole;
        sum.end_date = whole + self.length;
        sum.queue = match (&a.queue, &b.queue) {
            (Some(x), Some(y)) => Some(sum_queue(x, y, self.formula)),
            _ => None,
        };
        sum.agent_queue = match (&a.agent_queue, &b.agent_queue) {
            (Some(x), Some(y)) => Some(sum_agent_queue(x, y)),
            _ => None,
        };
        sum.agent_performance = match (&a.agent_performance, &b.agent_performance) {
            (Some(x), Some(y)) => Some(sum_agent(x, y)),
            _ => None,
        };
        self.halves.remove(&(whole, key.clone(), 0));
        self.halves.remove(&(whole, key, 1));
        Some(sum)
    }

    /// Halves whose whole interval starts before `open_from`, delivered alone.
    pub fn flush_closed(&mut self, open_from: Millis) -> Vec<IntervalRow> {
        let keep = self.halves.split_off(&(open_from, String::new(), 0));
        let closed = std::mem::replace(&mut self.halves, keep);
        closed
            .into_iter()
            .map(|((whole, _, _), mut r)| {
                r.start_date = whole;
                r.end_date = whole + self.length;
                r
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_schemas::records::RowKind;

    const MIN: Millis = 60_000;

    fn queue_row(start: Millis, handled_short: i64, handled_long: i64, handle: f64) -> IntervalRow {
        IntervalRow {
            acd_type: "x".into(),
            report_version: "0".into(),
            start_date: start,
            end_date: start + 15 * MIN,
            status: String::new(),
            status_reason: String::new(),
            kind: RowKind::Queue,
            queue: Some(QueueRow {
                queue_value: "8057".into(),
                queue_name: "Chat".into(),
                contacts_received: handled_short + handled_long,
                handled_short,
                handled_long,
                handle_time: handle,
                svc_lvl_pct: 1.0,
                ..QueueRow::default()
            }),
            agent_queue: None,
            agent_performance: None,
        }
    }

    #[test]
    fn two_15_minute_rows_make_one_30_minute_row() {
        let mut r = Rollup::new(30 * MIN, Formula::HandledOverReceived);
        let base = 1_000 * 30 * MIN;
        assert_eq!(r.add(queue_row(base + 15 * MIN, 1, 1, 100.0)), None);
        let sum = r.add(queue_row(base, 3, 0, 50.0)).unwrap();
        assert_eq!((sum.start_date, sum.end_date), (base, base + 30 * MIN));
        let q = sum.queue.unwrap();
        assert_eq!((q.contacts_received, q.handled_short, q.handled_long, q.handle_time), (5, 4, 1, 150.0));
        assert_eq!(q.svc_lvl_pct, 80.0, "recomputed from the summed counts");
        assert!(r.flush_closed(i64::MAX).is_empty());
    }

    #[test]
    fn whole_rows_pass_and_lone_halves_go_out_when_their_interval_closes() {
        let mut r = Rollup::new(15 * MIN, Formula::HandledOverReceived);
        assert!(r.add(queue_row(0, 1, 0, 1.0)).is_some(), "a whole row goes straight through");
        let mut r = Rollup::new(30 * MIN, Formula::HandledOverReceived);
        assert_eq!(r.add(queue_row(30 * MIN, 1, 0, 1.0)), None);
        assert!(r.flush_closed(30 * MIN).is_empty());
        let lone = r.flush_closed(60 * MIN);
        assert_eq!(lone.len(), 1);
        assert_eq!((lone[0].start_date, lone[0].end_date), (30 * MIN, 60 * MIN));
    }
}
