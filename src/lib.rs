//! xtenant: replay Entra ID sign-in logs against cross-tenant access
//! policies before you change them.
//!
//! The map (data flows one way; `tests/architecture.rs` fails on any import
//! against it):
//!
//! ```text
//! main -> cli -> pipeline -> { ingest, store, analysis, policy } -> model
//!         cli -> render   -> { analysis, model }
//! ```
//!
//! - [`cli`]: command-line flags only. Each command turns its flags into a
//!   plan, makes one [`pipeline`] call and picks a [`render`] sink.
//! - [`pipeline`]: assembly, without flags or formatting: where records
//!   come from (exports, the store, activity tables), what is computed.
//! - [`ingest`]: every export format read into canonical records.
//! - [`store`]: the Parquet history store.
//! - [`analysis`]: grouping, replay, the change timeline, overview figures.
//! - [`policy`]: the cross-tenant access policy engine.
//! - [`model`]: the canonical records and the small types all share.
//! - [`render`]: tables, JSON, SIEM formats, the HTML report; atomic files.
//! - [`synth`]: realistic test data in every export format.
//! - `files`: the one directory walk, and which temporary files a killed run
//!   left behind; a leaf any layer may use.

pub mod analysis;
pub mod cli;
mod files;
pub mod ingest;
pub mod model;
pub(crate) mod pipeline;
pub mod policy;
pub(crate) mod render;
pub mod store;
pub mod synth;
