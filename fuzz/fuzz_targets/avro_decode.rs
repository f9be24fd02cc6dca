//! Kafka record values in single-object and Confluent framing: a record or an error, never a
//! panic; what decodes re-encodes and decodes to the same record.
#![no_main]
use acd_schemas::codec::{Codec, Framing};
use acd_schemas::records::{AgentState, Contact};
use acd_schemas::Stream;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn codecs() -> &'static (Codec, Codec) {
    static C: OnceLock<(Codec, Codec)> = OnceLock::new();
    C.get_or_init(|| {
        let confluent = Codec::new(Framing::Confluent(Stream::ALL.iter().map(|s| (*s, 1 + *s as u32)).collect()));
        for s in Stream::ALL {
            confluent.learn_schema_id(1 + s as u32, s.schema_text()).expect("bundled schema");
        }
        (Codec::default(), confluent)
    })
}

fuzz_target!(|data: &[u8]| {
    let (single, confluent) = codecs();
    for codec in [single, confluent] {
        if let Ok(s) = codec.decode_agent_state(data) {
            let again = codec.decode_agent_state(&codec.encode_agent_state(&s)).expect("re-decodes");
            assert_eq!(s, again);
        }
        if let Ok(c) = codec.decode_contact(data) {
            let bytes = codec.encode(Stream::Contact, &c).expect("re-encodes");
            let again: Contact = codec.decode(Stream::Contact, &bytes).expect("re-decodes");
            assert!(
                again == c
                    || c.queue_delay_sec.is_nan()
                    || c.talk_sec.is_nan()
                    || c.hold_sec.is_nan()
                    || c.work_sec.is_nan()
            );
        }
        for stream in Stream::ALL {
            let _ = codec.decode::<serde_json::Value>(stream, data);
        }
        let _: Result<AgentState, _> = codec.decode(Stream::AgentState, data);
    }
});
