-- The sign-ins, one row each: only cross-tenant records, a sign-in id
-- counted once per second (as xtenant does), the Conditional Access
-- evidence reduced per sign-in without exploding its policies.
records AS (
  SELECT properties AS p, `time` AS envelope_time, resultType AS envelope_result
  FROM {source}
  WHERE properties.homeTenantId IS NOT NULL AND properties.resourceTenantId IS NOT NULL
    AND lower(properties.homeTenantId) <> lower(properties.resourceTenantId)
),
fields AS (
  SELECT
    regexp_replace(p.id, '^[ \t\r\n]+|[ \t\r\n]+$', '') AS id_text,
    regexp_replace(p.homeTenantId, '^[ \t\r\n]+|[ \t\r\n]+$', '') AS home_text,
    regexp_replace(p.resourceTenantId, '^[ \t\r\n]+|[ \t\r\n]+$', '') AS resource_text,
    CASE WHEN regexp_replace(p.createdDateTime, '[ \t\r\n]', '') <> '' THEN try_to_timestamp(p.createdDateTime)
         WHEN regexp_replace(envelope_time, '[ \t\r\n]', '') <> '' THEN try_to_timestamp(envelope_time) END AS at,
    coalesce(try_cast(p.status.errorCode AS BIGINT), try_cast(envelope_result AS BIGINT)) AS code,
    nullif(regexp_replace(p.userId, '^[ \t\r\n]+|[ \t\r\n]+$', ''), '') AS user_text,
    nullif(regexp_replace(p.appId, '^[ \t\r\n]+|[ \t\r\n]+$', ''), '') AS app_text,
    nullif(regexp_replace(p.resourceId, '^[ \t\r\n]+|[ \t\r\n]+$', ''), '') AS res_text,
    regexp_replace(p.appOwnerTenantId, '^[ \t\r\n]+|[ \t\r\n]+$', '') AS app_owner_text,
    regexp_replace(p.resourceOwnerTenantId, '^[ \t\r\n]+|[ \t\r\n]+$', '') AS res_owner_text,
    nullif(regexp_replace(p.appDisplayName, '^[ \t\r\n]+|[ \t\r\n]+$', ''), '') AS app_name,
    nullif(regexp_replace(p.resourceDisplayName, '^[ \t\r\n]+|[ \t\r\n]+$', ''), '') AS res_name,
    coalesce(regexp_replace(p.userPrincipalName, '^[ \t\r\n]+|[ \t\r\n]+$', ''), '') AS upn,
    nullif(regexp_replace(p.homeTenantName, '^[ \t\r\n]+|[ \t\r\n]+$', ''), '') AS home_name,
    lower(regexp_replace(p.userType, '[^A-Za-z0-9]', '')) AS kind,
    lower(regexp_replace(p.crossTenantAccessType, '[^A-Za-z0-9]', '')) AS access_text,
    coalesce(lower(regexp_replace(p.authenticationRequirement, '[^A-Za-z0-9]', '')) = 'multifactorauthentication', false) AS multi_factor,
    coalesce(({says:p.status.additionalDetails}), false)
      OR coalesce(exists(p.authenticationDetails, s -> {says:s.authenticationStepResultDetail}), false)
      OR coalesce(({says:p.mfaDetail.authDetail}), false) AS by_claim,
    p.appliedConditionalAccessPolicies IS NOT NULL AS ca_details,
    -- Each applied policy (result success or failure) as its grant controls'
    -- bits: 1 MFA, 2 compliant device, 4 hybrid join, 8 authentication
    -- strength, 16 any other control.
    transform(
      filter(p.appliedConditionalAccessPolicies,
        x -> lower(regexp_replace(x.result, '[^A-Za-z0-9]', '')) IN ('success', 'failure')),
      x -> named_struct(
        'id', regexp_replace(x.id, '^[ \t\r\n]+|[ \t\r\n]+$', ''),
        'strength', regexp_replace(coalesce(x.authenticationStrength.authenticationStrengthId, x.authenticationStrength.id), '^[ \t\r\n]+|[ \t\r\n]+$', ''),
        'bits', aggregate(coalesce(x.enforcedGrantControls, array()), 0, (acc, n) -> acc | ({control_bit:n})))) AS applied
  FROM records
),
evidence AS (
  SELECT
    CASE WHEN id_text RLIKE '{guid}' THEN lower(translate(id_text, '{}', '')) ELSE id_text END AS sign_in,
    at, code,
    lower(translate(home_text, '{}', '')) AS home,
    lower(translate(resource_text, '{}', '')) AS resource,
    CASE WHEN user_text RLIKE '{guid}' THEN lower(translate(user_text, '{}', '')) ELSE user_text END AS user_key,
    CASE WHEN app_text RLIKE '{guid}' THEN lower(translate(app_text, '{}', '')) ELSE app_text END AS app,
    CASE WHEN res_text RLIKE '{guid}' THEN lower(translate(res_text, '{}', '')) ELSE res_text END AS res,
    CASE WHEN app_owner_text RLIKE '{guid}' THEN lower(translate(app_owner_text, '{}', '')) END AS app_owner,
    CASE WHEN res_owner_text RLIKE '{guid}' THEN lower(translate(res_owner_text, '{}', '')) END AS res_owner,
    app_name, res_name, upn, home_name,
    CASE kind WHEN 'member' THEN 0 WHEN 'guest' THEN 1 ELSE 2 END AS user_rank,
    CASE access_text WHEN 'none' THEN 'none' WHEN 'b2bcollaboration' THEN 'b2bCollaboration'
      WHEN 'b2bdirectconnect' THEN 'b2bDirectConnect' WHEN 'microsoftsupport' THEN 'microsoftSupport'
      WHEN 'serviceprovider' THEN 'serviceProvider' WHEN 'passthrough' THEN 'passthrough' ELSE 'unknown' END AS access,
    by_claim, ca_details,
    -- A policy with several controls, or an authentication strength, is kept
    -- whole as a clause; one with a single control counts as that control.
    coalesce(exists(applied, x -> NOT ({needed:x.bits}) AND (x.bits & 1) > 0), false) AS plain_mfa,
    coalesce(exists(applied, x -> NOT ({needed:x.bits}) AND (x.bits & 2) > 0), false) AS plain_compliant,
    coalesce(exists(applied, x -> NOT ({needed:x.bits}) AND (x.bits & 4) > 0), false) AS plain_hybrid,
    coalesce(exists(applied, x -> x.bits = 8), false) AS strength_only,
    coalesce(exists(applied, x -> ({needed:x.bits}) AND (x.bits & 9) > 0), false) AS mfa_in_clause,
    multi_factor,
    transform(filter(applied, x -> {needed:x.bits}), x -> concat(
      CASE WHEN x.id RLIKE '{guid}' THEN lower(translate(x.id, '{}', '')) ELSE '-' END, ':',
      concat_ws('+',
        CASE WHEN (x.bits & 8) > 0 THEN concat('authenticationStrength=',
          CASE WHEN x.strength RLIKE '{guid}' THEN lower(translate(x.strength, '{}', '')) ELSE '?' END) END,
        CASE WHEN (x.bits & 2) > 0 THEN 'compliantDevice' END,
        CASE WHEN (x.bits & 4) > 0 THEN 'domainJoinedDevice' END,
        CASE WHEN (x.bits & 1) > 0 THEN 'mfa' END,
        CASE WHEN (x.bits & 16) > 0 THEN 'other' END))) AS clauses
  FROM fields
  WHERE id_text <> '' AND at IS NOT NULL AND code IS NOT NULL{window}
    AND home_text RLIKE '{guid}' AND resource_text RLIKE '{guid}'
    AND lower(translate(home_text, '{}', '')) <> lower(translate(resource_text, '{}', ''))
),
sign_ins AS (
  SELECT s.*,
    s.plain_mfa OR s.strength_only OR ((s.multi_factor OR s.by_claim) AND NOT s.mfa_in_clause) AS mfa_required,
    CASE WHEN s.home = '{tenant}' THEN 'outbound' WHEN s.resource = '{tenant}' THEN 'inbound' END AS direction,
    CASE WHEN s.home = '{tenant}' THEN s.resource ELSE s.home END AS partner
  FROM (
    -- Copies of one sign-in (the same id in the same second) are one.
    SELECT min(struct(at, code, home, resource, user_key, app, res, app_owner, res_owner, app_name, res_name, upn,
      home_name, user_rank, access, by_claim, ca_details, plain_mfa, plain_compliant, plain_hybrid, strength_only,
      mfa_in_clause, multi_factor, clauses)) AS s
    FROM evidence
    GROUP BY sign_in, unix_seconds(at)
  )
),
