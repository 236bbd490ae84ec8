//! Positions for annotations: Prometheus 3 ends each warning and info with
//! where in the query the node it concerns starts (`... (1:6)`).
//! promql-parser's tree carries no positions, so the calls and
//! aggregations of the query's text are located by `type_error.rs`'s tree
//! and matched to promql-parser's nodes in source order. Where the two
//! disagree (they should not), annotations go without a position rather
//! than with a wrong one.

use crate::type_error::{call_sites, CallSite};
use promql_parser::parser::{AggregateExpr, Call, Expr};
use std::collections::HashMap;

/// Identifies a call or aggregation node of the evaluated tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct NodeId(usize);

impl NodeId {
    pub fn call(c: &Call) -> Self {
        NodeId(c as *const Call as usize)
    }

    pub fn aggregate(a: &AggregateExpr) -> Self {
        NodeId(a as *const AggregateExpr as usize)
    }
}

/// Where each call and aggregation of one query, and its arguments, start.
pub(crate) struct Positions {
    sites: HashMap<NodeId, CallSite>,
}

impl Positions {
    /// Matches `root`'s calls and aggregations to those located in `query`.
    pub fn of(query: &str, root: &Expr) -> Option<Positions> {
        let located = call_sites(query)?;
        let mut nodes = Vec::new();
        preorder(root, &mut nodes);
        if nodes.len() != located.len() {
            return None;
        }
        let mut sites = HashMap::with_capacity(nodes.len());
        for ((id, name), site) in nodes.into_iter().zip(located) {
            if !name.eq_ignore_ascii_case(&site.name) {
                return None;
            }
            sites.insert(id, site);
        }
        Some(Positions { sites })
    }

    /// Where node `id` starts, or (with `arg`) its argument `arg` does.
    pub fn of_node(&self, id: NodeId, arg: Option<usize>) -> Option<usize> {
        let site = self.sites.get(&id)?;
        match arg {
            None => Some(site.pos),
            Some(i) => site.args.get(i).copied().flatten(),
        }
    }
}

fn preorder(e: &Expr, out: &mut Vec<(NodeId, String)>) {
    match e {
        Expr::Call(c) => {
            out.push((NodeId::call(c), c.func.name.to_string()));
            for a in &c.args.args {
                preorder(a, out);
            }
        }
        Expr::Aggregate(a) => {
            out.push((NodeId::aggregate(a), a.op.to_string()));
            if let Some(p) = &a.param {
                preorder(p, out);
            }
            preorder(&a.expr, out);
        }
        Expr::Binary(b) => {
            preorder(&b.lhs, out);
            preorder(&b.rhs, out);
        }
        Expr::Paren(p) => preorder(&p.expr, out),
        Expr::Unary(u) => preorder(&u.expr, out),
        Expr::Subquery(s) => preorder(&s.expr, out),
        _ => {}
    }
}

/// `line:column` of byte offset `pos`, both from 1, as Prometheus counts.
pub(crate) fn line_col(query: &str, pos: usize) -> String {
    let pos = pos.min(query.len());
    let before = query.as_bytes().get(..pos).unwrap_or_default();
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = match before.iter().rposition(|&b| b == b'\n') {
        Some(nl) => pos - nl,
        None => pos + 1,
    };
    format!("{line}:{col}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A located node: name, start, argument starts.
    type Placed = (String, usize, Vec<Option<usize>>);

    fn positions(q: &str) -> (Expr, Vec<Placed>) {
        let e = promql_parser::parser::parse(q).unwrap();
        let p = Positions::of(q, &e).expect("positions");
        let mut nodes = Vec::new();
        preorder(&e, &mut nodes);
        let out = nodes
            .iter()
            .map(|(id, name)| {
                let site = &p.sites[id];
                (name.clone(), site.pos, site.args.clone())
            })
            .collect();
        (e, out)
    }

    #[test]
    fn calls_and_aggregations_are_placed_in_the_text() {
        let (_, got) = positions("sum(sort(series))");
        assert_eq!(got[0], ("sum".into(), 0, vec![None, Some(4)]));
        assert_eq!(got[1], ("sort".into(), 4, vec![Some(9)]));
        let (_, got) = positions("count(limit_ratio(1.1, http_requests) and http_requests)");
        assert_eq!(got[1], ("limit_ratio".into(), 6, vec![Some(18), Some(23)]));
        let (_, got) =
            positions("histogram_quantile(0.5, rate(x_bucket[5m])) / on() (1 + rate(y[1m:10s]))");
        let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(names, ["histogram_quantile", "rate", "rate"]);
        assert_eq!(got[1].1, 24);
        assert_eq!(got[1].2, vec![Some(29)]);
        assert_eq!(got[2].2, vec![Some(61)]);
    }

    #[test]
    fn lines_and_columns_count_from_one() {
        assert_eq!(line_col("abc", 0), "1:1");
        assert_eq!(line_col("sum(sort(x))", 4), "1:5");
        assert_eq!(line_col("a +\n  rate(x[5m])", 6), "2:3");
        assert_eq!(line_col("a", 99), "1:2");
    }
}
