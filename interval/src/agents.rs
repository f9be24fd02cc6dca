//! Agent states into agentSystemPerformanceReport rows and agent activity lists. Each state lasts
//! from its eventUtcTime to the agent's next state. One [`AgentBook`] serves one agent-state
//! partition. Its states are packed per agent, and those of intervals older than the hot ones
//! are in a [`ColdStore`] (see [`crate::cold`]).

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap as HashMap;

use acd_schemas::records::{AgentState, AgentStateRef};
use acd_schemas::time::{format_millis, Millis};
use acd_schemas::wfm::{ActivityJson, AgentActivityEntry, AgentPerformanceRow};

use crate::agent_map::AgentMap;
use crate::categories::{Categories, Category};
use crate::cold::{ColdAgent, ColdInterval, ColdStore, Kept, Line, MemoryCold, Timed, HOT_INTERVALS};
use crate::grid::{round_seconds, Closing, Grid};
use crate::sent::{MemorySent, Sent, SentBox, SentStore};
use crate::Admit;

/// One interval's agent rows and activity lists.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentReport {
    pub start: Millis,
    pub end: Millis,
    pub performance: Vec<AgentPerformanceRow>,
    pub activity: Vec<AgentActivityEntry>,
}

/// Event and reason codes, stored once: a state costs two integers, not two strings.
#[derive(Debug, Clone, Default)]
struct Texts {
    ids: HashMap<String, u32>,
    texts: Vec<String>,
    /// The category of each text read as an event code.
    categories: Vec<Category>,
}

impl Texts {
    fn id(&mut self, text: &str, categories: &Categories) -> u32 {
        if let Some(id) = self.ids.get(text) {
            return *id;
        }
        let id = self.texts.len() as u32;
        self.ids.insert(text.to_string(), id);
        self.texts.push(text.to_string());
        self.categories.push(categories.of(text));
        id
    }

    fn logged_out(&self, k: &Kept) -> bool {
        self.categories[k.code as usize] == Category::LoggedOut
    }
}

/// The [`ColdStore`] of a book, and the cold intervals read or changed since the book last wrote
/// them back.
struct Cold {
    store: Box<dyn ColdStore>,
    /// Cold intervals written: start -> whether any state lies inside it.
    index: BTreeMap<Millis, bool>,
    /// Read (and changed, when true) since the last write-back.
    cache: BTreeMap<Millis, (ColdInterval, bool)>,
    /// The lowest tag in force at a horizon, once read (see [`AgentBook::lowest_tag_in_force`]).
    in_force_at: Option<(Millis, Option<i64>)>,
}

impl std::fmt::Debug for Cold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cold").field("intervals", &self.index.len()).field("cached", &self.cache.len()).finish()
    }
}

impl Cold {
    fn read(&mut self, start: Millis) -> &mut (ColdInterval, bool) {
        let store = &mut self.store;
        self.cache.entry(start).or_insert_with(|| {
            let blob = store.get(start).and_then(|b| ColdInterval::from_bytes(&b)).unwrap_or_default();
            (blob, false)
        })
    }

    fn write_back(&mut self) {
        for (start, (blob, changed)) in std::mem::take(&mut self.cache) {
            if changed {
                self.index.insert(start, blob.has_states());
                self.store.put(start, blob.to_bytes());
            }
        }
    }
}

/// The agent states of one partition.
#[derive(Debug)]
pub struct AgentBook {
    grid: Grid,
    categories: Categories,
    agents: AgentMap,
    /// Each agent's hot states and the one in force where they begin, by loginId (unique
    /// within a deployment).
    timelines: HashMap<String, Line>,
    texts: Texts,
    high: Option<Millis>,
    first_interval: Option<Millis>,
    /// Which intervals [`AgentBook::close`] returned, and which late states changed since.
    closing: Closing,
    /// What was returned for each closed interval: agents with a row, agents with a list; so a
    /// recomputation that no longer produces them can overwrite them, even in a rebuilt book
    /// when the store outlives this one.
    sent: SentBox,
    /// States before this (but each agent's latest one) are in `cold` only.
    hot_from: Option<Millis>,
    cold: Cold,
}

/// The state in force at `at` (the latest at or before it) in `states`, and the range of those
/// after it and before `end`.
fn split_at(states: &[Timed], at: Millis, end: Millis) -> (Option<&Timed>, &[Timed]) {
    let lo = states.partition_point(|(t, _)| *t <= at);
    let hi = states.partition_point(|(t, _)| *t < end).max(lo);
    (lo.checked_sub(1).map(|i| &states[i]), &states[lo..hi])
}

/// One closed interval's agent rows, and the agents with an activity list, whose lists
/// [`AgentBook::activity`] builds a page at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentClose {
    pub start: Millis,
    pub end: Millis,
    pub performance: Vec<AgentPerformanceRow>,
    /// The loginIds of the agents with a list, in the order their lists go out.
    pub listed: Vec<String>,
    /// How many segments those lists hold.
    pub segments: usize,
    /// Lists returned before that this computation no longer produces: to go out empty.
    pub emptied: Vec<AgentActivityEntry>,
}

/// One agent's agentSystemPerformanceReport row for [start, end), from its states (sorted; the
/// one in force at `start` and those inside are used), when its login time rounds above 0.
fn performance_row(
    texts: &Texts,
    agents: &AgentMap,
    login_id: &str,
    states: &[Timed],
    start: Millis,
    end: Millis,
) -> Option<AgentPerformanceRow> {
    // Time per category inside [start, end): the state in force at `start`, then those that
    // begin inside.
    let (mut login, mut ready, mut not_ready) = (0i64, 0i64, 0i64);
    let (in_force, inside) = split_at(states, start, end);
    let mut iter = in_force.into_iter().chain(inside).peekable();
    while let Some((t, kept)) = iter.next() {
        let from = (*t).max(start);
        let to = iter.peek().map_or(end, |(n, _)| *n).min(end);
        let ms = to - from;
        match texts.categories[kept.code as usize] {
            Category::LoggedOut => {}
            Category::Ready => {
                login += ms;
                ready += ms;
            }
            Category::NotReady => {
                login += ms;
                not_ready += ms;
            }
            Category::Busy => login += ms,
        }
    }
    (round_seconds(login) > 0).then(|| {
        let agent = agents.agent(login_id);
        AgentPerformanceRow {
            agent_value: agent.agent_value,
            agent_id: agent.agent_id,
            ready_time: round_seconds(ready) as f64,
            not_ready_time: round_seconds(not_ready) as f64,
            login_time: round_seconds(login) as f64,
        }
    })
}

/// One agent's activity segments that end inside [start, end), each a state and the time of
/// the next; LOGGED_OUT ones are not reported.
fn segments_of<'a>(
    texts: &'a Texts,
    states: &'a [Timed],
    start: Millis,
    end: Millis,
) -> impl Iterator<Item = (&'a Timed, Millis)> + 'a {
    let (lo, hi) = (states.partition_point(|(t, _)| *t < start), states.partition_point(|(t, _)| *t < end));
    let from = lo.max(1);
    (from..hi.max(from)).map(|i| (&states[i - 1], states[i].0)).filter(|(s, _)| !texts.logged_out(&s.1))
}

impl AgentBook {
    /// An empty book.
    pub fn new(grid: Grid, categories: Categories, agents: AgentMap) -> AgentBook {
        AgentBook::with_sent_store(grid, categories, agents, Box::new(MemorySent::default()))
    }

    /// An empty book that keeps the keys of the rows it returns in `sent` (see [`crate::sent`]).
    pub fn with_sent_store(
        grid: Grid,
        categories: Categories,
        agents: AgentMap,
        sent: Box<dyn SentStore>,
    ) -> AgentBook {
        AgentBook::with_stores(grid, categories, agents, sent, Box::new(MemoryCold::default()))
    }

    /// An empty book that also keeps the states of cold intervals in `cold` (see [`crate::cold`]).
    pub fn with_stores(
        grid: Grid,
        categories: Categories,
        agents: AgentMap,
        sent: Box<dyn SentStore>,
        cold: Box<dyn ColdStore>,
    ) -> AgentBook {
        AgentBook {
            grid,
            categories,
            agents,
            timelines: HashMap::default(),
            texts: Texts::default(),
            high: None,
            first_interval: None,
            closing: Closing::default(),
            sent: SentBox(sent),
            hot_from: None,
            cold: Cold { store: cold, index: BTreeMap::new(), cache: BTreeMap::new(), in_force_at: None },
        }
    }

    /// The open intervals (not closed yet), first and last start.
    pub fn open_intervals(&self) -> Option<(Millis, Millis)> {
        self.closing.open(self.first_interval, self.high, &self.grid)
    }

    /// Empty intervals passed over by a jump in event time beyond the lateness window.
    pub fn passed_over(&self) -> u64 {
        self.closing.passed_over()
    }

    /// Adds one state; a late one marks every closed interval from its time to the agent's next
    /// state for recomputation.
    pub fn add(&mut self, s: &AgentState) -> Admit {
        self.add_ref(&s.as_ref(), 0)
    }

    /// [`AgentBook::add`] for a state read in place, with a tag of the caller's (see
    /// [`AgentBook::lowest_tag_in_force`]).
    pub fn add_ref(&mut self, s: &AgentStateRef<'_>, tag: i64) -> Admit {
        let grid = self.grid;
        let t = s.event_utc_time;
        let start = grid.start_of(t);
        if !self.timelines.contains_key(s.login_id) {
            self.timelines.insert(s.login_id.to_string(), Line::default());
        }
        let next = if self.hot_from.is_some_and(|h| start < h) {
            if grid.too_late(start, self.high) {
                return Admit::TooLate;
            }
            match self.add_cold(s, tag, start) {
                Some(next) => next,
                None => return Admit::Duplicate,
            }
        } else {
            let line = self.timelines.get_mut(s.login_id).expect("timeline");
            if line.contains(t) {
                return Admit::Duplicate;
            }
            if grid.too_late(start, self.high) {
                return Admit::TooLate;
            }
            let code = self.texts.id(s.event_code, &self.categories);
            let reason = self.texts.id(s.reason_code, &self.categories);
            line.insert((t, Kept { code, reason, tag }));
            line.next_after(t)
        };
        self.high = Some(self.high.map_or(t, |h| h.max(t)));
        self.first_interval = Some(self.first_interval.map_or(start, |f| f.min(start)));
        if let Some(until) = self.closing.closed_until().filter(|u| start < *u) {
            let last = next.map_or(until - grid.length, |n| grid.start_of(n).min(until - grid.length));
            let mut i = start;
            while i <= last {
                self.closing.reopen(i);
                i += grid.length;
            }
        }
        self.cool();
        Admit::Counted
    }

    /// Adds a state of a cold interval: to that interval, as the state in force to the cold
    /// intervals up to the agent's next state, and to memory when it is the agent's latest
    /// state before the hot intervals. Returns the time of the agent's next state, or `None`
    /// for a duplicate.
    fn add_cold(&mut self, s: &AgentStateRef<'_>, tag: i64, start: Millis) -> Option<Option<Millis>> {
        let hot_from = self.hot_from.expect("cold intervals");
        let t = s.event_utc_time;
        let code = self.texts.id(s.event_code, &self.categories);
        let reason = self.texts.id(s.reason_code, &self.categories);
        let state = (t, Kept { code, reason, tag });
        let logged_out = self.texts.logged_out(&state.1);
        let (blob, changed) = self.cold.read(start);
        let agent = blob.agents.entry(s.login_id.to_string()).or_default();
        let pos = match agent.states.binary_search_by_key(&t, |(x, _)| *x) {
            Ok(_) => return None,
            Err(pos) => pos,
        };
        agent.states.insert(pos, state);
        let mut next = agent.states.get(pos + 1).map(|(x, _)| *x);
        *changed = true;
        self.cold.index.insert(start, true);
        let mut j = start + self.grid.length;
        while next.is_none() && j < hot_from {
            let (blob, changed) = self.cold.read(j);
            let agent = blob.agents.entry(s.login_id.to_string()).or_default();
            agent.in_force = (!logged_out).then_some(state);
            next = agent.states.first().map(|(x, _)| *x);
            if agent.is_empty() {
                blob.agents.remove(s.login_id);
            }
            *changed = true;
            self.cold.index.entry(j).or_insert(false);
            j += self.grid.length;
        }
        if next.is_none() {
            // The agent's latest state before the hot intervals: it replaces the older one kept.
            let line = self.timelines.get_mut(s.login_id).expect("timeline");
            let mut states = line.unpack();
            let before = states.partition_point(|(x, _)| *x < hot_from);
            match before.checked_sub(1).map(|i| states[i].0) {
                // Kept in a cold interval too, where it would have been found.
                Some(old) if old > t => next = Some(old),
                old => {
                    if old.is_some() {
                        states.remove(before - 1);
                    }
                    let at = states.partition_point(|(x, _)| *x < t);
                    states.insert(at, state);
                    next = states.get(at + 1).map(|(x, _)| *x);
                    *line = Line::pack(&states);
                }
            }
        }
        Some(next)
    }

    /// Moves the intervals that left the hot range to the cold store: each one with every
    /// agent's state in force at its start and the states inside it. Memory keeps each agent's
    /// latest state before the hot range.
    fn cool(&mut self) {
        let (Some(high), Some(first)) = (self.high, self.first_interval) else { return };
        let grid = self.grid;
        let target = grid.start_of(high - grid.grace) - HOT_INTERVALS * grid.length;
        let from = self.hot_from.unwrap_or(first);
        if target <= from {
            return;
        }
        self.cold.write_back();
        // Intervals beyond the lateness window are only written when a state lies inside them
        // (a jump in event time is not walked interval by interval).
        let floor = grid.lateness_floor(self.high).max(from).min(target);
        let mut starts: BTreeSet<Millis> = (floor..target).step_by(grid.length as usize).collect();
        if from < floor {
            for line in self.timelines.values() {
                if line.first().is_some_and(|f| f < floor) {
                    let states = line.unpack();
                    let (lo, hi) =
                        (states.partition_point(|(t, _)| *t < from), states.partition_point(|(t, _)| *t < floor));
                    starts.extend(states[lo..hi].iter().map(|(t, _)| grid.start_of(*t)));
                }
            }
        }
        let mut blobs: Vec<(Millis, Vec<u8>, bool)> = starts.into_iter().map(|s| (s, Vec::new(), false)).collect();
        for (login, line) in self.timelines.iter_mut() {
            if line.first().is_none_or(|f| f >= target) {
                continue;
            }
            let states = line.unpack();
            for (i, bytes, busy) in blobs.iter_mut() {
                let lo = states.partition_point(|(t, _)| *t < *i);
                let hi = states.partition_point(|(t, _)| *t < *i + grid.length);
                let in_force = lo.checked_sub(1).map(|k| &states[k]).filter(|(_, k)| !self.texts.logged_out(k));
                if in_force.is_some() || lo < hi {
                    ColdInterval::put_agent(bytes, login, in_force, &states[lo..hi]);
                    *busy |= lo < hi;
                }
            }
            let keep = states.partition_point(|(t, _)| *t < target);
            if keep > 1 {
                *line = Line::pack(&states[keep - 1..]);
            }
        }
        for (i, bytes, busy) in blobs {
            if !bytes.is_empty() {
                self.cold.index.insert(i, busy);
                self.cold.store.put(i, bytes);
            }
        }
        self.hot_from = Some(target);
    }

    /// The intervals that closed since the last call (in order), then those re-opened by late
    /// states, each whole.
    pub fn close(&mut self, idle_for: Millis, now: Millis) -> Vec<AgentReport> {
        let closed = self.close_paged(idle_for, now);
        closed
            .into_iter()
            .map(|c| {
                let (mut activity, _) = self.activity(c.start, &c.listed, usize::MAX);
                activity.extend(c.emptied);
                AgentReport { start: c.start, end: c.end, performance: c.performance, activity }
            })
            .collect()
    }

    /// [`AgentBook::close`] without the activity lists: each closed interval's rows and the
    /// agents with a list, whose lists [`AgentBook::activity`] then builds a page at a time. A
    /// whole interval's segments (millions at a large center) are never in memory at once.
    pub fn close_paged(&mut self, idle_for: Millis, now: Millis) -> Vec<AgentClose> {
        let open_from = self.grid.open_from(self.high, idle_for, now);
        let Some(first) = self.first_interval else { return Vec::new() };
        let (grid, timelines, cold) = (self.grid, &self.timelines, &self.cold.index);
        let due = self.closing.due(first, open_from, grid.length, grid.lateness_floor(self.high), |from, to| {
            let mut busy: BTreeSet<Millis> = cold.range(from..to).filter(|(_, busy)| **busy).map(|(s, _)| *s).collect();
            for line in timelines.values() {
                let states = line.unpack();
                let (lo, hi) = (states.partition_point(|(t, _)| *t < from), states.partition_point(|(t, _)| *t < to));
                busy.extend(states[lo..hi].iter().map(|(t, _)| grid.start_of(*t)));
            }
            busy
        });
        let out = due.into_iter().filter_map(|s| self.rows(s)).collect();
        self.cold.write_back();
        self.prune();
        out
    }

    /// The activity lists of an interval that [`AgentBook::close_paged`] returned, for the
    /// agents of `listed` (loginIds) taken in order until the lists hold `max_segments`
    /// segments or more (at least one agent): the lists and how many agents were taken.
    pub fn activity(
        &mut self,
        start: Millis,
        listed: &[String],
        max_segments: usize,
    ) -> (Vec<AgentActivityEntry>, usize) {
        let end = self.grid.end_of(start);
        let (mut out, mut taken, mut segments) = (Vec::new(), 0, 0);
        let (texts, agents, timelines) = (&self.texts, &self.agents, &self.timelines);
        let cold = self.hot_from.is_some_and(|h| start < h).then(|| &self.cold.read(start).0);
        for login in listed {
            let states = match cold {
                Some(blob) => blob.agents.get(login).map(ColdAgent::timeline),
                None => timelines.get(login).map(Line::unpack),
            }
            .unwrap_or_default();
            let list: Vec<ActivityJson> = segments_of(texts, &states, start, end)
                .map(|((t, kept), next)| ActivityJson {
                    state: texts.texts[kept.code as usize].clone(),
                    start_time: format_millis(*t),
                    duration: next - t,
                    reason: texts.texts[kept.reason as usize].clone(),
                })
                .collect();
            taken += 1;
            segments += list.len();
            if !list.is_empty() {
                let agent = agents.agent(login);
                out.push(AgentActivityEntry {
                    agent_value: agent.agent_value,
                    agent_id: agent.agent_id,
                    user_name: agent.user_name,
                    agent_activity: list,
                });
            }
            if segments >= max_segments {
                break;
            }
        }
        (out, taken)
    }

    /// One closed interval's performance rows and the agents with an activity list; records
    /// which agents those are, so that a later computation that no longer produces one of them
    /// overwrites it.
    fn rows(&mut self, start: Millis) -> Option<AgentClose> {
        let end = self.grid.end_of(start);
        let (mut performance, mut listed, mut segments) = (Vec::new(), Vec::new(), 0);
        let (texts, agents) = (&self.texts, &self.agents);
        let mut add = |login: &str, states: &[Timed]| {
            performance.extend(performance_row(texts, agents, login, states, start, end));
            let n = segments_of(texts, states, start, end).count();
            if n > 0 {
                listed.push(login.to_string());
                segments += n;
            }
        };
        if self.hot_from.is_some_and(|h| start < h) {
            for (login, agent) in &self.cold.read(start).0.agents {
                add(login, &agent.timeline());
            }
        } else {
            let mut lines: Vec<(&String, &Line)> = self.timelines.iter().collect();
            lines.sort_by_key(|(login, _)| *login);
            for (login, line) in lines {
                add(login, &line.unpack());
            }
        }
        // Rows and lists returned before (by this book or, through the store, by an earlier
        // one) that this computation no longer produces: overwrite them.
        let before = self.sent.0.get(start);
        let produced: BTreeSet<String> = performance.iter().map(|r| r.agent_value.clone()).collect();
        for gone in before.agents.iter().filter(|a| !produced.contains(*a)) {
            performance.push(AgentPerformanceRow { agent_value: gone.clone(), ..AgentPerformanceRow::default() });
        }
        let lists: BTreeSet<String> = listed.iter().map(|login| self.agents.agent(login).agent_value).collect();
        let emptied: Vec<AgentActivityEntry> = before
            .lists
            .iter()
            .filter(|a| !lists.contains(*a))
            .map(|gone| AgentActivityEntry {
                agent_value: gone.clone(),
                agent_id: String::new(),
                user_name: String::new(),
                agent_activity: Vec::new(),
            })
            .collect();
        let now = Sent {
            agents: performance.iter().map(|r| r.agent_value.clone()).collect(),
            lists: lists.into_iter().chain(emptied.iter().map(|e| e.agent_value.clone())).collect(),
            ..Sent::default()
        };
        if now != before {
            self.sent.0.put(start, &now);
        }
        if performance.is_empty() && listed.is_empty() && emptied.is_empty() {
            return None;
        }
        Some(AgentClose { start, end, performance, listed, segments, emptied })
    }

    /// The lowest tag among the states in force at `horizon` (each agent's latest state before
    /// it), logged-out ones left out: with the tags of the states from `horizon` on, what a
    /// rebuild of the intervals from `horizon` must read again.
    pub fn lowest_tag_in_force(&mut self, horizon: Millis) -> Option<i64> {
        if self.hot_from.is_some_and(|h| horizon < h) {
            // A cold interval's states in force at its start never change: a state before it
            // is too late by the time it is cold.
            if let Some((at, tag)) = self.cold.in_force_at {
                if at == horizon {
                    return tag;
                }
            }
            let tag = self.cold.read(horizon).0.agents.values().filter_map(|a| a.in_force).map(|(_, k)| k.tag).min();
            if !self.cold.cache.get(&horizon).is_some_and(|(_, changed)| *changed) {
                self.cold.cache.remove(&horizon);
            }
            self.cold.in_force_at = Some((horizon, tag));
            return tag;
        }
        self.timelines
            .values()
            .filter(|line| line.first().is_some_and(|f| f < horizon))
            .filter_map(|line| {
                let states = line.unpack();
                let before = states.partition_point(|(t, _)| *t < horizon);
                before.checked_sub(1).map(|i| states[i].1)
            })
            .filter(|kept| !self.texts.logged_out(kept))
            .map(|kept| kept.tag)
            .min()
    }

    /// How many states are in memory (the hot intervals and each agent's latest state before
    /// them).
    pub fn states_in_memory(&self) -> usize {
        self.timelines.values().map(Line::len).sum()
    }

    /// Forgets cold intervals and sent keys that can no longer change a delivered interval.
    fn prune(&mut self) {
        let Some(high) = self.high else { return };
        let horizon = self.grid.start_of(high - self.grid.max_lateness) - self.grid.length;
        let horizon = horizon.min(self.closing.closed_until().unwrap_or(Millis::MIN));
        if self.cold.index.first_key_value().is_some_and(|(s, _)| *s < horizon) {
            self.cold.index = self.cold.index.split_off(&horizon);
            self.cold.store.forget_before(horizon);
        }
        self.sent.0.forget_before(horizon);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_schemas::time::parse_rfc3339;

    fn t(s: &str) -> Millis {
        parse_rfc3339(&format!("2024-04-17T{s}Z")).unwrap()
    }

    fn st(login: &str, at: &str, code: &str) -> AgentState {
        AgentState {
            acd_id: "east".into(),
            login_id: login.into(),
            event_code: code.into(),
            reason_code: if code == "AUX" { "BREAK".into() } else { String::new() },
            event_utc_time: t(at),
            received_utc: None,
        }
    }

    fn book() -> AgentBook {
        AgentBook::new(Grid::minutes(15), Categories::default(), AgentMap::default())
    }

    fn perf(out: &[AgentReport], start: &str, agent: &str) -> Option<AgentPerformanceRow> {
        out.iter().filter(|r| r.start == t(start)).flat_map(|r| r.performance.clone()).find(|r| r.agent_value == agent)
    }

    #[test]
    fn a_state_spanning_three_intervals_is_split_by_the_clock() {
        let mut b = book();
        b.add(&st("a", "10:10:00", "AVAIL"));
        b.add(&st("a", "10:40:00", "AUX"));
        b.add(&st("a", "10:50:00", "LOGOUT"));
        b.add(&st("z", "11:30:00", "LOGIN")); // moves the watermark past 11:00 + grace
        let out = b.close(0, 0);
        let p10 = perf(&out, "10:00:00", "a").unwrap();
        assert_eq!((p10.login_time, p10.ready_time, p10.not_ready_time), (300.0, 300.0, 0.0));
        let p15 = perf(&out, "10:15:00", "a").unwrap();
        assert_eq!((p15.login_time, p15.ready_time), (900.0, 900.0));
        let p30 = perf(&out, "10:30:00", "a").unwrap();
        assert_eq!((p30.login_time, p30.ready_time, p30.not_ready_time), (900.0, 600.0, 300.0));
        let p45 = perf(&out, "10:45:00", "a").unwrap();
        assert_eq!((p45.login_time, p45.not_ready_time), (300.0, 300.0));
        assert!(perf(&out, "11:00:00", "a").is_none(), "logged out: no row");
    }

    #[test]
    fn a_jump_in_event_time_beyond_the_lateness_window_is_not_walked_interval_by_interval() {
        // An agent whose first state carries the epoch (an ACD clock error), then real traffic
        // 54 years later: the decades between are empty and beyond max_lateness, so only the
        // intervals with a state are computed.
        let mut b = book();
        let mut epoch = st("a", "10:00:00", "AVAIL");
        epoch.event_utc_time = 1;
        b.add(&epoch);
        b.add(&st("a", "10:05:00", "AUX"));
        b.add(&st("a", "10:20:00", "AVAIL"));
        b.add(&st("z", "11:30:00", "LOGIN"));
        let out = b.close(0, 0);
        let starts: Vec<Millis> = out.iter().map(|r| r.start).collect();
        // The epoch's interval, then the lateness window (one interval before the start of
        // high - 48 h on), walked as usual: the state in force gives rows there.
        let floor = t("11:30:00") - 48 * 3_600_000 - 15 * 60_000;
        assert_eq!(&starts[..2], &[0, floor]);
        assert_eq!(b.passed_over(), ((floor - 15 * 60_000) / (15 * 60_000)) as u64);
        assert_eq!(perf(&out, "10:00:00", "a").unwrap().ready_time, 300.0);
        // The epoch state's segment is reported whole where it ended.
        let ten = out.iter().find(|r| r.start == t("10:00:00")).unwrap();
        let seg = &ten.activity[0].agent_activity[0];
        assert_eq!((seg.state.as_str(), seg.start_time.as_str()), ("AVAIL", "1970-01-01T00:00:00.001Z"));
        let p15 = perf(&out, "10:15:00", "a").unwrap();
        assert_eq!((p15.login_time, p15.ready_time, p15.not_ready_time), (900.0, 600.0, 300.0));
    }

    #[test]
    fn seconds_are_rounded_half_away_from_zero_after_summing_milliseconds() {
        let mut b = book();
        b.add(&st("a", "10:00:00", "AVAIL"));
        let mut busy = st("a", "10:00:00", "ACD");
        busy.event_utc_time += 1_500; // 1.5 s ready
        b.add(&busy);
        let mut out = st("a", "10:00:00", "LOGOUT");
        out.event_utc_time += 3_000; // 1.5 s busy
        b.add(&out);
        b.add(&st("z", "10:30:00", "LOGIN"));
        let p = perf(&b.close(0, 0), "10:00:00", "a").unwrap();
        assert_eq!((p.login_time, p.ready_time), (3.0, 2.0), "3000 ms -> 3 s; 1500 ms -> 2 s");
    }

    #[test]
    fn activity_segments_are_whole_in_the_interval_where_they_end() {
        let mut b = book();
        b.add(&st("a", "10:10:00", "ACD"));
        b.add(&st("a", "10:20:00", "ACW"));
        b.add(&st("a", "10:21:00", "LOGOUT"));
        b.add(&st("a", "10:50:00", "LOGIN"));
        b.add(&st("z", "11:30:00", "LOGIN"));
        let out = b.close(0, 0);
        let lists: Vec<(Millis, Vec<ActivityJson>)> = out
            .iter()
            .flat_map(|r| {
                r.activity.iter().filter(|e| e.agent_value == "a").map(|e| (r.start, e.agent_activity.clone()))
            })
            .collect();
        assert_eq!(lists.len(), 1, "{lists:?}");
        let (start, segs) = &lists[0];
        assert_eq!(*start, t("10:15:00"));
        assert_eq!(segs.len(), 2, "the LOGOUT segment is not reported");
        assert_eq!(
            (segs[0].state.as_str(), segs[0].start_time.as_str(), segs[0].duration),
            ("ACD", "2024-04-17T10:10:00.000Z", 600_000)
        );
        assert_eq!((segs[1].state.as_str(), segs[1].duration), ("ACW", 60_000));
    }

    #[test]
    fn a_late_state_recomputes_and_overwrites_rows_no_longer_produced() {
        let mut b = book();
        b.add(&st("a", "10:05:00", "AVAIL"));
        b.add(&st("z", "10:40:00", "LOGIN"));
        let first = b.close(0, 0);
        assert_eq!(perf(&first, "10:15:00", "a").unwrap().login_time, 900.0);
        // A LOGOUT at 10:06 arrives late: 10:00 and 10:15 change; 10:15's row must be zeroed.
        assert_eq!(b.add(&st("a", "10:06:00", "LOGOUT")), Admit::Counted);
        let again = b.close(0, 0);
        let starts: BTreeSet<Millis> = again.iter().map(|r| r.start).collect();
        assert_eq!(starts, BTreeSet::from([t("10:00:00"), t("10:15:00")]));
        assert_eq!(perf(&again, "10:00:00", "a").unwrap().login_time, 60.0);
        let zero = perf(&again, "10:15:00", "a").unwrap();
        assert_eq!((zero.login_time, zero.ready_time, zero.not_ready_time), (0.0, 0.0, 0.0));
        // The 10:00 activity now has the AVAIL segment 10:05-10:06.
        let acts: Vec<_> = again.iter().filter(|r| r.start == t("10:00:00")).flat_map(|r| r.activity.clone()).collect();
        assert_eq!(acts[0].agent_activity[0].duration, 60_000);
        assert_eq!(b.add(&st("a", "10:06:00", "LOGOUT")), Admit::Duplicate);
    }

    #[test]
    fn a_rebuilt_book_overwrites_a_row_an_earlier_book_delivered() {
        // The first book closes 10:15 early (the wall-clock rule, its last states not read yet):
        // agent a is logged in for all of it.
        let store = crate::sent::SharedSent::default();
        let new_book = || {
            AgentBook::with_sent_store(
                Grid::minutes(15),
                Categories::default(),
                AgentMap::default(),
                Box::new(store.clone()),
            )
        };
        let mut first = new_book();
        first.add(&st("a", "10:05:00", "AVAIL"));
        let early = first.close(60_000, t("10:32:30"));
        assert_eq!(perf(&early, "10:15:00", "a").unwrap().login_time, 900.0);
        drop(first);
        // Rebuilt from Kafka with the complete input: a logged out at 10:13, so 10:15 has no row
        // for a in the new figures; the store tells the new book the WFM holds one.
        let mut rebuilt = new_book();
        rebuilt.add(&st("a", "10:05:00", "AVAIL"));
        rebuilt.add(&st("a", "10:13:00", "LOGOUT"));
        let again = rebuilt.close(60_000, t("10:32:30"));
        let zero = perf(&again, "10:15:00", "a").expect("a zero row for 10:15");
        assert_eq!((zero.login_time, zero.ready_time, zero.not_ready_time), (0.0, 0.0, 0.0));
        assert_eq!(perf(&again, "10:00:00", "a").unwrap().login_time, 480.0);
        // Without the store the rebuilt book would not know: the row would stay at 900.
        let mut forgetful = book();
        forgetful.add(&st("a", "10:05:00", "AVAIL"));
        forgetful.add(&st("a", "10:13:00", "LOGOUT"));
        assert!(perf(&forgetful.close(60_000, t("10:32:30")), "10:15:00", "a").is_none());
    }

    #[test]
    fn a_late_state_that_removes_an_activity_list_sends_it_empty() {
        let mut b = book();
        b.add(&st("a", "10:00:00", "ACD"));
        b.add(&st("a", "10:20:00", "AVAIL"));
        b.add(&st("z", "10:50:00", "LOGIN"));
        let first = b.close(0, 0);
        assert!(first.iter().any(|r| r.start == t("10:15:00") && !r.activity.is_empty()));
        // A late LOGOUT at 10:10: ACD now ends at 10:10 (reported in 10:00); the 10:10-10:20
        // LOGOUT segment is not reported, so 10:15's list for a becomes empty.
        b.add(&st("a", "10:10:00", "LOGOUT"));
        let again = b.close(0, 0);
        let at15: Vec<_> = again.iter().filter(|r| r.start == t("10:15:00")).flat_map(|r| r.activity.clone()).collect();
        assert_eq!(at15.len(), 1);
        assert!(at15[0].agent_activity.is_empty());
    }

    #[test]
    fn the_agent_map_names_agents() {
        let map = AgentMap::parse("loginId,agentValue,agentId,userName\na,967385,id-1,ann@x\n").unwrap();
        let mut b = AgentBook::new(Grid::minutes(15), Categories::default(), map);
        b.add(&st("a", "10:00:00", "AVAIL"));
        b.add(&st("a", "10:05:00", "LOGOUT"));
        b.add(&st("z", "10:30:00", "LOGIN"));
        let out = b.close(0, 0);
        let p = perf(&out, "10:00:00", "967385").unwrap();
        assert_eq!(p.agent_id, "id-1");
        assert_eq!(out[0].activity[0].user_name, "ann@x");
    }
    /// What the WFM holds after upserting every report, zero rows and empty lists left out.
    type Upserted = (BTreeMap<(Millis, String), (f64, f64, f64)>, BTreeMap<(Millis, String), Vec<ActivityJson>>);

    fn upsert(held: &mut Upserted, reports: &[AgentReport]) {
        for r in reports {
            for p in &r.performance {
                held.0.insert((r.start, p.agent_value.clone()), (p.login_time, p.ready_time, p.not_ready_time));
            }
            for a in &r.activity {
                held.1.insert((r.start, a.agent_value.clone()), a.agent_activity.clone());
            }
        }
        held.0.retain(|_, v| *v != (0.0, 0.0, 0.0));
        held.1.retain(|_, v| !v.is_empty());
    }

    #[test]
    fn states_hours_late_recompute_cold_intervals_to_the_figures_of_complete_input() {
        for seed in [0x2545_f491_4f6c_dd1du64, 7, 0x9e37_79b9_7f4a_7c15, 1_234_567, 42] {
            late_states_against_complete_input(seed);
        }
    }

    fn late_states_against_complete_input(mut seed: u64) {
        // Six agents over five hours; one state in five arrives up to three hours late, so late
        // states land in intervals long moved to the cold store.
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let codes = ["AVAIL", "ACD", "ACW", "AUX", "LOGOUT", "LOGIN"];
        let base = t("08:00:00");
        let mut states = Vec::new();
        for a in 0..6 {
            let mut at = base + rnd(600_000) as Millis;
            while at < base + 5 * 3_600_000 {
                let mut s = st(&format!("agent{a}"), "08:00:00", codes[rnd(codes.len() as u64) as usize]);
                s.event_utc_time = at;
                states.push(s);
                at += 1_000 + rnd(400_000) as Millis;
            }
        }
        states.sort_by_key(|s| s.event_utc_time);
        // Arrival order: by time, the late ones by time plus their delay.
        let mut arrivals: Vec<(Millis, AgentState)> = states
            .iter()
            .map(|s| {
                let delay = if rnd(5) == 0 { rnd(3 * 3_600_000) as Millis } else { 0 };
                (s.event_utc_time + delay, s.clone())
            })
            .collect();
        arrivals.sort_by_key(|(at, _)| *at);
        let mut live = book();
        let mut held = Upserted::default();
        // The same arrivals into a book whose lists are built a few segments at a time.
        let mut paged = book();
        let mut pages = 0;
        let mut close_both = |live: &mut AgentBook, paged: &mut AgentBook| {
            let whole = live.close(0, 0);
            let mut by_pages = Vec::new();
            for c in paged.close_paged(0, 0) {
                let mut activity = Vec::new();
                let mut rest = &c.listed[..];
                while !rest.is_empty() {
                    let (lists, taken) = paged.activity(c.start, rest, 3);
                    // Agents are taken until the budget is reached, and not one more.
                    let n: usize = lists.iter().map(|l| l.agent_activity.len()).sum();
                    assert!(taken > 0 && n - lists.last().map_or(0, |l| l.agent_activity.len()) < 3);
                    activity.extend(lists);
                    rest = &rest[taken..];
                    pages += 1;
                }
                assert_eq!(activity.iter().map(|l| l.agent_activity.len()).sum::<usize>(), c.segments);
                activity.extend(c.emptied);
                by_pages.push(AgentReport { start: c.start, end: c.end, performance: c.performance, activity });
            }
            assert_eq!(by_pages, whole, "lists built a page at a time are the lists built whole");
            whole
        };
        for (i, (_, s)) in arrivals.iter().enumerate() {
            assert_eq!(live.add(s), Admit::Counted);
            paged.add(s);
            if i % 7 == 0 {
                assert_eq!(live.add(s), Admit::Duplicate, "a duplicate of a state in any interval");
                upsert(&mut held, &close_both(&mut live, &mut paged));
            }
        }
        let mut last = st("zz", "13:40:00", "LOGIN");
        last.event_utc_time = base + 6 * 3_600_000;
        live.add(&last);
        paged.add(&last);
        upsert(&mut held, &close_both(&mut live, &mut paged));
        assert!(pages > 100, "{pages} pages");
        assert!(live.hot_from.is_some_and(|h| h > base + 4 * 3_600_000), "most intervals are cold");
        assert!(live.states_in_memory() < states.len() / 4, "{} in memory", live.states_in_memory());
        assert!(live.cold.index.len() >= 15, "{} cold intervals", live.cold.index.len());
        // The same states in time order, each interval computed once, from memory, when the
        // watermark passes it.
        let mut whole = book();
        let mut expected = Upserted::default();
        for s in states.iter().chain([&last]) {
            whole.add(s);
            upsert(&mut expected, &whole.close(0, 0));
        }
        assert!(expected.0.len() > 100);
        assert_eq!(held.0, expected.0);
        assert_eq!(held.1, expected.1);
        // The states in force at a cold horizon are those of complete input.
        let horizon = base + 3_600_000;
        assert_eq!(live.lowest_tag_in_force(horizon).is_some(), whole.lowest_tag_in_force(horizon).is_some());
    }
}
