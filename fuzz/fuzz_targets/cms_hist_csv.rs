//! An hsplit or hagent export in a zone with DST: rows or a reason, never a panic.
#![no_main]
use std::collections::BTreeMap;

use acd_interval::agent_map::AgentMap;
use acd_producer::connectors::avaya_cms::hist::{read, Context, Table};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let names = BTreeMap::new();
    let agents = AgentMap::default();
    for (minutes, perf) in [(15, false), (30, true)] {
        let ctx = Context {
            zone: chrono_tz::America::New_York,
            queue_names: &names,
            agents: &agents,
            formula: acd_interval::sla::Formula::HandledOverReceived,
            agent_performance: perf,
            minutes,
        };
        for table in [Table::Split, Table::Agent] {
            if let Ok(rows) = read(table, text, &ctx) {
                for r in rows {
                    assert!(r.end_date > r.start_date);
                }
            }
        }
    }
});
