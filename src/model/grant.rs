//! What an applied Conditional Access policy asked of a sign-in, reduced to
//! what cross-tenant trust settings can change.
//!
//! A policy that lists one grant control (say `Mfa`) is a plain requirement
//! and is counted as such (`mfa_required`, `compliant_device_required`,
//! `hybrid_join_required`). A policy that lists two or more controls, or an
//! authentication strength, is kept whole as a [`Clause`]: the sign-in log
//! does not record whether *all* or *one* of its controls were required
//! (the policy's `grantControls.operator`), and an authentication strength
//! is not plain MFA for an external user. The evaluator decides clauses
//! with the operator and strength from `--ca-policies` when given, and says
//! `unknown` where the answer depends on what it was not given.

use std::fmt;

use super::Guid;

/// A set of grant controls, as bits.
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Controls(u8);

impl Controls {
    pub const NONE: Controls = Controls(0);
    pub const MFA: Controls = Controls(1);
    pub const COMPLIANT_DEVICE: Controls = Controls(2);
    /// `domainJoinedDevice`: a Microsoft Entra hybrid joined device.
    pub const HYBRID_JOIN: Controls = Controls(4);
    pub const AUTH_STRENGTH: Controls = Controls(8);
    /// Any control trust settings do not touch (approved or compliant client
    /// app, terms of use, password change, custom controls): it can stand in
    /// for the others under "require one of".
    pub const OTHER: Controls = Controls(16);

    /// Every control, in the order text lists them.
    const NAMED: [(Controls, &'static str); 5] = [
        (Controls::AUTH_STRENGTH, "authenticationStrength"),
        (Controls::COMPLIANT_DEVICE, "compliantDevice"),
        (Controls::HYBRID_JOIN, "domainJoinedDevice"),
        (Controls::MFA, "mfa"),
        (Controls::OTHER, "other"),
    ];

    pub fn contains(self, c: Controls) -> bool {
        self.0 & c.0 == c.0 && c.0 != 0
    }

    pub fn union(self, c: Controls) -> Controls {
        Controls(self.0 | c.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// Each control on its own, in text order.
    pub fn each(self) -> impl Iterator<Item = (Controls, &'static str)> {
        Controls::NAMED.into_iter().filter(move |(c, _)| self.contains(*c))
    }

    /// The control a grant control name stands for, however an export
    /// spells it (`Mfa`, `RequireCompliantDevice`, `compliantDevice`,
    /// `RequireDomainJoinedDevice`, `RequireAuthenticationStrength`, ...).
    /// `Block` and empty names are no control.
    pub fn of_name(name: &str) -> Controls {
        // The names sign-in logs write, matched as they are: every policy
        // of a cross-tenant sign-in names some, and squashing a copy of
        // each was a thirtieth of reading a Graph record. The same answers
        // as the rule below (a test compares them).
        if let Some((_, c)) = Controls::AS_LOGGED.iter().find(|(n, _)| *n == name) {
            return *c;
        }
        Controls::of_squashed_name(name)
    }

    /// Names as sign-in logs spell them, and the control each stands for.
    const AS_LOGGED: [(&'static str, Controls); 8] = [
        ("Block", Controls::NONE),
        ("Mfa", Controls::MFA),
        ("RequireCompliantDevice", Controls::COMPLIANT_DEVICE),
        ("RequireDomainJoinedDevice", Controls::HYBRID_JOIN),
        ("RequireApprovedApp", Controls::OTHER),
        ("RequireCompliantApp", Controls::OTHER),
        ("RequireAuthenticationStrength", Controls::AUTH_STRENGTH),
        ("PasswordChange", Controls::OTHER),
    ];

    /// [`Controls::of_name`]'s rule, on the name squashed.
    fn of_squashed_name(name: &str) -> Controls {
        let squashed = crate::model::signin::squash(name);
        let g = squashed.as_str();
        if g.is_empty() || g == "block" {
            Controls::NONE
        } else if g.contains("authenticationstrength") {
            Controls::AUTH_STRENGTH
        } else if g.contains("compliantdevice") {
            Controls::COMPLIANT_DEVICE
        } else if g.contains("domainjoineddevice") || g.contains("hybrid") {
            Controls::HYBRID_JOIN
        } else if g == "mfa" || g.contains("multifactor") || g.contains("requiremfa") {
            Controls::MFA
        } else {
            Controls::OTHER
        }
    }

    fn of_text(name: &str) -> Option<Controls> {
        Controls::NAMED.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
    }

    /// The set as bits, for the records grouping spills to disk.
    pub(crate) fn bits(self) -> u8 {
        self.0
    }

    /// [`Controls::bits`] read back; bits no control uses are dropped.
    pub(crate) fn from_bits(bits: u8) -> Controls {
        Controls(bits & 31)
    }

    /// Whether trust settings can change the outcome: a clause of only
    /// `other` controls cannot.
    pub fn touches_trust(self) -> bool {
        !Controls(self.0 & !Controls::OTHER.0).is_empty()
    }
}

impl fmt::Debug for Controls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.each().map(|(_, n)| n).collect();
        write!(f, "{}", names.join("+"))
    }
}

/// One applied Conditional Access policy kept whole (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Clause {
    /// The policy's id, when the export names it.
    pub policy: Option<Guid>,
    pub controls: Controls,
    /// With [`Controls::AUTH_STRENGTH`]: the strength's id, when the record
    /// carries it (Graph beta `authenticationStrength.authenticationStrengthId`).
    pub strength: Option<Guid>,
}

impl Clause {
    /// Whether a policy with these controls must be kept whole rather than
    /// counted as one plain requirement.
    pub fn needed(controls: Controls) -> bool {
        controls.touches_trust() && (controls.len() > 1 || controls.contains(Controls::AUTH_STRENGTH))
    }

    /// `policy:control+control`, the strength as `authenticationStrength=id`
    /// (`?` when unknown); `-` for an unnamed policy. Stable: activity tables
    /// carry it, and queries run elsewhere write the same text.
    pub fn text(&self) -> String {
        let policy = self.policy.map_or_else(|| "-".to_string(), |g| g.to_string());
        let controls: Vec<String> = self
            .controls
            .each()
            .map(|(c, n)| {
                if c == Controls::AUTH_STRENGTH {
                    format!("{n}={}", self.strength.map_or_else(|| "?".to_string(), |g| g.to_string()))
                } else {
                    n.to_string()
                }
            })
            .collect();
        format!("{policy}:{}", controls.join("+"))
    }

    pub fn parse(text: &str) -> Result<Clause, String> {
        let bad = || format!("`{text}` is not a grant clause (policy-id:control+control)");
        let (policy, controls) = text.trim().split_once(':').ok_or_else(bad)?;
        let policy = match policy {
            "-" => None,
            p => Some(Guid::parse(p).ok_or_else(bad)?),
        };
        let mut clause = Clause { policy, controls: Controls::NONE, strength: None };
        for part in controls.split('+') {
            let (name, value) = part.split_once('=').map_or((part, None), |(n, v)| (n, Some(v)));
            let c = Controls::of_text(name).ok_or_else(bad)?;
            if c == Controls::AUTH_STRENGTH {
                clause.strength = match value {
                    None | Some("?") => None,
                    Some(v) => Some(Guid::parse(v).ok_or_else(bad)?),
                };
            }
            clause.controls = clause.controls.union(c);
        }
        if clause.controls.is_empty() {
            return Err(bad());
        }
        Ok(clause)
    }

    /// Clauses as one cell: sorted, `;`-separated.
    pub fn list_text(clauses: &[Clause]) -> String {
        let mut texts: Vec<String> = clauses.iter().map(Clause::text).collect();
        texts.sort();
        texts.dedup();
        texts.join(";")
    }

    pub fn parse_list(text: &str) -> Result<Vec<Clause>, String> {
        let mut out: Vec<Clause> =
            text.split(';').filter(|t| !t.trim().is_empty()).map(Clause::parse).collect::<Result<_, _>>()?;
        out.sort();
        out.dedup();
        out.truncate(CLAUSES_KEPT + 1);
        Ok(out)
    }
}

impl serde::Serialize for Clause {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

impl<'de> serde::Deserialize<'de> for Clause {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Clause::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// How many policies kept whole a sign-in or a group keeps: five times the
/// Conditional Access policies a tenant may have ("Conditional Access has
/// a limit of 195 policies per tenant", Microsoft Learn, *Plan a
/// Conditional Access deployment*). Past it an export is forged or
/// garbled, and keeping every clause would grow a group without bound (a
/// sorted insert each: quadratic). The smallest are kept, and one more as
/// the mark of those dropped ([`clauses_past_kept`]): whatever order the
/// sign-ins come in, and however groups are merged, the set is the same.
pub const CLAUSES_KEPT: usize = 1024;

/// Whether a set [`insert_clause`] kept (or its clauses resolved) names
/// more policies than [`CLAUSES_KEPT`]: then the ones dropped may decide,
/// and the evaluator says `unknown` where nothing kept refuses.
pub fn clauses_past_kept<T>(set: &[T]) -> bool {
    set.len() > CLAUSES_KEPT
}

/// Adds `c` to a sorted set of clauses kept in a vector (sets are small,
/// usually empty: no allocation until the first clause), up to
/// [`CLAUSES_KEPT`] and its mark.
pub fn insert_clause(set: &mut Vec<Clause>, c: &Clause) {
    if let Err(i) = set.binary_search(c) {
        if i > CLAUSES_KEPT {
            return;
        }
        set.insert(i, c.clone());
        set.truncate(CLAUSES_KEPT + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(n: u128) -> Clause {
        Clause {
            policy: Some(Guid(n)),
            controls: Controls::MFA.union(Controls::COMPLIANT_DEVICE),
            strength: None,
        }
    }

    #[test]
    fn a_set_of_clauses_keeps_the_smallest_and_a_mark_whatever_the_order_and_merges() {
        // 3,000 policies in a scrambled order, and the same in two halves
        // merged: the same set, capped.
        let n = 3000u128;
        let scrambled: Vec<u128> = (0..n).map(|i| (i * 7919) % n).collect();
        let mut one = Vec::new();
        scrambled.iter().for_each(|&i| insert_clause(&mut one, &clause(i)));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (k, &i) in scrambled.iter().enumerate() {
            insert_clause(if k % 2 == 0 { &mut a } else { &mut b }, &clause(i));
        }
        b.iter().for_each(|c| insert_clause(&mut a, c));
        let smallest: Vec<Clause> = (0..=CLAUSES_KEPT as u128).map(clause).collect();
        assert_eq!(one, smallest);
        assert_eq!(a, smallest);
        assert!(clauses_past_kept(&one));
        // Read back from a table, the same.
        assert_eq!(
            Clause::parse_list(&Clause::list_text(&(0..n).map(clause).collect::<Vec<_>>())).unwrap(),
            smallest
        );
        // As many as kept: no mark.
        let mut kept = Vec::new();
        (0..CLAUSES_KEPT as u128).rev().for_each(|i| insert_clause(&mut kept, &clause(i)));
        assert!(!clauses_past_kept(&kept));
    }

    #[test]
    fn grant_control_spellings_of_every_export() {
        for (name, want) in [
            ("Mfa", Controls::MFA),
            ("mfa", Controls::MFA),
            ("Require multifactor authentication", Controls::MFA),
            ("RequireCompliantDevice", Controls::COMPLIANT_DEVICE),
            ("compliantDevice", Controls::COMPLIANT_DEVICE),
            ("RequireDomainJoinedDevice", Controls::HYBRID_JOIN),
            ("Domain Joined Device", Controls::HYBRID_JOIN),
            ("RequireAuthenticationStrength", Controls::AUTH_STRENGTH),
            ("RequireApprovedApp", Controls::OTHER),
            ("RequireCompliantApp", Controls::OTHER),
            ("Block", Controls::NONE),
            ("", Controls::NONE),
        ] {
            assert_eq!(Controls::of_name(name), want, "{name}");
        }
    }

    #[test]
    fn names_as_logged_stand_for_what_the_rule_reads_them_as() {
        for (name, control) in Controls::AS_LOGGED {
            assert_eq!(Controls::of_squashed_name(name), control, "{name}");
            assert_eq!(Controls::of_name(name), control, "{name}");
        }
    }

    #[test]
    fn clause_text_round_trips() {
        let c = Clause {
            policy: Guid::parse("5a110000-0000-4000-8000-000000000001"),
            controls: Controls::MFA.union(Controls::COMPLIANT_DEVICE),
            strength: None,
        };
        assert_eq!(c.text(), "5a110000-0000-4000-8000-000000000001:compliantDevice+mfa");
        assert_eq!(Clause::parse(&c.text()).unwrap(), c);
        let s = Clause {
            policy: None,
            controls: Controls::AUTH_STRENGTH,
            strength: Guid::parse("00000000-0000-0000-0000-000000000004"),
        };
        assert_eq!(s.text(), "-:authenticationStrength=00000000-0000-0000-0000-000000000004");
        assert_eq!(Clause::parse(&s.text()).unwrap(), s);
        let unknown = Clause { strength: None, ..s };
        assert_eq!(Clause::parse("-:authenticationStrength=?").unwrap(), unknown);
        assert_eq!(Clause::parse_list(&Clause::list_text(&[c.clone(), unknown.clone()])).unwrap().len(), 2);
        for bad in ["", "x:mfa", "-:", "-:nothing", "-:authenticationStrength=zz"] {
            assert!(Clause::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_multi_control_and_strength_policies_are_kept_whole() {
        assert!(!Clause::needed(Controls::MFA));
        assert!(!Clause::needed(Controls::OTHER.union(Controls::OTHER)));
        assert!(Clause::needed(Controls::MFA.union(Controls::COMPLIANT_DEVICE)));
        assert!(Clause::needed(Controls::COMPLIANT_DEVICE.union(Controls::OTHER)));
        assert!(Clause::needed(Controls::AUTH_STRENGTH));
    }
}
