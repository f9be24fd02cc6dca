//! A deterministic contact-center: agents log in, go ready, take contacts from queues, wrap up,
//! take breaks and log out; callers sometimes abandon. Pure: the same seed and the same calls to
//! [`Simulator::advance`] give the same events, so tests and the demo can compute independently
//! what the WFM must receive.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use acd_schemas::records::{AgentState, Contact, Outcome, Party};
use acd_schemas::time::Millis;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One generated event.
#[derive(Debug, Clone, PartialEq)]
pub enum SimEvent {
    State(AgentState),
    Contact(Contact),
}

/// What an agent is doing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    LoggedOut,
    NotReady,
    Ready,
    Talking { queue: usize, arrived: Millis, delay: f64, talk_start: Millis },
    Wrap { queue: usize, arrived: Millis, delay: f64, talk: f64, hold: f64, wrap_start: Millis },
    Break,
}

struct Agent {
    login_id: String,
    phase: Phase,
}

/// The generator.
pub struct Simulator {
    acd_id: String,
    rng: StdRng,
    agents: Vec<Agent>,
    queues: Vec<(String, String, bool)>,
    /// (time of the next step, agent index); index `usize::MAX` is the abandon source.
    schedule: BinaryHeap<Reverse<(Millis, usize)>>,
    contacts: u64,
    now: Millis,
}

const ABANDONS: usize = usize::MAX;

impl Simulator {
    /// `agents` agents and `queues` queues from `start`; every agent logs in in the first minute.
    pub fn new(acd_id: &str, agents: u32, queues: u32, seed: u64, start: Millis) -> Simulator {
        let mut rng = StdRng::seed_from_u64(seed);
        let queues: Vec<_> = (0..queues.max(1))
            .map(|q| {
                let outbound = q % 5 == 4;
                let name = if outbound { format!("Outbound_{q:02}") } else { format!("Skill_{q:02}") };
                (format!("{}", 8000 + q), name, outbound)
            })
            .collect();
        let mut schedule = BinaryHeap::new();
        let agents = (0..agents)
            .map(|i| {
                schedule.push(Reverse((start + rng.gen_range(0..60_000), i as usize)));
                Agent { login_id: format!("agent{:05}", i + 1), phase: Phase::LoggedOut }
            })
            .collect();
        schedule.push(Reverse((start + rng.gen_range(5_000..60_000), ABANDONS)));
        Simulator { acd_id: acd_id.to_string(), rng, agents, queues, schedule, contacts: 0, now: start }
    }

    /// The simulated time reached so far.
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Every event up to `until` (exclusive), in time order.
    pub fn advance(&mut self, until: Millis) -> Vec<SimEvent> {
        let mut out = Vec::new();
        while let Some(Reverse((t, who))) = self.schedule.peek().copied() {
            if t >= until {
                break;
            }
            self.schedule.pop();
            let next = if who == ABANDONS { self.abandon(t, &mut out) } else { self.step(who, t, &mut out) };
            self.schedule.push(Reverse((next, who)));
        }
        self.now = self.now.max(until);
        out
    }

    fn state(&self, agent: usize, t: Millis, code: &str, reason: &str) -> SimEvent {
        SimEvent::State(AgentState {
            acd_id: self.acd_id.clone(),
            login_id: self.agents[agent].login_id.clone(),
            event_code: code.into(),
            reason_code: reason.into(),
            event_utc_time: t,
            received_utc: None,
        })
    }

    fn secs(&mut self, lo: f64, hi: f64) -> f64 {
        (self.rng.gen_range(lo..hi) * 1000.0).round() / 1000.0
    }

    fn abandon(&mut self, t: Millis, out: &mut Vec<SimEvent>) -> Millis {
        let q = self.rng.gen_range(0..self.queues.len());
        let delay = self.secs(1.0, 90.0);
        self.contacts += 1;
        let (queue_value, queue_name, outbound) = self.queues[q].clone();
        out.push(SimEvent::Contact(Contact {
            acd_id: self.acd_id.clone(),
            contact_id: format!("{}-c{}", self.acd_id, self.contacts),
            queue_value,
            queue_name,
            is_outbound: outbound,
            outcome: Outcome::Abandoned,
            arrived_utc: t - (delay * 1000.0) as Millis,
            ended_utc: t,
            queue_delay_sec: delay,
            talk_sec: 0.0,
            hold_sec: 0.0,
            work_sec: 0.0,
            agent_value: None,
            agent_id: None,
            party: None,
            received_utc: None,
        }));
        let per_minute = (self.agents.len() as f64 / 10.0).max(0.5);
        t + (self.rng.gen_range(0.2..1.8) * 60_000.0 / per_minute) as Millis
    }

    fn step(&mut self, a: usize, t: Millis, out: &mut Vec<SimEvent>) -> Millis {
        let phase = self.agents[a].phase;
        let (next_phase, dt_secs) = match phase {
            Phase::LoggedOut => {
                out.push(self.state(a, t, "LOGIN", ""));
                (Phase::NotReady, self.secs(5.0, 40.0))
            }
            Phase::NotReady | Phase::Break => {
                out.push(self.state(a, t, "AVAIL", ""));
                (Phase::Ready, self.secs(5.0, 90.0))
            }
            Phase::Ready => {
                let roll: f64 = self.rng.gen();
                if roll < 0.08 {
                    let reason = if self.rng.gen_bool(0.7) { "BREAK" } else { "LUNCH" };
                    out.push(self.state(a, t, "AUX", reason));
                    (Phase::Break, self.secs(60.0, 900.0))
                } else if roll < 0.1 {
                    out.push(self.state(a, t, "LOGOUT", ""));
                    (Phase::LoggedOut, self.secs(60.0, 1200.0))
                } else {
                    let queue = self.rng.gen_range(0..self.queues.len());
                    let delay = self.secs(0.0, 45.0);
                    out.push(self.state(a, t, "ACD", ""));
                    let arrived = t - (delay * 1000.0) as Millis;
                    (Phase::Talking { queue, arrived, delay, talk_start: t }, self.secs(30.0, 420.0))
                }
            }
            Phase::Talking { queue, arrived, delay, talk_start } => {
                let hold = if self.rng.gen_bool(0.2) {
                    self.secs(5.0, 60.0).min(((t - talk_start) / 2000) as f64)
                } else {
                    0.0
                };
                let talk = (t - talk_start) as f64 / 1000.0 - hold;
                out.push(self.state(a, t, "ACW", ""));
                (Phase::Wrap { queue, arrived, delay, talk, hold, wrap_start: t }, self.secs(3.0, 60.0))
            }
            Phase::Wrap { queue, arrived, delay, talk, hold, wrap_start } => {
                let work = (t - wrap_start) as f64 / 1000.0;
                self.contacts += 1;
                let (queue_value, queue_name, outbound) = self.queues[queue].clone();
                let party = if outbound {
                    Some(if self.rng.gen_bool(0.7) { Party::Right } else { Party::Wrong })
                } else {
                    None
                };
                out.push(SimEvent::Contact(Contact {
                    acd_id: self.acd_id.clone(),
                    contact_id: format!("{}-c{}", self.acd_id, self.contacts),
                    queue_value,
                    queue_name,
                    is_outbound: outbound,
                    outcome: Outcome::Handled,
                    arrived_utc: arrived,
                    ended_utc: t,
                    queue_delay_sec: delay,
                    talk_sec: talk,
                    hold_sec: hold,
                    work_sec: work,
                    agent_value: Some(self.agents[a].login_id.clone()),
                    agent_id: None,
                    party,
                    received_utc: None,
                }));
                out.push(self.state(a, t, "AVAIL", ""));
                (Phase::Ready, self.secs(2.0, 60.0))
            }
        };
        self.agents[a].phase = next_phase;
        t + (dt_secs * 1000.0).max(1.0) as Millis
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_ordered_and_plausible() {
        let run = || {
            let mut s = Simulator::new("sim", 20, 4, 7, 1_700_000_000_000);
            let mut all = s.advance(1_700_000_000_000 + 1_800_000);
            all.extend(s.advance(1_700_000_000_000 + 3_600_000));
            all
        };
        let a = run();
        assert_eq!(a, run());
        let times: Vec<Millis> = a
            .iter()
            .map(|e| match e {
                SimEvent::State(s) => s.event_utc_time,
                SimEvent::Contact(c) => c.ended_utc,
            })
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        let contacts: Vec<&Contact> = a
            .iter()
            .filter_map(|e| match e {
                SimEvent::Contact(c) => Some(c),
                _ => None,
            })
            .collect();
        assert!(contacts.len() > 50, "{}", contacts.len());
        assert!(contacts.iter().any(|c| c.outcome == Outcome::Abandoned));
        assert!(contacts.iter().all(|c| c.ended_utc >= c.arrived_utc && c.talk_sec >= 0.0));
    }
}
