//! Canonical records every reader yields, and the ids and enums they use.

pub mod activity;
pub mod audit;
pub mod codes;
pub mod direction;
pub mod grant;
pub mod guid;
pub mod signin;
pub mod stats;
pub mod text;
pub mod time;

pub use activity::{ActivityRow, Counters, GroupBy, Name, Totals};
pub use audit::{Actor, AuditEvent, AuditTarget, ModifiedProperty};
pub use direction::Direction;
pub use grant::{Clause, Controls};
pub use guid::{hex_pair, Guid, Hyphenated};
pub use signin::{
    AccessType, CaStatus, Device, EventType, Evidence, SignIn, Text, Texts, UserType, MAX_TEXT_BYTES,
};
pub use stats::ReadStats;
pub use time::{earliest, rfc3339, Window};
