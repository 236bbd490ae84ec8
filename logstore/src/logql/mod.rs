//! LogQL: the parser ([`parse`]), the pipeline stages run over each entry,
//! and evaluation over the store ([`evaluate`]).

pub mod ast;
mod eval;
mod parser;
mod pipeline;

pub use eval::{
    evaluate, Direction, EvalError, QueryParams, QueryResult, QueryStats, Series, Stop, Stream,
};
pub use parser::{parse, parse_duration, ParseError};
pub use pipeline::Labels;
