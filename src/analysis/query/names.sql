-- Names, owners and users: the newest over every cross-tenant sign-in, ties
-- to the greater (xtenant's rule).
app_names AS (
  SELECT app AS named, max_by(app_name, struct(at, app_name)) AS app_name
  FROM sign_ins WHERE app IS NOT NULL AND app_name IS NOT NULL GROUP BY app
),
res_names AS (
  SELECT res AS named, max_by(res_name, struct(at, res_name)) AS res_name
  FROM sign_ins WHERE res IS NOT NULL AND res_name IS NOT NULL GROUP BY res
),
tenant_names AS (
  SELECT home AS named, max_by(home_name, struct(at, home_name)) AS home_name
  FROM sign_ins WHERE home_name IS NOT NULL GROUP BY home
),
-- An app or resource id has one owner, whichever side of a sign-in it is on.
owners AS (
  SELECT owned, max_by(owner, struct(at, owner)) AS owner
  FROM (
    SELECT app AS owned, at, app_owner AS owner FROM sign_ins WHERE app IS NOT NULL AND app_owner IS NOT NULL
    UNION ALL
    SELECT res AS owned, at, res_owner AS owner FROM sign_ins WHERE res IS NOT NULL AND res_owner IS NOT NULL
  )
  GROUP BY owned
),
users AS (
  SELECT user_key AS named, max_by(named_struct('upn', upn, 'rank', user_rank), struct(at, upn, user_rank)) AS newest
  FROM sign_ins WHERE user_key IS NOT NULL GROUP BY user_key
),
