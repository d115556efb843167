//! Integration tests, one binary.

mod availability;
mod behaviours;
mod censoring;
mod charts;
mod check;
mod cli;
mod comparison;
mod conservation;
mod convergence;
mod determinism;
mod errors;
mod expectations;
mod flow_exact;
mod generate;
mod hardening;
mod html;
mod incidents;
mod loader_props;
mod planes;
mod plans;
mod replay;
mod series;
mod settings_act;
mod shard;
mod support;
mod sweep;
