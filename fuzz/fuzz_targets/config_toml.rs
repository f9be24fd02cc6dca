//! The configuration file: a configuration or an error that names a key, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = acd_core::config::Config::from_toml_str(text, Vec::<(String, String)>::new());
});
