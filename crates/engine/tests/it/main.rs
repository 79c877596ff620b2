//! Engine integration tests: one binary, one module per feature.

mod batch;
mod compile_errors;
mod conditions;
mod docs;
mod explain;
mod properties;
mod scenarios;
mod strategies;
mod support;
