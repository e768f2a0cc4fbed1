//! What the sign-ins and audit events mean, computed without reading or
//! writing anything: grouping ([`activity`]), replay under two policies
//! ([`replay`]), policy changes joined with sign-ins ([`timeline`]) and the
//! figures of the overview report ([`overview`]). Pure functions of their
//! inputs; the pipeline feeds them, the render layer shows them.

pub mod activity;
pub(crate) mod overview;
pub mod propose;
pub mod query;
pub mod replay;
pub(crate) mod timeline;
