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
    COLORS[preferred(key)]
}

fn preferred(key: &str) -> usize {
    (hash(key) % COLORS.len() as u64) as usize
}

/// Colours for the series of one panel: each takes its own preferred
/// colour unless another series of the panel has it, then the next free
/// one, so series side by side differ (until there are more series than
/// colours). Keys are placed in sorted order, so the same set of series
/// gets the same colours on every refresh.
pub fn assign<'a>(
    keys: impl Iterator<Item = &'a str>,
) -> std::collections::HashMap<String, (u8, u8, u8)> {
    let mut keys: Vec<&str> = keys.collect();
    keys.sort_unstable();
    keys.dedup();
    let mut used = [false; COLORS.len()];
    let mut out = std::collections::HashMap::with_capacity(keys.len());
    for (n, k) in keys.into_iter().enumerate() {
        if n % COLORS.len() == 0 {
            used = [false; COLORS.len()];
        }
        let start = preferred(k);
        let slot = (0..COLORS.len())
            .map(|d| (start + d) % COLORS.len())
            .find(|&i| !used[i])
            .unwrap_or(start);
        used[slot] = true;
        out.insert(k.to_string(), COLORS[slot]);
    }
    out
}

/// A key's colour from [`assign`]'s map (its own when it is not there).
pub fn pick(colors: &std::collections::HashMap<String, (u8, u8, u8)>, key: &str) -> (u8, u8, u8) {
    colors.get(key).copied().unwrap_or_else(|| color_for(key))
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

    #[test]
    fn series_of_one_panel_get_distinct_colours() {
        let keys = [
            "node_memory_used",
            "node_memory_cached",
            "node_memory_total",
            "eth0",
            "ifb0",
        ];
        let a = assign(keys.iter().copied());
        let distinct: std::collections::HashSet<_> = a.values().collect();
        assert_eq!(distinct.len(), keys.len());
        // The same set in another order gets the same colours.
        let b = assign(keys.iter().rev().copied());
        assert_eq!(a, b);
        // More series than colours: every colour is used before one repeats.
        let many: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
        let m = assign(many.iter().map(String::as_str));
        let distinct: std::collections::HashSet<_> = m.values().collect();
        assert_eq!(distinct.len(), 16);
    }
}
