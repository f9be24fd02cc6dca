//! An External Call History file: refused whole or read record by record, never a panic; every
//! contact it gives ends no earlier than it arrived.
#![no_main]
use std::collections::BTreeMap;

use acd_producer::connectors::avaya_cms::ech::{check_file, contact, Reader, HEADER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let head = &data[..data.len().min(HEADER)];
    let Ok((layout, _)) = check_file(head, data.len() as u64) else { return };
    let reader = Reader::new(layout).expect("every layout has the fields");
    for rec in data[HEADER..].chunks_exact(layout.record_len) {
        if let Ok(seg) = reader.segment(rec) {
            if let Some(c) = contact(&seg, "cms", &BTreeMap::new(), 0) {
                assert!(c.ended_utc >= c.arrived_utc);
                let _ = acd_schemas::check::contact(&c);
            }
        }
    }
});
