//! A CMS real-time line, in both layouts: never a panic; a row's code is what its mode says.
#![no_main]
use acd_producer::connectors::avaya_cms::rt::{parse_line, Layout, Line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let named = Layout::new(
        "|",
        &["LOGID", "EXTENSION", "WORKMODE", "DIRECTION", "AUXREASON", "AGTIME", "WORKSKILL"].map(String::from),
        "END_OF_SNAPSHOT",
    );
    let numeric = Layout::new("whitespace", &["LOGID", "WORKMODE"].map(String::from), "END");
    for layout in [&named, &numeric] {
        if let Ok(Line::Row(r)) = parse_line(layout, text) {
            assert!(!r.logid.is_empty() && r.logid.len() <= 256);
            assert!(r.reason.is_empty() || (50..60).contains(&r.code));
        }
    }
});
