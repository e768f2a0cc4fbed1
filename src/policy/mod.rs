//! The cross-tenant access policy engine: [`model`] (Graph JSON), [`load`]
//! (files and folders admins have), [`resolve`] (inheritance), [`evaluate`](mod@evaluate)
//! (one sign-in, with the reason; [`targets`]: how a section's targets
//! match it), [`validate`] (`policy check`) and
//! [`diff`] (`policy diff`). [`directory`] reads group memberships and
//! identity mappings that evaluation may need.

pub mod apps;
pub mod change;
pub mod conditional_access;
pub(crate) mod diff;
pub mod directory;
pub mod evaluate;
pub mod history;
pub mod load;
pub mod model;
pub mod resolve;
pub(crate) mod targets;
pub(crate) mod validate;

pub use evaluate::{evaluate, CloudHint, Decision, Membership, Need, Request, TrustNeeds, Verdict};
pub use model::Policy;
