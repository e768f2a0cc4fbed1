//! What the sign-ins and audit events mean, computed without reading or
//! writing anything: grouping ([`activity`]), replay under two policies
//! ([`replay`]), policy changes joined with sign-ins ([`timeline`]) and the
//! figures of the overview report ([`overview`]). Pure functions of their
//! inputs; the pipeline feeds them, the render layer shows them. The one
//! exception: grouping and replay that outgrow their memory budget
//! continue in a temporary folder of their own (`activity/spill.rs`,
//! [`runs`]), since a million users' groups would otherwise all be in
//! memory at once.

pub mod activity;
pub(crate) mod overview;
pub mod propose;
pub mod query;
pub mod replay;
pub(crate) mod runs;
pub(crate) mod timeline;
