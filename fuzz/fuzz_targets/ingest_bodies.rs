//! The other ingest bodies (contacts, interval reports, agent activity): a list or errors with
//! field paths, never a panic; and wherever the contacts' borrowing fast path answers, the tree
//! path answers the same.
#![no_main]
use acd_schemas::ingest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tree = ingest::contacts_tree(data, 7);
    if let Err(errors) = &tree {
        assert!(!errors.is_empty());
    }
    if let Some(fast) = ingest::contacts_fast(data, 7) {
        assert_eq!(Ok(fast), tree.map_err(|_| ()), "the fast path accepted what the tree path refused or read differently");
    }
    for minutes in [15, 30] {
        let _ = ingest::interval_report(data, minutes);
        let _ = ingest::agent_activity(data, minutes);
    }
});
