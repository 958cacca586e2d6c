-- name: find_principal
-- Finds a token by the hash of its secret, with its user and organization.
SELECT
    t.id AS token_id,
    t.expires_at,
    t.revoked_at,
    u.id AS user_id,
    u.email,
    u.role,
    u.is_active,
    o.id AS org_id,
    o.name AS org_name,
    o.schema_name,
    o.phone_region
FROM dupes_core.api_tokens AS t
JOIN dupes_core.users AS u ON u.id = t.user_id
JOIN dupes_core.organizations AS o ON o.id = u.org_id
WHERE t.token_hash = $1::bytea;

-- name: insert_organization
-- Creates an organization row; its schema is created by the caller.
INSERT INTO dupes_core.organizations (name, schema_name, phone_region)
VALUES ($1::text, $2::text, $3::text)
RETURNING id, name, schema_name, phone_region, created_at;

-- name: create_org_schema
-- Creates the empty schema of a new organization.
CREATE SCHEMA {{schema}};

-- name: get_organization_by_name
-- Finds an organization by its name.
SELECT id, name, schema_name, phone_region, created_at
FROM dupes_core.organizations
WHERE name = $1::text;

-- name: get_organization_by_id
-- Finds an organization by its id.
SELECT id, name, schema_name, phone_region, created_at
FROM dupes_core.organizations
WHERE id = $1::uuid;

-- name: list_organizations
-- Lists every organization, oldest first.
SELECT id, name, schema_name, phone_region, created_at
FROM dupes_core.organizations
ORDER BY created_at, id;

-- name: count_organizations
-- Counts organizations, to tell a first start from a later one.
SELECT count(*) FROM dupes_core.organizations;

-- name: insert_user
-- Creates a user of an organization.
INSERT INTO dupes_core.users (org_id, email, role)
VALUES ($1::uuid, $2::text, $3::text)
RETURNING id, org_id, email, role, is_active, created_at;

-- name: get_user_by_email
-- Finds a user by email, whatever its case, with its organization's name.
SELECT u.id, u.org_id, u.email, u.role, u.is_active, u.created_at, o.name AS org_name
FROM dupes_core.users AS u
JOIN dupes_core.organizations AS o ON o.id = u.org_id
WHERE lower(u.email) = lower($1::text);

-- name: set_user_active
-- Activates or deactivates a user; its cached tokens are dropped by the notify trigger.
UPDATE dupes_core.users
SET is_active = $2::boolean
WHERE id = $1::uuid
RETURNING id, email, is_active;

-- name: insert_token
-- Stores the hash of a new token.
INSERT INTO dupes_core.api_tokens (user_id, token_hash, prefix, expires_at)
VALUES ($1::uuid, $2::bytea, $3::text, $4::timestamptz)
RETURNING id, prefix, created_at, expires_at;

-- name: list_tokens
-- Lists tokens (never their secrets), optionally of one organization, newest first.
SELECT
    t.id,
    t.prefix,
    t.created_at,
    t.expires_at,
    t.revoked_at,
    u.email,
    u.role,
    o.name AS org_name
FROM dupes_core.api_tokens AS t
JOIN dupes_core.users AS u ON u.id = t.user_id
JOIN dupes_core.organizations AS o ON o.id = u.org_id
WHERE $1::text IS NULL OR o.name = $1::text
ORDER BY t.created_at DESC, t.id;

-- name: revoke_token
-- Revokes a token; the notify trigger tells every process to forget it.
UPDATE dupes_core.api_tokens
SET revoked_at = COALESCE(revoked_at, now())
WHERE id = $1::uuid
RETURNING id, revoked_at;
