//! Loading a policy from what admins actually have: a combined
//! policy-as-code document, the Graph responses of `/default` and
//! `/partners` (one page or several) in a directory, or the folder
//! EntraExporter writes (`Policies/CrossTenantAccessPolicy/{Default,Partners}`).
//!
//! Every JSON document is classified by its content, never its name, so
//! any of these layouts (and mixes of them) load the same way.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;

type Map = serde_json::Map<String, Value>;

use super::model::{is_ignorable_key, DefaultConfig, PartnerConfig, Policy, Section, Settings};
use crate::model::Guid;

/// Problems that make a policy unusable for evaluation but that `policy
/// check` reports alongside the rest.
pub type LoadErrors = Vec<String>;

/// Loads `path` (a file, a directory, or `-` for stdin).
pub fn load(path: &Path) -> Result<(Policy, LoadErrors)> {
    let mut files = Vec::new();
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        files.push(("<stdin>".to_string(), s));
    } else if path.is_dir() {
        let found: Vec<PathBuf> = crate::files::files_under(path)?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")))
            .collect();
        if found.is_empty() {
            bail!("{}: no .json files in the directory", path.display());
        }
        for f in found {
            let text =
                std::fs::read_to_string(&f).with_context(|| format!("{}: cannot read", f.display()))?;
            files.push((f.display().to_string(), text));
        }
    } else {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
        files.push((path.display().to_string(), text));
    }
    let mut b = Builder {
        policy: Policy { source: path.display().to_string(), ..Policy::default() },
        errors: vec![],
    };
    for (name, text) in files {
        let text = text.trim_start_matches('\u{feff}');
        let v: Value = serde_json::from_str(text).map_err(|e| {
            let hint = if e.to_string().contains("trailing comma") {
                " (documentation examples carry trailing commas that Graph itself never sends)"
            } else {
                ""
            };
            anyhow::anyhow!("{name}: line {} column {}: invalid JSON: {e}{hint}", e.line(), e.column())
        })?;
        b.document(&name, graph_spelling(v))?;
    }
    Ok((b.policy, b.errors))
}

/// Every key the policy documents use, in Graph's spelling.
const KEYS: &[&str] = &[
    "default",
    "partners",
    "value",
    "allowedCloudEndpoints",
    "tenantId",
    "isServiceDefault",
    "isServiceProvider",
    "isInMultiTenantOrganization",
    "b2bCollaborationInbound",
    "b2bCollaborationOutbound",
    "b2bDirectConnectInbound",
    "b2bDirectConnectOutbound",
    "inboundTrust",
    "isMfaAccepted",
    "isCompliantDeviceAccepted",
    "isHybridAzureADJoinedDeviceAccepted",
    "automaticUserConsentSettings",
    "inboundAllowed",
    "outboundAllowed",
    "tenantRestrictions",
    "devices",
    "invitationRedemptionIdentityProviderConfiguration",
    "usersAndGroups",
    "applications",
    "accessType",
    "targets",
    "target",
    "targetType",
    "displayName",
    "id",
];

/// `k` in Graph's spelling when it is a key the policy documents use
/// (matched ignoring case), else as it is.
pub(crate) fn graph_key(k: &str) -> String {
    KEYS.iter().find(|c| c.eq_ignore_ascii_case(k)).map_or_else(|| k.to_string(), |c| c.to_string())
}

/// The Graph PowerShell SDK's `ConvertTo-Json` writes PascalCase keys
/// (`B2BCollaborationInbound`, `IsHybridAzureAdJoinedDeviceAccepted`) and
/// keeps what its model does not know in `AdditionalProperties`. Known keys
/// are matched ignoring case and respelled as Graph spells them; the
/// contents of `AdditionalProperties` join their parent object.
pub(crate) fn graph_spelling(v: Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(graph_spelling).collect()),
        Value::Object(m) => {
            let mut out = Map::new();
            let mut extra = Vec::new();
            for (k, v) in m {
                if k == "AdditionalProperties" {
                    if let Value::Object(inner) = v {
                        extra.extend(inner);
                    }
                    continue;
                }
                let key = KEYS.iter().find(|c| c.eq_ignore_ascii_case(&k)).map_or(k, |c| c.to_string());
                out.insert(key, graph_spelling(v));
            }
            for (k, v) in extra {
                let key = KEYS.iter().find(|c| c.eq_ignore_ascii_case(&k)).map_or(k, |c| c.to_string());
                out.entry(key).or_insert_with(|| graph_spelling(v));
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// Loads and refuses a policy with structural errors (for every command
/// but `policy check`, which reports them).
pub fn load_valid(path: &Path) -> Result<Policy> {
    let (p, errors) = load(path)?;
    if !errors.is_empty() {
        bail!(
            "{}: the policy has errors ({}); `xtenant policy check {}` lists them",
            path.display(),
            errors.join("; "),
            path.display()
        );
    }
    Ok(p)
}

struct Builder {
    policy: Policy,
    errors: LoadErrors,
}

pub(crate) fn parse<T: DeserializeOwned>(v: Value, at: &str) -> Result<T> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { at.to_string() } else { format!("{at}.{path}") };
        anyhow::anyhow!("{path}: {}", e.into_inner())
    })
}

fn has_section_keys(m: &serde_json::Map<String, Value>) -> bool {
    Section::ALL.iter().any(|s| m.contains_key(s.name())) || m.contains_key("inboundTrust")
}

impl Builder {
    fn document(&mut self, name: &str, v: Value) -> Result<()> {
        match v {
            Value::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    self.partner(item, &format!("{name}: [{i}]"))?;
                }
                Ok(())
            }
            Value::Object(mut m) => {
                if let Some(ep) = m.remove("allowedCloudEndpoints") {
                    let ep: Vec<String> = parse(ep, &format!("{name}: allowedCloudEndpoints"))?;
                    self.policy.allowed_cloud_endpoints.extend(ep);
                }
                let combined = m.contains_key("default") || m.contains_key("partners");
                if combined {
                    if let Some(d) = m.remove("default").filter(|d| !d.is_null()) {
                        self.default(d, &format!("{name}: default"))?;
                    }
                    if let Some(p) = m.remove("partners") {
                        let p = match p {
                            Value::Object(mut o) if o.contains_key("value") => {
                                o.remove("value").unwrap_or_default()
                            }
                            other => other,
                        };
                        match p {
                            Value::Array(items) => {
                                for (i, item) in items.into_iter().enumerate() {
                                    self.partner(item, &format!("{name}: partners[{i}]"))?;
                                }
                            }
                            Value::Null => {}
                            _ => bail!("{name}: partners: expected a list of partner configurations"),
                        }
                    }
                    for k in m.keys().filter(|k| !is_ignorable_key(k)) {
                        self.policy.warnings.push(format!("{name}: field `{k}` is not known; ignored"));
                    }
                    return Ok(());
                }
                if let Some(Value::Array(items)) = m.remove("value") {
                    for (i, item) in items.into_iter().enumerate() {
                        self.partner(item, &format!("{name}: value[{i}]"))?;
                    }
                    return Ok(());
                }
                if m.contains_key("tenantId") {
                    return self.partner(Value::Object(m), name);
                }
                if m.contains_key("isServiceDefault") || has_section_keys(&m) {
                    return self.default(Value::Object(m), name);
                }
                if m.contains_key("displayName") || m.is_empty() {
                    // The policy root without $expand: nothing to evaluate.
                    return Ok(());
                }
                let keys: Vec<&String> = m.keys().take(5).collect();
                bail!("{name}: not a cross-tenant access policy document (it has keys {keys:?}); expected the Graph response of /policies/crossTenantAccessPolicy/default or /partners, or {{\"default\": ..., \"partners\": [...]}}")
            }
            _ => bail!("{name}: not a cross-tenant access policy document: expected a JSON object or array"),
        }
    }

    fn default(&mut self, v: Value, at: &str) -> Result<()> {
        let d = default_config(v, at)?;
        for k in d.extra.keys().filter(|k| !is_ignorable_key(k)) {
            self.policy
                .warnings
                .push(format!("{at}: section `{k}` is not known to this version; kept and ignored"));
        }
        if self.policy.default.is_some() {
            self.errors.push(format!("{at}: a second default configuration"));
        }
        self.policy.default = Some(d);
        Ok(())
    }

    fn partner(&mut self, v: Value, at: &str) -> Result<()> {
        if !v.get("tenantId").is_some_and(|t| t.is_string()) {
            bail!("{at}: a partner configuration needs a `tenantId`");
        }
        let p = partner_config(v, at)?;
        for k in p.extra.keys().filter(|k| !is_ignorable_key(k)) {
            self.policy
                .warnings
                .push(format!("{at}: section `{k}` is not known to this version; kept and ignored"));
        }
        if self.policy.partners.contains_key(&p.tenant_id) {
            self.errors.push(format!("{at}: partner {} is configured twice", p.tenant_id));
            return Ok(());
        }
        self.policy.partners.insert(p.tenant_id, p);
        Ok(())
    }
}

/// A policy in our combined format `{"allowedCloudEndpoints", "default",
/// "partners"}` (stable key order, partners sorted by tenant), to serialize
/// straight to a writer: a proposal can name hundreds of thousands of
/// users, and a JSON `Value` of them costs some 500 bytes each.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Combined<'a> {
    allowed_cloud_endpoints: &'a [String],
    default: std::borrow::Cow<'a, DefaultConfig>,
    partners: Vec<&'a PartnerConfig>,
}

impl<'a> Combined<'a> {
    pub fn of(p: &'a Policy) -> Self {
        Combined {
            allowed_cloud_endpoints: &p.allowed_cloud_endpoints,
            default: p.default.as_ref().map_or_else(
                || std::borrow::Cow::Owned(super::model::service_default()),
                std::borrow::Cow::Borrowed,
            ),
            partners: p.partners.values().collect(),
        }
    }
}

/// Removes `key` and parses it; `null` and absent are `None`.
fn take<T: DeserializeOwned>(m: &mut Map, key: &str, at: &str) -> Result<Option<T>> {
    match m.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse(v, &format!("{at}.{key}")).map(Some),
    }
}

fn object(v: Value, at: &str) -> Result<Map> {
    match v {
        Value::Object(m) => Ok(m),
        other => bail!("{at}: expected an object, found {}", kind(&other)),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn settings(m: &mut Map, at: &str) -> Result<Settings> {
    Ok(Settings {
        b2b_collaboration_inbound: take(m, "b2bCollaborationInbound", at)?,
        b2b_collaboration_outbound: take(m, "b2bCollaborationOutbound", at)?,
        b2b_direct_connect_inbound: take(m, "b2bDirectConnectInbound", at)?,
        b2b_direct_connect_outbound: take(m, "b2bDirectConnectOutbound", at)?,
        inbound_trust: take(m, "inboundTrust", at)?,
        automatic_user_consent_settings: take(m, "automaticUserConsentSettings", at)?,
        tenant_restrictions: take(m, "tenantRestrictions", at)?,
    })
}

fn default_config(v: Value, at: &str) -> Result<DefaultConfig> {
    let mut m = object(v, at)?;
    Ok(DefaultConfig {
        is_service_default: take(&mut m, "isServiceDefault", at)?,
        settings: settings(&mut m, at)?,
        invitation_redemption_identity_provider_configuration: take(
            &mut m,
            "invitationRedemptionIdentityProviderConfiguration",
            at,
        )?,
        extra: m.into_iter().collect(),
    })
}

fn partner_config(v: Value, at: &str) -> Result<PartnerConfig> {
    let mut m = object(v, at)?;
    let tenant_id: Guid = take(&mut m, "tenantId", at)?
        .ok_or_else(|| anyhow::anyhow!("{at}: a partner configuration needs a `tenantId`"))?;
    Ok(PartnerConfig {
        tenant_id,
        is_service_provider: take(&mut m, "isServiceProvider", at)?,
        is_in_multi_tenant_organization: take(&mut m, "isInMultiTenantOrganization", at)?,
        settings: settings(&mut m, at)?,
        cloud: take(&mut m, "x-xtenant-cloud", at)?,
        extra: m.into_iter().collect(),
    })
}
