//! Parsed queries, kept for reuse: a dashboard sends the same query text
//! on every refresh and a rule on every evaluation, and parsing (with the
//! regexes the parser compiles) costs as much as answering a small query.

use promql_parser::parser::Expr;
use std::sync::{Arc, OnceLock};
use tsdb::memo::Memo;

/// Longer queries are parsed each time rather than held.
const MAX_QUERY_LEN: usize = 4096;

/// The tree of `query`, from the cache or parsed with `parse` (whose
/// errors are returned, never cached).
pub(crate) fn parsed<E>(
    query: &str,
    parse: impl FnOnce(&str) -> Result<Expr, E>,
) -> Result<Arc<Expr>, E> {
    static CACHE: OnceLock<Memo<Arc<Expr>>> = OnceLock::new();
    if query.len() > MAX_QUERY_LEN {
        return parse(query).map(Arc::new);
    }
    CACHE
        .get_or_init(|| Memo::new(1024))
        .get_or_try_insert(query, |q| parse(q).map(Arc::new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_query_is_parsed_once_and_errors_are_not_kept() {
        let calls = Cell::new(0);
        let parse = |q: &str| {
            calls.set(calls.get() + 1);
            promql_parser::parser::parse(q)
        };
        let q = "sum(rate(parse_cache_test_total[5m]))";
        let a = parsed(q, parse).unwrap();
        let b = parsed(q, parse).unwrap();
        assert_eq!(a.to_string(), b.to_string());
        assert_eq!(calls.get(), 1);
        assert!(parsed("sum(", parse).is_err());
        assert_eq!(calls.get(), 2);
    }
}
