//! A bound on how deeply a query nests, checked before it is parsed.
//!
//! promql-parser and the evaluator recurse once per level of the syntax
//! tree, so a query such as `1+1+…+1` with thousands of terms, `abs(abs(…))`
//! or thousands of parentheses would overflow the stack and abort the
//! process; parse time also grows faster than linearly with such chains.
//! This scan runs over the text in one pass without allocating per token
//! and refuses a query whose tree could be deeper than the limit, so
//! neither the parser nor the evaluator ever sees one.
//!
//! The depth it computes is an upper bound of the tree's depth: every open
//! parenthesis, bracket or brace is one level, and every operator (binary
//! or unary, symbols and `and`/`or`/`unless`/`atan2`) one more level within
//! its group, as a left-associative chain of `n` operators is `n` deep.

/// Deepest nesting a query may have: far beyond hand-written queries
/// (generated ones with a few hundred `or` terms still pass), far below
/// what the parser's and evaluator's recursion can take on the query
/// threads' stacks.
pub const MAX_DEPTH: usize = 1000;

/// The error for a query nested deeper than `max`.
pub fn too_deep_message(max: usize) -> String {
    format!("query too deeply nested: more than {max} levels")
}

/// Refuses `query` when its syntax tree could be more than `max` levels deep.
pub fn check(query: &str, max: usize) -> Result<(), String> {
    if depth_bound(query) > max {
        Err(too_deep_message(max))
    } else {
        Ok(())
    }
}

/// An upper bound of the syntax tree depth of `query` (see the module doc).
pub fn depth_bound(query: &str) -> usize {
    let b = query.as_bytes();
    // Operators counted in each open group; `depth` is the number of open
    // groups plus the sum of those counts.
    let mut ops_in_group: Vec<(u8, usize)> = Vec::new();
    let (mut depth, mut max) = (0usize, 0usize);
    let mut braces = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let mut op = false;
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' | b'`' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    if b[i] == b'\\' && c != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            b'(' | b'[' | b'{' => {
                ops_in_group.push((c, 0));
                depth += 1;
                if c == b'{' {
                    braces += 1;
                }
            }
            b')' | b']' | b'}' => {
                if let Some((open, n)) = ops_in_group.pop() {
                    depth -= 1 + n;
                    if open == b'{' {
                        braces = braces.saturating_sub(1);
                    }
                }
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' => op = braces == 0,
            b'=' | b'!' | b'<' | b'>' => {
                op = braces == 0;
                // Two-character comparison operators count once.
                if b.get(i + 1) == Some(&b'=') || b.get(i + 1) == Some(&b'~') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &query[start..i];
                if braces == 0
                    && ["and", "or", "unless", "atan2"]
                        .iter()
                        .any(|k| word.eq_ignore_ascii_case(k))
                {
                    count_op(&mut ops_in_group, &mut depth);
                    max = max.max(depth);
                }
                continue;
            }
            _ => {}
        }
        if op {
            count_op(&mut ops_in_group, &mut depth);
        }
        max = max.max(depth);
        i += 1;
    }
    max
}

/// One more operator in the innermost group (outside any group, it is
/// never given back).
fn count_op(groups: &mut [(u8, usize)], depth: &mut usize) {
    if let Some((_, n)) = groups.last_mut() {
        *n += 1;
    }
    *depth += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_queries_are_shallow() {
        assert!(depth_bound("up") <= 1);
        assert!(depth_bound("sum by (job) (rate(http_requests_total{code=~\"5..\"}[5m]))") <= 6);
        assert!(depth_bound("a + b * c") <= 3);
        // Operators inside strings and label matchers do not count.
        assert_eq!(depth_bound(r#"x{a="((((+-*"}"#), 1);
        assert_eq!(
            depth_bound(r#"label_replace(x, "a", "$1", "b", "(.*)")"#),
            1
        );
    }

    #[test]
    fn chains_parentheses_calls_and_unary_minus_count() {
        let chain = vec!["1"; 2000].join("+");
        assert_eq!(depth_bound(&chain), 1999);
        let calls = format!("{}x{}", "abs(".repeat(2000), ")".repeat(2000));
        assert_eq!(depth_bound(&calls), 2000);
        assert_eq!(depth_bound(&"(".repeat(50_000)), 50_000);
        assert!(depth_bound(&"-(".repeat(20_000)) >= 20_000);
        let ors = vec!["up"; 1200].join(" or ");
        assert!(check(&ors, MAX_DEPTH).is_err());
        let ors = vec!["up"; 300].join(" or ");
        assert!(check(&ors, MAX_DEPTH).is_ok());
        assert_eq!(
            check(&chain, MAX_DEPTH).unwrap_err(),
            "query too deeply nested: more than 1000 levels"
        );
    }

    #[test]
    fn groups_closed_give_their_depth_back() {
        let q = vec!["(a+b+c)"; 1000].join(",");
        assert!(depth_bound(&format!("f({q})")) <= 5);
        // Unbalanced closers do not underflow.
        assert_eq!(depth_bound(")))(("), 2);
    }
}
