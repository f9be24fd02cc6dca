//! The byte layouts of External Call History records, one table per CMS version: each field's
//! name, offset and type. A new CMS release is a new table here, not new code: the reader looks
//! fields up by name ([`Layout::field`]).
//!
//! `FLAGS` (offset 92 in version 181) holds, least significant bit first, ASSIST, AUDIO,
//! CONFERENCE, DA_QUEUED, HOLDABN, MALICIOUS, OBSERVINGCALL and TRANSFERRED; bit 0 of
//! `AGT_RELEASED` is that flag.

/// How a field is stored. Integers are little-endian; text is ASCII padded with NULs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    U8,
    U16,
    I16,
    U32,
    /// A NUL-padded ASCII field of this many bytes.
    Text(usize),
}

impl Ty {
    /// Bytes the field takes.
    pub const fn size(self) -> usize {
        match self {
            Ty::U8 => 1,
            Ty::U16 | Ty::I16 => 2,
            Ty::U32 => 4,
            Ty::Text(n) => n,
        }
    }
}

/// One field of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub offset: usize,
    pub ty: Ty,
}

const fn f(name: &'static str, offset: usize, ty: Ty) -> Field {
    Field { name, offset, ty }
}

/// A record layout: the header's VERSION, the record length, and its fields.
#[derive(Debug)]
pub struct Layout {
    pub version: u32,
    pub record_len: usize,
    pub fields: &'static [Field],
}

impl Layout {
    /// The field of this name, if the version has it.
    pub fn field(&self, name: &str) -> Option<Field> {
        self.fields.iter().find(|f| f.name == name).copied()
    }
}

/// Every layout acd-bridge reads.
pub static LAYOUTS: [&Layout; 2] = [&V181, &V180];

/// The layout of a header VERSION.
pub fn for_version(version: u32) -> Option<&'static Layout> {
    LAYOUTS.iter().copied().find(|l| l.version == version)
}

use Ty::*;

/// Version 181: CMS R18.1 and later, 720-byte records.
pub static V181: Layout = Layout {
    version: 181,
    record_len: 720,
    fields: &[
        f("CALLID", 0, U32),
        f("ACWTIME", 4, U32),
        f("ANSHOLDTIME", 8, U32),
        f("CONSULTTIME", 12, U32),
        f("DISPTIME", 16, U32),
        f("DURATION", 20, U32),
        f("SEGSTART", 24, U32),
        f("SEGSTART_UTC", 28, U32),
        f("SEGSTOP", 32, U32),
        f("SEGSTOP_UTC", 36, U32),
        f("TALKTIME", 40, U32),
        f("NETINTIME", 44, U32),
        f("ORIGHOLDTIME", 48, U32),
        f("QUEUETIME", 52, U32),
        f("RINGTIME", 56, U32),
        f("TENANT", 60, U32),
        f("ECD_NUM", 64, U32),
        f("DISPIVECTOR", 68, U16),
        f("DISPSPLIT", 70, I16),
        f("FIRSTIVECTOR", 72, U16),
        f("SPLIT1", 74, I16),
        f("SPLIT2", 76, I16),
        f("SPLIT3", 78, I16),
        f("TKGRP", 80, U16),
        f("EQ_LOCID", 82, U16),
        f("ORIG_LOCID", 84, U16),
        f("ANS_LOCID", 86, U16),
        f("OBS_LOCID", 88, U16),
        f("UUI_LEN", 90, U16),
        f("FLAGS", 92, U8),
        f("AGT_RELEASED", 93, U8),
        f("ACD", 94, U8),
        f("CALL_DISP", 95, U8),
        f("DISPPRIORITY", 96, U8),
        f("HELD", 97, U8),
        f("SEGMENT", 98, U8),
        f("ANSREASON", 99, U8),
        f("ORIGREASON", 100, U8),
        f("DISPSKLEVEL", 101, U8),
        f("EVENT1", 102, U8),
        f("EVENT2", 103, U8),
        f("EVENT3", 104, U8),
        f("EVENT4", 105, U8),
        f("EVENT5", 106, U8),
        f("EVENT6", 107, U8),
        f("EVENT7", 108, U8),
        f("EVENT8", 109, U8),
        f("EVENT9", 110, U8),
        f("ECD_CONTROL", 111, U8),
        f("ECD_INFO", 112, U8),
        f("UCID", 113, Text(21)),
        f("DISPVDN", 134, Text(17)),
        f("EQLOC", 151, Text(10)),
        f("FIRSTVDN", 161, Text(17)),
        f("ORIGLOGIN", 178, Text(17)),
        f("ANSLOGIN", 195, Text(17)),
        f("LASTOBSERVER", 212, Text(17)),
        f("DIALED_NUM", 229, Text(25)),
        f("CALLING_PTY", 254, Text(25)),
        f("LASTDIGITS", 279, Text(17)),
        f("LASTCWC", 296, Text(17)),
        f("CALLING_II", 313, Text(3)),
        f("CWC1", 316, Text(17)),
        f("CWC2", 333, Text(17)),
        f("CWC3", 350, Text(17)),
        f("CWC4", 367, Text(17)),
        f("CWC5", 384, Text(17)),
        f("VDN2", 401, Text(17)),
        f("VDN3", 418, Text(17)),
        f("VDN4", 435, Text(17)),
        f("VDN5", 452, Text(17)),
        f("VDN6", 469, Text(17)),
        f("VDN7", 486, Text(17)),
        f("VDN8", 503, Text(17)),
        f("VDN9", 520, Text(17)),
        f("ASAI_UUI", 537, Text(97)),
        f("INTERRUPTDEL", 634, U8),
        f("AGENTSURPLUS", 635, U8),
        f("AGENTSKILLLEVEL", 636, U8),
        f("PREFSKILLLEVEL", 637, U8),
        f("ICRRESENT", 638, U8),
        f("ICRPULLREASON", 639, U8),
        f("ORIG_ATTRIB_ID", 640, Text(21)),
        f("ANS_ATTRIB_ID", 661, Text(21)),
        f("OBS_ATTRIB_ID", 682, Text(21)),
        f("ECD_STR", 703, Text(17)),
    ],
};

/// Version 180: CMS R18, 697-byte records (181 without ECD_NUM, ECD_CONTROL, ECD_INFO and ECD_STR).
pub static V180: Layout = Layout {
    version: 180,
    record_len: 697,
    fields: &[
        f("CALLID", 0, U32),
        f("ACWTIME", 4, U32),
        f("ANSHOLDTIME", 8, U32),
        f("CONSULTTIME", 12, U32),
        f("DISPTIME", 16, U32),
        f("DURATION", 20, U32),
        f("SEGSTART", 24, U32),
        f("SEGSTART_UTC", 28, U32),
        f("SEGSTOP", 32, U32),
        f("SEGSTOP_UTC", 36, U32),
        f("TALKTIME", 40, U32),
        f("NETINTIME", 44, U32),
        f("ORIGHOLDTIME", 48, U32),
        f("QUEUETIME", 52, U32),
        f("RINGTIME", 56, U32),
        f("TENANT", 60, U32),
        f("DISPIVECTOR", 64, U16),
        f("DISPSPLIT", 66, I16),
        f("FIRSTIVECTOR", 68, U16),
        f("SPLIT1", 70, I16),
        f("SPLIT2", 72, I16),
        f("SPLIT3", 74, I16),
        f("TKGRP", 76, U16),
        f("EQ_LOCID", 78, U16),
        f("ORIG_LOCID", 80, U16),
        f("ANS_LOCID", 82, U16),
        f("OBS_LOCID", 84, U16),
        f("UUI_LEN", 86, U16),
        f("FLAGS", 88, U8),
        f("AGT_RELEASED", 89, U8),
        f("ACD", 90, U8),
        f("CALL_DISP", 91, U8),
        f("DISPPRIORITY", 92, U8),
        f("HELD", 93, U8),
        f("SEGMENT", 94, U8),
        f("ANSREASON", 95, U8),
        f("ORIGREASON", 96, U8),
        f("DISPSKLEVEL", 97, U8),
        f("EVENT1", 98, U8),
        f("EVENT2", 99, U8),
        f("EVENT3", 100, U8),
        f("EVENT4", 101, U8),
        f("EVENT5", 102, U8),
        f("EVENT6", 103, U8),
        f("EVENT7", 104, U8),
        f("EVENT8", 105, U8),
        f("EVENT9", 106, U8),
        f("UCID", 107, Text(21)),
        f("DISPVDN", 128, Text(17)),
        f("EQLOC", 145, Text(10)),
        f("FIRSTVDN", 155, Text(17)),
        f("ORIGLOGIN", 172, Text(17)),
        f("ANSLOGIN", 189, Text(17)),
        f("LASTOBSERVER", 206, Text(17)),
        f("DIALED_NUM", 223, Text(25)),
        f("CALLING_PTY", 248, Text(25)),
        f("LASTDIGITS", 273, Text(17)),
        f("LASTCWC", 290, Text(17)),
        f("CALLING_II", 307, Text(3)),
        f("CWC1", 310, Text(17)),
        f("CWC2", 327, Text(17)),
        f("CWC3", 344, Text(17)),
        f("CWC4", 361, Text(17)),
        f("CWC5", 378, Text(17)),
        f("VDN2", 395, Text(17)),
        f("VDN3", 412, Text(17)),
        f("VDN4", 429, Text(17)),
        f("VDN5", 446, Text(17)),
        f("VDN6", 463, Text(17)),
        f("VDN7", 480, Text(17)),
        f("VDN8", 497, Text(17)),
        f("VDN9", 514, Text(17)),
        f("ASAI_UUI", 531, Text(97)),
        f("INTERRUPTDEL", 628, U8),
        f("AGENTSURPLUS", 629, U8),
        f("AGENTSKILLLEVEL", 630, U8),
        f("PREFSKILLLEVEL", 631, U8),
        f("ICRRESENT", 632, U8),
        f("ICRPULLREASON", 633, U8),
        f("ORIG_ATTRIB_ID", 634, Text(21)),
        f("ANS_ATTRIB_ID", 655, Text(21)),
        f("OBS_ATTRIB_ID", 676, Text(21)),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layout_is_contiguous_and_as_long_as_its_records() {
        for l in LAYOUTS {
            let mut at = 0;
            for f in l.fields {
                assert_eq!(f.offset, at, "version {} field {}", l.version, f.name);
                at += f.ty.size();
            }
            assert_eq!(at, l.record_len, "version {}", l.version);
        }
    }

    #[test]
    fn the_fields_acd_bridge_reads_sit_where_the_published_layouts_put_them() {
        let at = |l: &Layout, n: &str| l.field(n).map(|f| f.offset);
        assert_eq!(at(&V181, "DISPSPLIT"), Some(70));
        assert_eq!(at(&V181, "CALL_DISP"), Some(95));
        assert_eq!(at(&V181, "UCID"), Some(113));
        assert_eq!(at(&V181, "ANSLOGIN"), Some(195));
        assert_eq!(at(&V181, "ECD_STR"), Some(703));
        assert_eq!(at(&V180, "ECD_NUM"), None);
        assert_eq!(at(&V180, "DISPSPLIT"), Some(66));
        assert_eq!(at(&V180, "UCID"), Some(107));
    }
}
