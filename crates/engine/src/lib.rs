//! Leadroute's routing engine: given a lead, the published rule set, the roster with its state
//! and `now`, decide who gets the lead and say why.
//!
//! The engine is pure. It reads no clock, does no IO and draws no random numbers; the
//! decision it returns carries the state changes (rotation pointers, counters) for the store
//! to apply in the same transaction as the assignment. The server, the SLA clock and the
//! simulator all call [`route`].

pub mod batch;
pub mod calendar;
pub mod compile;
pub mod condition;
pub mod decision;
pub mod eligibility;
pub mod explain;
pub mod field;
pub mod follow_up;
pub mod hours;
pub mod lead;
pub mod model;
pub mod pool;
pub mod rep;
pub mod roster;
pub mod route;
pub mod rule_set;
pub mod spec;
pub mod state;
pub mod strategy;
pub mod team;
pub mod value;

pub use compile::{CompileError, Known, compile};
pub use decision::{Decision, Outcome};
pub use explain::{DecisionRecord, Language};
pub use field::FieldCatalogue;
pub use lead::{Lead, LeadStatus, Priority};
pub use model::{ModelSpec, WinModel, WinScore};
pub use rep::{Rep, RepId, RepStatus};
pub use roster::Roster;
pub use route::{RouteRequest, assign_manually, route};
pub use rule_set::{RuleIndex, RuleSet};
pub use spec::RuleSetSpec;
pub use state::{RepState, RoutingState, StateChange};
pub use strategy::Strategy;
pub use team::Team;
