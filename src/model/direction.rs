//! Direction of a cross-tenant sign-in, relative to our tenant.

use serde::{Deserialize, Serialize};

use super::Guid;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// An external user signing in to our tenant.
    Inbound,
    /// Our user signing in to another tenant.
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

impl Direction {
    /// A sign-in from `home` to `resource`, seen from our tenant: its
    /// direction and the partner tenant. `None` when neither side is ours
    /// (or both are).
    pub fn of(ours: Guid, home: Guid, resource: Guid) -> Option<(Direction, Guid)> {
        if home == ours && resource != ours {
            Some((Direction::Outbound, resource))
        } else if resource == ours && home != ours {
            Some((Direction::Inbound, home))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partner_is_the_side_that_is_not_ours() {
        let (us, them) = (Guid(1), Guid(2));
        assert_eq!(Direction::of(us, us, them), Some((Direction::Outbound, them)));
        assert_eq!(Direction::of(us, them, us), Some((Direction::Inbound, them)));
        assert_eq!(Direction::of(us, them, Guid(3)), None);
        assert_eq!(Direction::of(us, us, us), None);
    }
}
