//! Tokens of log lines, for the index: maximal runs of letters, digits and
//! `_`, lowercased, so `10.2.3.4`, `req-7f3a` and `user_id=42` are found by
//! their parts. Tokens longer than [`MAX_TOKEN_BYTES`] (base64 blobs, long
//! hex) are not indexed; a block holding one carries [`LONG_TOKEN_MARKER`]
//! instead, so that a substring search still visits it.
//!
//! LogQL's `|= "text"` is a case-sensitive substring test. The index can
//! only narrow the candidates to blocks holding tokens that could contain
//! the needle's words; [`needle_terms`] works out which, and the caller
//! still tests every line.

/// The index field's tokenizer: blocks hand it their distinct tokens
/// already split, lowercased and space-separated.
pub(crate) const TOKENIZER_NAME: &str = "vigil_tokens";
pub(crate) const MAX_TOKEN_BYTES: usize = 64;
/// Not a possible token (tokens hold no `~`).
pub(crate) const LONG_TOKEN_MARKER: &str = "~long";

fn is_token_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Byte ranges of the tokens of `text`, before lowercasing.
pub(crate) fn token_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        let start = loop {
            let (i, c) = chars.next()?;
            if is_token_char(c) {
                break i;
            }
        };
        let mut end = text.len();
        while let Some(&(i, c)) = chars.peek() {
            if !is_token_char(c) {
                end = i;
                break;
            }
            chars.next();
        }
        Some((start, end))
    })
}

pub(crate) fn lowercase_into(s: &str, out: &mut String) {
    out.clear();
    if s.is_ascii() {
        out.push_str(s);
        out.make_ascii_lowercase();
    } else {
        out.extend(s.chars().flat_map(char::to_lowercase));
    }
}

/// The distinct tokens of a block's lines, lowercased, each with its
/// hash; a token too long to index leaves [`LONG_TOKEN_MARKER`] instead.
/// Indexing each block's distinct tokens once (instead of every
/// occurrence) is what keeps the write path cheap.
#[derive(Default)]
pub(crate) struct BlockTokens {
    seen:
        std::collections::HashSet<u64, std::hash::BuildHasherDefault<crate::vocab::IdentityHasher>>,
    /// The distinct tokens, space-separated: what the index's whitespace
    /// tokenizer reads (one string per block, no allocation per token).
    joined: String,
    /// (hash, start, end) of each token in `joined`.
    spans: Vec<(u64, usize, usize)>,
    word: String,
}

impl BlockTokens {
    pub fn clear(&mut self) {
        self.seen.clear();
        self.joined.clear();
        self.spans.clear();
    }

    pub fn add_line(&mut self, line: &str) {
        for (s, e) in token_spans(line) {
            if e - s > MAX_TOKEN_BYTES {
                self.push_word(LONG_TOKEN_MARKER);
                continue;
            }
            let mut word = std::mem::take(&mut self.word);
            lowercase_into(&line[s..e], &mut word);
            self.push_word(&word);
            self.word = word;
        }
    }

    fn push_word(&mut self, w: &str) {
        let h = crate::vocab::token_hash(w.as_bytes());
        if self.seen.insert(h) {
            let start = self.joined.len();
            self.joined.push_str(w);
            self.spans.push((h, start, self.joined.len()));
            self.joined.push(' ');
        }
    }

    /// The distinct tokens with their hashes, in first-seen order.
    pub fn tokens(&self) -> impl Iterator<Item = (u64, &str)> + '_ {
        self.spans.iter().map(|&(h, s, e)| (h, &self.joined[s..e]))
    }

    /// All distinct tokens, space-separated, for the whitespace tokenizer.
    pub fn joined(&self) -> &str {
        &self.joined
    }
}

/// How a word of a needle must appear among a candidate block's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeedleTerm {
    /// Delimited on both sides inside the needle: a whole token.
    Exact(String),
    /// The needle's last word, delimited before it: a token's start.
    Prefix(String),
    /// The needle's first word, delimited after it: a token's end.
    Suffix(String),
    /// The needle is one word: anywhere inside a token.
    Infix(String),
    /// A word too long to be indexed: only blocks with long tokens.
    Long,
}

/// The index terms that every block containing `needle` (as a substring,
/// case-sensitively) must hold. Exact and prefix terms are cheap lookups;
/// suffix and infix terms walk the term dictionary, so they are given only
/// when nothing cheaper exists. Empty when the index cannot help (no words,
/// or an empty needle).
pub fn needle_terms(needle: &str) -> Vec<NeedleTerm> {
    let mut terms = Vec::new();
    let mut word = String::new();
    for (start, end) in token_spans(needle) {
        lowercase_into(&needle[start..end], &mut word);
        let open_left = start == 0;
        let open_right = end == needle.len();
        terms.push(if end - start > MAX_TOKEN_BYTES {
            NeedleTerm::Long
        } else {
            match (open_left, open_right) {
                (false, false) => NeedleTerm::Exact(word.clone()),
                (false, true) => NeedleTerm::Prefix(word.clone()),
                (true, false) => NeedleTerm::Suffix(word.clone()),
                (true, true) => NeedleTerm::Infix(word.clone()),
            }
        });
    }
    let cheap = |t: &NeedleTerm| matches!(t, NeedleTerm::Exact(_) | NeedleTerm::Prefix(_));
    if terms.iter().any(cheap) {
        terms.retain(cheap);
    }
    terms.dedup();
    terms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<String> {
        let mut t = BlockTokens::default();
        t.add_line(text);
        t.tokens().map(|(_, w)| w.to_string()).collect()
    }

    #[test]
    fn splits_on_punctuation_and_lowercases() {
        assert_eq!(
            tokens(r#"10.2.3.4 - GET /api/v1/Users?id=req-7F3a user_id=42 "Ünïcode""#),
            [
                "10",
                "2",
                "3",
                "4",
                "get",
                "api",
                "v1",
                "users",
                "id",
                "req",
                "7f3a",
                "user_id",
                "42",
                "ünïcode"
            ]
        );
        assert!(tokens("").is_empty());
        assert!(tokens(" --- ").is_empty());
    }

    #[test]
    fn long_tokens_leave_one_marker() {
        let blob = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            tokens(&format!("x {blob} y {blob}")),
            ["x", LONG_TOKEN_MARKER, "y"]
        );
    }

    #[test]
    fn needle_words_by_where_they_sit() {
        use NeedleTerm::*;
        assert_eq!(needle_terms("error"), [Infix("error".into())]);
        assert_eq!(needle_terms("level=error"), [Prefix("error".into())]);
        assert_eq!(needle_terms("Level=error "), [Exact("error".into())]);
        assert_eq!(
            needle_terms("GET /api/v1 "),
            [Exact("api".into()), Exact("v1".into())]
        );
        assert_eq!(needle_terms("GET"), [Infix("get".into())]);
        assert_eq!(needle_terms("get /"), [Suffix("get".into())]);
        assert_eq!(needle_terms("=\""), []);
        assert_eq!(needle_terms(""), []);
        assert_eq!(needle_terms(&"z".repeat(100)), [Long]);
    }
}
