//! Series colours: picked from the series' own labels, not its position in
//! the answer, so a series keeps its colour across refreshes and panels.

/// Distinguishable on both the light and the dark background.
const COLORS: [(u8, u8, u8); 16] = [
    (0x37, 0x7e, 0xb8),
    (0xe4, 0x1a, 0x1c),
    (0x4d, 0xaf, 0x4a),
    (0xff, 0x7f, 0x00),
    (0x98, 0x4e, 0xa3),
    (0x17, 0xbe, 0xcf),
    (0xe3, 0x77, 0xc2),
    (0xbc, 0xbd, 0x22),
    (0x8c, 0x56, 0x4b),
    (0x1f, 0x9e, 0x89),
    (0xd6, 0x27, 0x28),
    (0x5b, 0x8f, 0xf9),
    (0xf2, 0xb7, 0x01),
    (0x7f, 0x3c, 0x8d),
    (0x11, 0xa5, 0x79),
    (0xe7, 0x3f, 0x74),
];

/// FNV-1a: tiny, stable across builds and platforms.
fn hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub fn color_for(key: &str) -> (u8, u8, u8) {
    COLORS[(hash(key) % COLORS.len() as u64) as usize]
}

pub fn css(c: (u8, u8, u8)) -> String {
    format!("rgb({},{},{})", c.0, c.1, c.2)
}

/// A threshold's colour by name (`green`, `orange`, `red`, or `#rrggbb`).
pub fn named(name: &str) -> (u8, u8, u8) {
    match name {
        "green" => (0x2e, 0xa0, 0x43),
        "yellow" => (0xe0, 0xb4, 0x00),
        "orange" => (0xff, 0x78, 0x0a),
        "red" => (0xd4, 0x2a, 0x2a),
        "blue" => (0x37, 0x7e, 0xb8),
        "purple" => (0x8f, 0x3b, 0xb8),
        s => parse_hex(s).unwrap_or((0x88, 0x88, 0x88)),
    }
}

fn parse_hex(s: &str) -> Option<(u8, u8, u8)> {
    let h = s.strip_prefix('#')?;
    if h.len() != 6 {
        return None;
    }
    let n = u32::from_str_radix(h, 16).ok()?;
    Some(((n >> 16) as u8, (n >> 8) as u8, n as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_spread() {
        assert_eq!(color_for("up{job=\"a\"}"), color_for("up{job=\"a\"}"));
        let distinct: std::collections::HashSet<_> = (0..40)
            .map(|i| color_for(&format!("s{{i=\"{i}\"}}")))
            .collect();
        assert!(distinct.len() >= 10, "{}", distinct.len());
        assert_eq!(named("#ff0000"), (255, 0, 0));
        assert_eq!(named("nonsense"), (0x88, 0x88, 0x88));
    }
}
