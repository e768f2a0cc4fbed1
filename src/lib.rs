//! xtenant: replay Entra ID sign-in logs against cross-tenant access
//! policies before you change them.
//!
//! Data flows one way: [`ingest`] reads exports into canonical
//! [`model::SignIn`]s and [`model::AuditEvent`]s, [`activity`] groups the
//! cross-tenant sign-ins, [`replay`] evaluates them under two policies,
//! [`timeline`] joins policy changes with the sign-ins around them, and
//! [`report`] writes the result. [`synth`] makes realistic test data in
//! every export format.

pub mod activity;
pub mod cli;
pub mod files;
pub mod ingest;
pub mod model;
pub mod policy;
pub mod replay;
pub mod report;
pub mod store;
pub mod synth;
pub mod timeline;
