//! Sign-in error codes that cross-tenant access settings and tenant
//! restrictions produce.
//!
//! From Microsoft's AADSTS error-code reference (reference-error-codes) and
//! the tenant restrictions v2 article. Conditional Access failures caused
//! by missing inbound trust keep their own codes (53000-series, 50076, ...)
//! and are deliberately not listed here.

/// AADSTS500212 NotAllowedByOutboundPolicyTenant: "The user's administrator
/// has set an outbound access policy that doesn't allow access to the
/// resource tenant." The *home* tenant's outbound settings refused it.
pub const OUTBOUND_POLICY_BLOCK: u32 = 500212;
/// AADSTS500213 NotAllowedByInboundPolicyTenant: "The resource tenant's
/// cross-tenant access policy doesn't allow this user to access this
/// tenant." The *resource* tenant's inbound settings refused it.
pub const INBOUND_POLICY_BLOCK: u32 = 500213;
/// AADSTS5000211 NotAllowedTenantRestrictionsV2Tenant: "A tenant
/// restrictions policy added to this request by a device or network
/// administrator does not allow access to '{tenant}'." Enforced by the
/// tenant whose policy the device or network injected, independently of
/// the cross-tenant access settings that govern sign-ins.
pub const TENANT_RESTRICTIONS_V2_BLOCK: u32 = 5000211;
/// AADSTS500021: tenant restrictions v1 (the `Restrict-Access-To-Tenants`
/// proxy header) does not list the tenant.
pub const TENANT_RESTRICTIONS_V1_BLOCK: u32 = 500021;
/// AADSTS500022: the same tenant restrictions v1 refusal, as Microsoft's
/// reference lists it under a second code.
pub const TENANT_RESTRICTIONS_V1_BLOCK_ALT: u32 = 500022;

/// Every code counted as a `policy_block`.
pub const POLICY_BLOCK_CODES: [u32; 5] = [
    OUTBOUND_POLICY_BLOCK,
    INBOUND_POLICY_BLOCK,
    TENANT_RESTRICTIONS_V2_BLOCK,
    TENANT_RESTRICTIONS_V1_BLOCK,
    TENANT_RESTRICTIONS_V1_BLOCK_ALT,
];

/// Whether a sign-in with this error code succeeded: 0, in every export
/// (`status.errorCode`, Log Analytics `ResultType`).
pub fn is_success(code: u32) -> bool {
    code == 0
}

pub fn is_policy_block(code: u32) -> bool {
    POLICY_BLOCK_CODES.contains(&code)
}

/// A tenant restrictions refusal: not decided by cross-tenant access
/// settings, so replay never attributes it to them.
pub fn is_tenant_restriction(code: u32) -> bool {
    matches!(
        code,
        TENANT_RESTRICTIONS_V2_BLOCK | TENANT_RESTRICTIONS_V1_BLOCK | TENANT_RESTRICTIONS_V1_BLOCK_ALT
    )
}
