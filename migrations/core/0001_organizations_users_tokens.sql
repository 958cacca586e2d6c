-- Shared tables: organizations, their users and API tokens. They live in the core
-- schema, which the runner creates and puts first on the search path.

CREATE TABLE organizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    schema_name text NOT NULL UNIQUE CHECK (schema_name ~ '^org_[a-z0-9_]+$'),
    phone_region text NOT NULL DEFAULT 'US' CHECK (phone_region ~ '^[A-Z]{2}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email text NOT NULL CHECK (email LIKE '%_@_%'),
    role text NOT NULL CHECK (role IN ('admin', 'member')),
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- An email names one user across the installation, so the CLI can address users by it.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_org_id_idx ON users (org_id);

-- Only the SHA-256 of a token is kept. Tokens carry about 238 bits of randomness, so a
-- fast hash is enough: nothing can be brute-forced, and the lookup stays an index probe.
CREATE TABLE api_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz
);

CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id);

-- Every change to a token or a user is announced, so that each API process drops what
-- it cached about them within moments, whoever made the change (CLI, SQL, API).
CREATE FUNCTION notify_auth_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        'dupes_auth',
        TG_TABLE_NAME || ':' || COALESCE(NEW.id, OLD.id)::text
    );
    RETURN NULL;
END
$$;

CREATE TRIGGER api_tokens_notify
AFTER UPDATE OR DELETE ON api_tokens
FOR EACH ROW EXECUTE FUNCTION notify_auth_change();

CREATE TRIGGER users_notify
AFTER UPDATE OR DELETE ON users
FOR EACH ROW EXECUTE FUNCTION notify_auth_change();
