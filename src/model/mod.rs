//! Canonical records every reader yields, and the ids and enums they use.

pub mod audit;
pub mod codes;
pub mod direction;
pub mod grant;
pub mod guid;
pub mod signin;

pub use audit::{Actor, AuditEvent, AuditTarget, ModifiedProperty};
pub use direction::Direction;
pub use grant::{Clause, Controls};
pub use guid::Guid;
pub use signin::{AccessType, CaStatus, Device, EventType, Evidence, SignIn, UserType};
