//! Kindling's data model: names, ARNs, qualifiers, validation rules and Lambda's wire shapes.
//!
//! Everything here is pure data and pure functions: no I/O, no clocks, no randomness. The store
//! persists these types, the control plane manipulates them and the API crate renders them.

pub mod alias;
pub mod arn;
pub mod esm;
pub mod events;
pub mod function;
pub mod invoke;
pub mod layer;
pub mod limits;
pub mod lineage;
pub mod messaging;
pub mod objects;
pub mod policy;
pub mod runtime;
pub mod timefmt;
pub mod trace;
pub mod url;
pub mod validate;

pub use arn::{ArnContext, FunctionRef, Qualifier};
pub use validate::Violations;
