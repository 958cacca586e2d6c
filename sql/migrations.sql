-- name: create_core_schema
-- Creates the schema of the shared tables if it is missing.
CREATE SCHEMA IF NOT EXISTS dupes_core;

-- name: migrations_table
-- Creates the ledger of applied migrations if it is missing.
CREATE TABLE IF NOT EXISTS dupes_core.schema_migrations (
    scope text NOT NULL,
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, version)
);

-- name: applied_migrations
-- Lists the migrations already applied in one scope ('core' or an organization schema).
SELECT version, name, checksum
FROM dupes_core.schema_migrations
WHERE scope = $1::text
ORDER BY version;

-- name: record_migration
-- Records one applied migration with the checksum of its file.
INSERT INTO dupes_core.schema_migrations (scope, version, name, checksum)
VALUES ($1::text, $2::integer, $3::text, $4::text);

-- name: lock_migrations
-- Takes the lock that serializes every migration run and organization creation.
SELECT pg_advisory_lock(hashtext('dupes.migrations'));

-- name: unlock_migrations
-- Releases the lock taken by lock_migrations.
SELECT pg_advisory_unlock(hashtext('dupes.migrations'));

-- name: list_org_schemas
-- Lists every organization with its schema, oldest first.
SELECT id, schema_name
FROM dupes_core.organizations
ORDER BY created_at, id;
