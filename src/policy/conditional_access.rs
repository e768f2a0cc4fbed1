//! What the sign-in log does not say about Conditional Access, from the
//! policies themselves (`--ca-policies`): each policy's grant operator
//! (`grantControls.operator`, AND or OR) and authentication strength, and
//! which authentication strengths an external user can meet in our tenant.
//!
//! Reads `GET /identity/conditionalAccess/policies` (one page, several
//! pages, or `?$expand=grantControls/authenticationStrength`), the Graph
//! PowerShell SDK's `Get-MgIdentityConditionalAccessPolicy | ConvertTo-Json
//! -Depth 10` (PascalCase keys), and `GET
//! /policies/authenticationStrengthPolicies` for custom strengths; a file or
//! a folder of them. Keys are matched ignoring case.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde_json::Value;

use crate::model::{Clause, Controls, Guid};

/// `grantControls.operator`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Operator {
    /// Every listed control is required.
    And,
    /// One listed control is enough.
    Or,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::And => "AND",
            Operator::Or => "OR",
        }
    }
}

/// An authentication strength: the method combinations that satisfy it.
#[derive(Clone, Debug, PartialEq)]
pub struct Strength {
    pub id: Guid,
    pub name: String,
    /// `allowedCombinations`, e.g. `password,sms`, `fido2`.
    pub combinations: Vec<String>,
}

/// The methods an external user can use for MFA in the *resource* tenant
/// when it does not trust their home tenant's MFA (Microsoft Learn, "How
/// Conditional Access authentication strength works for external users":
/// text message, voice call, Microsoft Authenticator push notification,
/// OATH software token). Everything else in that article's table (phone
/// sign-in, hardware OATH, FIDO2, Windows Hello for Business,
/// certificate-based authentication) works in the home tenant only.
const METHODS_IN_RESOURCE_TENANT: [&str; 4] = ["sms", "voice", "microsoftauthenticatorpush", "softwareoath"];
/// First factors that come with the guest's sign-in at home.
const FIRST_FACTORS: [&str; 2] = ["password", "federatedsinglefactor"];

impl Strength {
    /// Whether some combination can be met by an external user doing MFA in
    /// our tenant: a first factor with a method from the resource-tenant
    /// list. (Assumption, docs/policy-semantics.md: the guest's first
    /// factor, done at home, counts as the combination's password.)
    pub fn external_users_can_meet_in_resource_tenant(&self) -> bool {
        self.combinations.iter().any(|combo| {
            let methods: Vec<String> =
                combo.split(',').map(|m| m.trim().to_ascii_lowercase()).filter(|m| !m.is_empty()).collect();
            !methods.is_empty()
                && methods.iter().all(|m| {
                    METHODS_IN_RESOURCE_TENANT.contains(&m.as_str()) || FIRST_FACTORS.contains(&m.as_str())
                })
                && methods.iter().any(|m| METHODS_IN_RESOURCE_TENANT.contains(&m.as_str()))
        })
    }
}

/// Microsoft's three built-in strengths, as `GET
/// /policies/authenticationStrengthPolicies` returns them (Graph v1.0
/// reference, "List authenticationStrengthPolicies").
pub fn built_in_strengths() -> Vec<Strength> {
    let s = |id: u128, name: &str, combos: &[&str]| Strength {
        id: Guid(id),
        name: name.into(),
        combinations: combos.iter().map(|c| c.to_string()).collect(),
    };
    vec![
        s(
            2,
            "Multifactor authentication",
            &[
                "windowsHelloForBusiness",
                "fido2",
                "x509CertificateMultiFactor",
                "deviceBasedPush",
                "temporaryAccessPassOneTime",
                "temporaryAccessPassMultiUse",
                "password,microsoftAuthenticatorPush",
                "password,softwareOath",
                "password,hardwareOath",
                "password,x509CertificateSingleFactor",
                "password,x509CertificateMultiFactor",
                "password,sms",
                "password,voice",
                "federatedMultiFactor",
                "microsoftAuthenticatorPush,federatedSingleFactor",
                "softwareOath,federatedSingleFactor",
                "hardwareOath,federatedSingleFactor",
                "sms,federatedSingleFactor",
                "voice,federatedSingleFactor",
            ],
        ),
        s(
            3,
            "Passwordless MFA",
            &["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush"],
        ),
        s(4, "Phishing-resistant MFA", &["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"]),
    ]
}

#[derive(Clone, Debug, Default)]
struct Policy {
    name: Option<String>,
    operator: Option<Operator>,
    strength: Option<Guid>,
}

/// Conditional Access policies by id, and the strengths known.
#[derive(Clone, Debug)]
pub struct CaPolicies {
    policies: HashMap<Guid, Policy>,
    strengths: HashMap<Guid, Strength>,
    /// What was loaded, for reasons; `None` without `--ca-policies`.
    pub source: Option<String>,
}

impl Default for CaPolicies {
    fn default() -> Self {
        CaPolicies {
            policies: HashMap::new(),
            strengths: built_in_strengths().into_iter().map(|s| (s.id, s)).collect(),
            source: None,
        }
    }
}

/// A strength a clause needs, as far as it can be told.
#[derive(Clone, Debug, PartialEq)]
pub enum StrengthNeed {
    Known(Strength),
    /// Why it cannot be told, and what to supply.
    Unknown(String),
}

/// A [`Clause`] with what the policies say about it.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedClause {
    pub clause: Clause,
    pub name: Option<String>,
    /// `None`: not known (no `--ca-policies`, or the policy is not in it).
    pub operator: Option<Operator>,
    /// With [`Controls::AUTH_STRENGTH`].
    pub strength: Option<StrengthNeed>,
}

impl ResolvedClause {
    /// `policy <id> (<name>)`, for reasons.
    pub fn label(&self) -> String {
        let id = self.clause.policy.map_or_else(|| "(no id in the log)".to_string(), |g| g.to_string());
        match &self.name {
            Some(n) => format!("Conditional Access policy {id} ({n})"),
            None => format!("Conditional Access policy {id}"),
        }
    }
}

fn lower_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), lower_keys(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(lower_keys).collect()),
        other => other,
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn strength_of(v: &Value) -> Option<Strength> {
    let id = Guid::parse(&text(v, "id")?)?;
    let combinations: Vec<String> = v
        .get("allowedcombinations")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    Some(Strength { id, name: text(v, "displayname").unwrap_or_default(), combinations })
}

impl CaPolicies {
    /// Loads every file given (folders recursively).
    pub fn load(paths: &[PathBuf]) -> Result<CaPolicies> {
        let mut out = CaPolicies {
            source: Some(paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")),
            ..CaPolicies::default()
        };
        for path in paths {
            let files = if path.is_dir() { crate::files::files_under(path)? } else { vec![path.clone()] };
            for f in files {
                out.load_file(&f)?;
            }
        }
        Ok(out)
    }

    fn load_file(&mut self, f: &Path) -> Result<()> {
        let bytes = crate::files::read_as_utf8(f)?;
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim_start_matches('\u{feff}');
        let mut found = 0;
        for doc in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            let doc = doc.with_context(|| format!("{}: not JSON", f.display()))?;
            let doc = lower_keys(doc);
            let items: Vec<&Value> = match &doc {
                Value::Array(a) => a.iter().collect(),
                Value::Object(m) => match m.get("value") {
                    Some(Value::Array(a)) => a.iter().collect(),
                    _ => vec![&doc],
                },
                _ => vec![],
            };
            for (i, item) in items.into_iter().enumerate() {
                found += self.add(item).with_context(|| format!("{}: item {i}", f.display()))? as usize;
            }
        }
        if found == 0 {
            bail!(
                "{}: no Conditional Access policy or authentication strength in it (expected the output of GET /identity/conditionalAccess/policies or Get-MgIdentityConditionalAccessPolicy | ConvertTo-Json -Depth 10)",
                f.display()
            );
        }
        Ok(())
    }

    /// One item: a CA policy (it has `grantControls`) or a strength policy
    /// (it has `allowedCombinations`). Anything else is not counted.
    fn add(&mut self, v: &Value) -> Result<bool> {
        if let Some(grant) = v.get("grantcontrols") {
            let Some(id) = text(v, "id").as_deref().and_then(Guid::parse) else {
                bail!("a Conditional Access policy without an `id`");
            };
            let operator = match text(grant, "operator").map(|o| o.to_ascii_uppercase()).as_deref() {
                Some("AND") => Some(Operator::And),
                Some("OR") => Some(Operator::Or),
                None => None,
                Some(other) => bail!("policy {id}: grantControls.operator `{other}` is not AND or OR"),
            };
            let strength = grant.get("authenticationstrength").filter(|s| !s.is_null());
            let strength_id = match strength {
                Some(s) => {
                    if let Some(def) = strength_of(s).filter(|d| !d.combinations.is_empty()) {
                        self.strengths.entry(def.id).or_insert(def);
                    }
                    text(s, "id").as_deref().and_then(Guid::parse)
                }
                None => None,
            };
            self.policies
                .insert(id, Policy { name: text(v, "displayname"), operator, strength: strength_id });
            return Ok(true);
        }
        if v.get("allowedcombinations").is_some() {
            if let Some(def) = strength_of(v) {
                self.strengths.insert(def.id, def);
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// What the policies say about a clause from the log.
    pub fn resolve(&self, c: &Clause) -> ResolvedClause {
        let policy = c.policy.and_then(|p| self.policies.get(&p));
        let strength = c.controls.contains(Controls::AUTH_STRENGTH).then(|| {
            let id = c.strength.or(policy.and_then(|p| p.strength));
            match id {
                Some(id) => match self.strengths.get(&id) {
                    Some(s) => StrengthNeed::Known(s.clone()),
                    None => StrengthNeed::Unknown(format!(
                        "authentication strength {id} is a custom one whose methods are not known (supply --ca-policies with GET /policies/authenticationStrengthPolicies, or the policies with $expand=grantControls/authenticationStrength)"
                    )),
                },
                None => StrengthNeed::Unknown(
                    "the log does not say which authentication strength was required (export from the Graph beta endpoint, or supply --ca-policies)".into(),
                ),
            }
        });
        ResolvedClause {
            clause: c.clone(),
            name: policy.and_then(|p| p.name.clone()),
            operator: policy.and_then(|p| p.operator),
            strength,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_strengths_and_what_guests_can_meet_in_our_tenant() {
        let s = built_in_strengths();
        assert_eq!(s[0].id.to_string(), "00000000-0000-0000-0000-000000000002");
        assert!(s[0].external_users_can_meet_in_resource_tenant(), "password + SMS");
        assert!(!s[1].external_users_can_meet_in_resource_tenant(), "passwordless");
        assert!(!s[2].external_users_can_meet_in_resource_tenant(), "phishing-resistant");
        let custom = |c: &[&str]| Strength {
            id: Guid(9),
            name: "x".into(),
            combinations: c.iter().map(|s| s.to_string()).collect(),
        };
        assert!(custom(&["password,softwareOath"]).external_users_can_meet_in_resource_tenant());
        assert!(!custom(&["password,hardwareOath", "fido2"]).external_users_can_meet_in_resource_tenant());
        assert!(!custom(&[]).external_users_can_meet_in_resource_tenant());
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn graph_pages_and_powershell_output_give_operator_and_strength() {
        let dir = tempfile::tempdir().unwrap();
        let graph = write(
            dir.path(),
            "graph.json",
            r#"{"value": [
                {"id": "11111111-0000-4000-8000-000000000001", "displayName": "MFA or device",
                 "grantControls": {"operator": "OR", "builtInControls": ["mfa", "compliantDevice"]}},
                {"id": "11111111-0000-4000-8000-000000000002", "displayName": "Strong",
                 "grantControls": {"operator": "AND", "builtInControls": [],
                   "authenticationStrength": {"id": "22222222-0000-4000-8000-000000000001", "displayName": "Custom",
                     "allowedCombinations": ["password,softwareOath"]}}}]}"#,
        );
        let ps = write(
            dir.path(),
            "ps.json",
            r#"[{"Id": "11111111-0000-4000-8000-000000000003", "DisplayName": "Both",
                 "GrantControls": {"Operator": "AND", "BuiltInControls": ["mfa", "compliantDevice"],
                   "AuthenticationStrength": {"Id": null}}}]"#,
        );
        let p = CaPolicies::load(&[graph, ps]).unwrap();
        let clause =
            |id: &str, controls: Controls| Clause { policy: Guid::parse(id), controls, strength: None };
        let both = Controls::MFA.union(Controls::COMPLIANT_DEVICE);
        assert_eq!(
            p.resolve(&clause("11111111-0000-4000-8000-000000000001", both)).operator,
            Some(Operator::Or)
        );
        assert_eq!(
            p.resolve(&clause("11111111-0000-4000-8000-000000000003", both)).operator,
            Some(Operator::And)
        );
        assert_eq!(p.resolve(&clause("11111111-0000-4000-8000-000000000009", both)).operator, None);
        let strong = p.resolve(&clause("11111111-0000-4000-8000-000000000002", Controls::AUTH_STRENGTH));
        match strong.strength {
            Some(StrengthNeed::Known(s)) => assert!(s.external_users_can_meet_in_resource_tenant()),
            other => panic!("{other:?}"),
        }
        assert_eq!(strong.name.as_deref(), Some("Strong"));
    }

    #[test]
    fn strengths_the_log_or_the_policies_do_not_tell_are_unknown_with_what_to_supply() {
        let p = CaPolicies::default();
        let unknown = p.resolve(&Clause { policy: None, controls: Controls::AUTH_STRENGTH, strength: None });
        assert!(matches!(&unknown.strength, Some(StrengthNeed::Unknown(w)) if w.contains("--ca-policies")));
        let custom =
            p.resolve(&Clause { policy: None, controls: Controls::AUTH_STRENGTH, strength: Some(Guid(77)) });
        assert!(matches!(&custom.strength, Some(StrengthNeed::Unknown(w)) if w.contains("custom")));
        let built_in =
            p.resolve(&Clause { policy: None, controls: Controls::AUTH_STRENGTH, strength: Some(Guid(4)) });
        assert!(
            matches!(&built_in.strength, Some(StrengthNeed::Known(s)) if s.name == "Phishing-resistant MFA")
        );
    }

    /// Windows PowerShell 5.1's `ConvertTo-Json ... > ca.json` writes UTF-16.
    #[test]
    fn a_policy_list_saved_as_utf16_reads_as_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"[{"Id": "11111111-0000-4000-8000-000000000003", "DisplayName": "Both",
                        "GrantControls": {"Operator": "AND", "BuiltInControls": ["mfa", "compliantDevice"]}}]"#;
        let f = dir.path().join("ca.json");
        let utf16: Vec<u8> =
            [0xFF, 0xFE].into_iter().chain(text.encode_utf16().flat_map(u16::to_le_bytes)).collect();
        std::fs::write(&f, utf16).unwrap();
        let p = CaPolicies::load(&[f]).unwrap();
        let both = Controls::MFA.union(Controls::COMPLIANT_DEVICE);
        let clause = Clause {
            policy: Guid::parse("11111111-0000-4000-8000-000000000003"),
            controls: both,
            strength: None,
        };
        assert_eq!(p.resolve(&clause).operator, Some(Operator::And));
    }

    #[test]
    fn files_that_hold_no_policy_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), "x.json", r#"{"value": [{"id": "x"}]}"#);
        let e = CaPolicies::load(&[f]).unwrap_err().to_string();
        assert!(e.contains("no Conditional Access policy"), "{e}");
        let f = write(
            dir.path(),
            "y.json",
            r#"[{"id": "11111111-0000-4000-8000-000000000001", "grantControls": {"operator": "XOR"}}]"#,
        );
        let e = format!("{:#}", CaPolicies::load(&[f]).unwrap_err());
        assert!(e.contains("XOR"), "{e}");
    }
}
