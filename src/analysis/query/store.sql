-- The sign-ins of an xtenant store (docs/store.md): already cross-tenant
-- and normalised, so only the window and the copies are left to handle.
sign_ins AS (
  SELECT s.*,
    CASE WHEN s.home = '{tenant}' THEN 'outbound' WHEN s.resource = '{tenant}' THEN 'inbound' END AS direction,
    CASE WHEN s.home = '{tenant}' THEN s.resource ELSE s.home END AS partner
  FROM (
    -- Copies of one sign-in (the same id in the same second) are one.
    SELECT min(struct(at, code, home, resource, user_key, app, res, app_owner, res_owner, app_name, res_name, upn,
      home_name, user_rank, access, by_claim, ca_details, plain_compliant, plain_hybrid, mfa_required, clauses)) AS s
    FROM (
      SELECT id, CAST(`time` AS TIMESTAMP) AS at, CAST(error_code AS BIGINT) AS code,
        home_tenant_id AS home, resource_tenant_id AS resource, user_id AS user_key, app_id AS app,
        resource_id AS res, app_owner_tenant_id AS app_owner, resource_owner_tenant_id AS res_owner, app_name,
        resource_name AS res_name, coalesce(user_principal_name, '') AS upn, home_tenant_name AS home_name,
        CASE user_type WHEN 'member' THEN 0 WHEN 'guest' THEN 1 ELSE 2 END AS user_rank,
        access_type AS access, mfa_by_claim AS by_claim, ca_details,
        compliant_device_required AS plain_compliant, hybrid_join_required AS plain_hybrid, mfa_required,
        coalesce(split(nullif(grant_clauses, ''), ';'), array()) AS clauses
      FROM {source}
    )
    WHERE home IS NOT NULL AND resource IS NOT NULL AND home <> resource{window}
    GROUP BY id, unix_seconds(at)
  )
),
