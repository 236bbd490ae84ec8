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

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

pub(crate) const TOKENIZER_NAME: &str = "vigil_log";
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

#[derive(Clone, Default)]
pub(crate) struct LogTokenizer {
    token: Token,
}

pub(crate) struct LogTokenStream<'a> {
    text: &'a str,
    spans: Box<dyn Iterator<Item = (usize, usize)> + 'a>,
    token: &'a mut Token,
    marked_long: bool,
}

impl Tokenizer for LogTokenizer {
    type TokenStream<'a> = LogTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> LogTokenStream<'a> {
        self.token.reset();
        self.token.position = usize::MAX;
        LogTokenStream {
            text,
            spans: Box::new(token_spans(text)),
            token: &mut self.token,
            marked_long: false,
        }
    }
}

impl TokenStream for LogTokenStream<'_> {
    fn advance(&mut self) -> bool {
        for (start, end) in self.spans.by_ref() {
            let long = end - start > MAX_TOKEN_BYTES;
            if long && self.marked_long {
                continue;
            }
            self.token.position = self.token.position.wrapping_add(1);
            self.token.offset_from = start;
            self.token.offset_to = end;
            if long {
                self.marked_long = true;
                self.token.text.clear();
                self.token.text.push_str(LONG_TOKEN_MARKER);
            } else {
                lowercase_into(&self.text[start..end], &mut self.token.text);
            }
            return true;
        }
        false
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
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
    pub tokens: Vec<(u64, String)>,
    word: String,
}

impl BlockTokens {
    pub fn clear(&mut self) {
        self.seen.clear();
        self.tokens.clear();
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
            self.tokens.push((h, w.to_string()));
        }
    }

    /// The tokens as tantivy's pre-tokenized text (emptying this set).
    pub fn take_pre_tokenized(&mut self) -> tantivy::tokenizer::PreTokenizedString {
        self.seen.clear();
        tantivy::tokenizer::PreTokenizedString {
            text: String::new(),
            tokens: self
                .tokens
                .drain(..)
                .enumerate()
                .map(|(i, (_, text))| Token {
                    offset_from: 0,
                    offset_to: 0,
                    position: i,
                    text,
                    position_length: 1,
                })
                .collect(),
        }
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
        let mut t = LogTokenizer::default();
        let mut s = t.token_stream(text);
        let mut out = Vec::new();
        while s.advance() {
            out.push(s.token().text.clone());
        }
        out
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
