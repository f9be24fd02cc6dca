//! Variable-length integers (7 bits a byte, low bits first) and zigzag signs: the packing of
//! the agent books' states and of the consumer's dedup times.

/// Appends `v` in 7-bit groups, low first, the high bit set on all but the last.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads what [`put_varint`] wrote from the front of `bytes`, advancing it; `None` when the
/// bytes end first or hold more than 64 bits.
pub fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Small magnitudes of either sign as small numbers: 0, -1, 1, -2, ... as 0, 1, 2, 3, ...
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
pub fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_ends_early() {
        for v in [0i64, 1, -1, 63, -64, 64, 1_714_000_000_000, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            put_varint(&mut out, zigzag(v));
            let mut b = out.as_slice();
            assert_eq!(get_varint(&mut b).map(unzigzag), Some(v));
            assert!(b.is_empty());
            assert_eq!(get_varint(&mut &out[..out.len() - 1]), None);
        }
        assert_eq!(get_varint(&mut [0xffu8; 11].as_slice()), None, "more than 64 bits");
    }
}
