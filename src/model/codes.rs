//! Sign-in error codes that cross-tenant access settings produce.
//!
//! From Microsoft's AADSTS error-code reference. Conditional Access failures
//! caused by missing inbound trust keep their own codes (53000-series,
//! 50076, ...) and are deliberately not listed here.

/// AADSTS500212 NotAllowedByOutboundPolicyTenant: the user's *home* tenant's
/// outbound settings block access to the resource tenant.
pub const OUTBOUND_POLICY_BLOCK: u32 = 500212;
/// AADSTS500213 NotAllowedByInboundPolicyTenant: the *resource* tenant's
/// inbound settings block this user.
pub const INBOUND_POLICY_BLOCK: u32 = 500213;
/// AADSTS5000211 NotAllowedTenantRestrictionsV2Tenant: a tenant-restrictions
/// v2 policy (device or network signal) blocks the target tenant.
pub const TENANT_RESTRICTIONS_V2_BLOCK: u32 = 5000211;
/// AADSTS500021 NotAllowedTenantRestrictedTenant: tenant restrictions v1
/// (proxy header) blocks the tenant.
pub const TENANT_RESTRICTIONS_V1_BLOCK: u32 = 500021;

/// Every code counted as a `policy_block`.
pub const POLICY_BLOCK_CODES: [u32; 4] =
    [OUTBOUND_POLICY_BLOCK, INBOUND_POLICY_BLOCK, TENANT_RESTRICTIONS_V2_BLOCK, TENANT_RESTRICTIONS_V1_BLOCK];

pub fn is_policy_block(code: u32) -> bool {
    POLICY_BLOCK_CODES.contains(&code)
}
