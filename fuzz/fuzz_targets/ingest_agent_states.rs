//! `POST /v1/agent-states`: wherever the borrowing fast path answers, the tree path answers the same.
#![no_main]
use acd_schemas::ingest::{agent_states_fast, agent_states_tree};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tree = agent_states_tree(data, 7);
    if let Some(fast) = agent_states_fast(data, 7) {
        assert_eq!(
            Ok(fast),
            tree.map_err(|_| ()),
            "the fast path accepted what the tree path refused or read differently"
        );
    }
});
