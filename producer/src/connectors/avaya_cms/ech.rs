//! External Call History (`ech_dir`): CMS's binary call-segment files (`chr*`).
//!
//! A file is an 8-byte header (VERSION, SEQUENCE_NUMBER: u32 little-endian) and fixed-length
//! records laid out as [`layout`](super::layout) says for that version. [`check_file`] accepts
//! or rejects a whole file from its header and length before anything of it is published;
//! [`Reader::segment`] reads one record, [`contact`] maps a segment to a contract contact (one
//! per answered or abandoned segment with a split). All three are pure.

use std::collections::BTreeMap;

use acd_schemas::records::{Contact, Outcome};
use acd_schemas::time::Millis;

use super::layout::{self, Field, Layout, Ty};

/// The connector's name on `topics.connector_status`.
pub const CONNECTOR: &str = "avaya_cms.ech";

/// The header's length.
pub const HEADER: usize = 8;

/// True for the names CMS gives its files (`chr0042`, `chr0042.x`).
pub fn is_ech_file(name: &str) -> bool {
    name.starts_with("chr") && !name.ends_with(".reason")
}

/// The header's (VERSION, SEQUENCE_NUMBER).
pub fn header(bytes: &[u8]) -> Option<(u32, u32)> {
    let v = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    let s = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    Some((v, s))
}

/// The layout of a file of `len` bytes whose header is `head`, or why the file is refused.
pub fn check_file(head: &[u8], len: u64) -> Result<(&'static Layout, u32), String> {
    let Some((version, sequence)) = header(head).filter(|_| len >= HEADER as u64) else {
        return Err(format!("{len} bytes: shorter than the {HEADER}-byte header"));
    };
    let Some(layout) = layout::for_version(version) else {
        let known: Vec<String> = layout::LAYOUTS.iter().map(|l| l.version.to_string()).collect();
        return Err(format!("unknown VERSION {version} in the header (known: {})", known.join(", ")));
    };
    let body = len - HEADER as u64;
    if !body.is_multiple_of(layout.record_len as u64) {
        return Err(format!(
            "length {len} is not {HEADER} + a multiple of {} (the record length of VERSION {version}): \
             {} whole records and {} bytes over; the file is truncated or not of this version",
            layout.record_len,
            body / layout.record_len as u64,
            body % layout.record_len as u64
        ));
    }
    Ok((layout, sequence))
}

/// The fields of one call segment that acd-bridge uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Segment {
    pub callid: u32,
    pub segment: u8,
    pub ucid: String,
    pub call_disp: u8,
    pub dispsplit: i16,
    pub segstart_utc: u32,
    pub disptime: u32,
    pub queuetime: u32,
    pub ringtime: u32,
    pub talktime: u32,
    pub ansholdtime: u32,
    pub acwtime: u32,
    pub anslogin: String,
}

/// Reads records of one layout; fields are looked up once, by name.
#[derive(Debug, Clone)]
pub struct Reader {
    pub layout: &'static Layout,
    f: [Field; 13],
}

const USED: [&str; 13] = [
    "CALLID",
    "SEGMENT",
    "UCID",
    "CALL_DISP",
    "DISPSPLIT",
    "SEGSTART_UTC",
    "DISPTIME",
    "QUEUETIME",
    "RINGTIME",
    "TALKTIME",
    "ANSHOLDTIME",
    "ACWTIME",
    "ANSLOGIN",
];

impl Reader {
    /// A reader of `layout`; an error names a field the layout lacks.
    pub fn new(layout: &'static Layout) -> Result<Reader, String> {
        let mut f = [layout.fields[0]; 13];
        for (slot, name) in f.iter_mut().zip(USED) {
            *slot = layout.field(name).ok_or_else(|| format!("layout {} has no field {name}", layout.version))?;
        }
        Ok(Reader { layout, f })
    }

    fn int(&self, rec: &[u8], i: usize) -> i64 {
        let f = self.f[i];
        let b = &rec[f.offset..f.offset + f.ty.size()];
        match f.ty {
            Ty::U8 => b[0] as i64,
            Ty::U16 => u16::from_le_bytes([b[0], b[1]]) as i64,
            Ty::I16 => i16::from_le_bytes([b[0], b[1]]) as i64,
            Ty::U32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            Ty::Text(_) => 0,
        }
    }

    fn text(&self, rec: &[u8], i: usize) -> Result<String, String> {
        let f = self.f[i];
        let b = &rec[f.offset..f.offset + f.ty.size()];
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        let t = &b[..end];
        if !t.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
            return Err(format!("{}: not printable ASCII", f.name));
        }
        Ok(String::from_utf8_lossy(t).trim().to_string())
    }

    /// Reads one record (exactly `layout.record_len` bytes).
    pub fn segment(&self, rec: &[u8]) -> Result<Segment, String> {
        if rec.len() != self.layout.record_len {
            return Err(format!("record of {} bytes, expected {}", rec.len(), self.layout.record_len));
        }
        Ok(Segment {
            callid: self.int(rec, 0) as u32,
            segment: self.int(rec, 1) as u8,
            ucid: self.text(rec, 2)?,
            call_disp: self.int(rec, 3) as u8,
            dispsplit: self.int(rec, 4) as i16,
            segstart_utc: self.int(rec, 5) as u32,
            disptime: self.int(rec, 6) as u32,
            queuetime: self.int(rec, 7) as u32,
            ringtime: self.int(rec, 8) as u32,
            talktime: self.int(rec, 9) as u32,
            ansholdtime: self.int(rec, 10) as u32,
            acwtime: self.int(rec, 11) as u32,
            anslogin: self.text(rec, 12)?,
        })
    }
}

/// Answered.
pub const ANSWERED: u8 = 2;
/// Abandoned.
pub const ABANDONED: u8 = 3;

/// The contact of an answered or abandoned segment with a split; `None` for any other segment.
pub fn contact(s: &Segment, acd_id: &str, queue_names: &BTreeMap<String, String>, received: Millis) -> Option<Contact> {
    let outcome = match s.call_disp {
        ANSWERED => Outcome::Handled,
        ABANDONED => Outcome::Abandoned,
        _ => return None,
    };
    if s.dispsplit <= 0 {
        return None;
    }
    let start = s.segstart_utc as i64;
    let disposition = start + s.disptime as i64;
    let arrived = (disposition - s.queuetime as i64 - s.ringtime as i64).max(start);
    let queue_value = s.dispsplit.to_string();
    let queue_name = queue_names.get(&queue_value).cloned().unwrap_or_else(|| queue_value.clone());
    let contact_id = if s.ucid.is_empty() {
        format!("{}-{}-{}", s.callid, s.segment, s.segstart_utc)
    } else {
        format!("{}-{}", s.ucid, s.segment)
    };
    let handled = outcome == Outcome::Handled;
    let ended =
        if handled { disposition + s.talktime as i64 + s.ansholdtime as i64 + s.acwtime as i64 } else { disposition };
    let secs = |v: u32| if handled { v as f64 } else { 0.0 };
    Some(Contact {
        acd_id: acd_id.to_string(),
        contact_id,
        queue_value,
        queue_name,
        is_outbound: false,
        outcome,
        arrived_utc: arrived * 1000,
        ended_utc: ended * 1000,
        queue_delay_sec: (s.queuetime as f64) + (s.ringtime as f64),
        talk_sec: secs(s.talktime),
        hold_sec: secs(s.ansholdtime),
        work_sec: secs(s.acwtime),
        agent_value: handled.then(|| s.anslogin.clone()),
        agent_id: None,
        party: None,
        received_utc: Some(received),
    })
}

/// Writes `s` as a record of `layout` (for the simulator and tests): every other field zero.
pub fn write_record(layout: &Layout, s: &Segment, out: &mut Vec<u8>) {
    let at = out.len();
    out.resize(at + layout.record_len, 0);
    let rec = &mut out[at..];
    let mut put = |name: &str, v: i64, text: &str| {
        let Some(f) = layout.field(name) else { return };
        let b = &mut rec[f.offset..f.offset + f.ty.size()];
        match f.ty {
            Ty::U8 => b[0] = v as u8,
            Ty::U16 => b.copy_from_slice(&(v as u16).to_le_bytes()),
            Ty::I16 => b.copy_from_slice(&(v as i16).to_le_bytes()),
            Ty::U32 => b.copy_from_slice(&(v as u32).to_le_bytes()),
            Ty::Text(n) => {
                let t = &text.as_bytes()[..text.len().min(n - 1)];
                b[..t.len()].copy_from_slice(t);
            }
        }
    };
    put("CALLID", s.callid as i64, "");
    put("SEGMENT", s.segment as i64, "");
    put("UCID", 0, &s.ucid);
    put("CALL_DISP", s.call_disp as i64, "");
    put("DISPSPLIT", s.dispsplit as i64, "");
    put("SEGSTART_UTC", s.segstart_utc as i64, "");
    put("SEGSTART", s.segstart_utc as i64, "");
    put("DISPTIME", s.disptime as i64, "");
    put("QUEUETIME", s.queuetime as i64, "");
    put("RINGTIME", s.ringtime as i64, "");
    put("TALKTIME", s.talktime as i64, "");
    put("ANSHOLDTIME", s.ansholdtime as i64, "");
    put("ACWTIME", s.acwtime as i64, "");
    put("ANSLOGIN", 0, &s.anslogin);
    let stop = s.segstart_utc as i64 + s.disptime as i64 + s.talktime as i64 + s.ansholdtime as i64 + s.acwtime as i64;
    put("SEGSTOP_UTC", stop, "");
    put("SEGSTOP", stop, "");
}

/// A whole file: header and records.
pub fn write_file(layout: &Layout, sequence: u32, segments: &[Segment]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + segments.len() * layout.record_len);
    out.extend_from_slice(&layout.version.to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    for s in segments {
        write_record(layout, s, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Segment {
        Segment {
            callid: 70211,
            segment: 1,
            ucid: "00001070211713348060".into(),
            call_disp: 2,
            dispsplit: 57,
            segstart_utc: 1_713_348_060,
            disptime: 24,
            queuetime: 12,
            ringtime: 4,
            talktime: 250,
            ansholdtime: 20,
            acwtime: 6,
            anslogin: "967385".into(),
        }
    }

    #[test]
    fn the_published_example_record_as_a_contact() {
        let bytes = write_file(&layout::V181, 42, &[example()]);
        assert_eq!(&bytes[..8], &[0xb5, 0, 0, 0, 0x2a, 0, 0, 0]);
        let (l, seq) = check_file(&bytes[..8], bytes.len() as u64).unwrap();
        assert_eq!((l.version, seq), (181, 42));
        let seg = Reader::new(l).unwrap().segment(&bytes[8..]).unwrap();
        assert_eq!(seg, example());
        let names = BTreeMap::from([("57".to_string(), "Billing".to_string())]);
        let c = contact(&seg, "cms", &names, 0).unwrap();
        assert_eq!(c.contact_id, "00001070211713348060-1");
        assert_eq!(acd_schemas::time::format_millis(c.arrived_utc), "2024-04-17T10:01:08.000Z");
        assert_eq!(acd_schemas::time::format_millis(c.ended_utc), "2024-04-17T10:06:00.000Z");
        assert_eq!((c.queue_value.as_str(), c.queue_name.as_str()), ("57", "Billing"));
        assert_eq!((c.queue_delay_sec, c.talk_sec, c.hold_sec, c.work_sec), (16.0, 250.0, 20.0, 6.0));
        assert_eq!(c.agent_value.as_deref(), Some("967385"));
    }

    #[test]
    fn both_versions_read_the_same_segment() {
        for l in layout::LAYOUTS {
            let bytes = write_file(l, 1, &[example(), example()]);
            assert_eq!(bytes.len(), 8 + 2 * l.record_len);
            let r = Reader::new(check_file(&bytes, bytes.len() as u64).unwrap().0).unwrap();
            assert_eq!(r.segment(&bytes[8 + l.record_len..]).unwrap(), example(), "version {}", l.version);
        }
    }

    #[test]
    fn every_disposition() {
        let names = BTreeMap::new();
        let with = |disp: u8, split: i16| Segment { call_disp: disp, dispsplit: split, ..example() };
        for disp in [0, 1, 4, 5, 6, 7] {
            assert!(contact(&with(disp, 57), "cms", &names, 0).is_none(), "CALL_DISP {disp}");
        }
        assert!(contact(&with(2, 0), "cms", &names, 0).is_none());
        assert!(contact(&with(3, -1), "cms", &names, 0).is_none());
        let a = contact(&with(3, 57), "cms", &names, 0).unwrap();
        assert_eq!(a.outcome, Outcome::Abandoned);
        assert_eq!(acd_schemas::time::format_millis(a.ended_utc), "2024-04-17T10:01:24.000Z");
        assert_eq!((a.talk_sec, a.hold_sec, a.work_sec, a.agent_value.clone()), (0.0, 0.0, 0.0, None));
        assert_eq!(a.queue_delay_sec, 16.0);
    }

    #[test]
    fn an_empty_ucid_names_the_contact_by_call_segment_and_start() {
        let s = Segment { ucid: String::new(), segment: 2, ..example() };
        let c = contact(&s, "cms", &BTreeMap::new(), 0).unwrap();
        assert_eq!(c.contact_id, "70211-2-1713348060");
    }

    #[test]
    fn arrival_is_never_before_the_segment_started() {
        let s = Segment { disptime: 5, queuetime: 30, ringtime: 4, ..example() };
        let c = contact(&s, "cms", &BTreeMap::new(), 0).unwrap();
        assert_eq!(c.arrived_utc, 1_713_348_060_000);
    }

    #[test]
    fn refused_files() {
        let good = write_file(&layout::V181, 7, &[example()]);
        let cases: &[(&[u8], u64, &str)] = &[
            (&good[..4], 4, "4 bytes: shorter than the 8-byte header"),
            (&[0x0c, 0, 0, 0, 0, 0, 0, 0], 8 + 492, "unknown VERSION 12 in the header (known: 181, 180)"),
            (&good[..8], good.len() as u64 - 1, "length 727 is not 8 + a multiple of 720"),
            (&good[..8], 8 + 697, "length 705 is not 8 + a multiple of 720"),
        ];
        for (head, len, want) in cases {
            let e = check_file(head, *len).unwrap_err();
            assert!(e.starts_with(want), "{e}");
        }
        assert!(check_file(&good[..8], 8).is_ok(), "a file of no records is a file");
    }

    #[test]
    fn text_that_is_not_ascii_names_its_field() {
        let mut bytes = write_file(&layout::V181, 1, &[example()]);
        bytes[8 + 195] = 0xff;
        let e = Reader::new(&layout::V181).unwrap().segment(&bytes[8..]).unwrap_err();
        assert_eq!(e, "ANSLOGIN: not printable ASCII");
    }
}
