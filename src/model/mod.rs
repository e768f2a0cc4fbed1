//! Canonical records every reader yields, and the ids and enums they use.

pub mod codes;
pub mod guid;
pub mod signin;

pub use guid::Guid;
pub use signin::{AccessType, CaStatus, Device, EventType, Evidence, SignIn, UserType};
