//! Quoting outside input in errors and stored text: at most a prefix, cut
//! on a character boundary, so a 1 MB label value or regex never comes back
//! whole in an answer or a log line.

/// At most `max` bytes of `s`, cut on a character boundary.
pub fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    #[test]
    fn cuts_on_a_character_boundary() {
        assert_eq!(super::prefix("abc", 5), "abc");
        assert_eq!(super::prefix("abc", 2), "ab");
        assert_eq!(super::prefix("aé", 2), "a");
    }
}
