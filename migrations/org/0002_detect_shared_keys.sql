-- The keys that two records or more share, kept apart for detection.
--
-- match_keys holds every key of every record: at a million contacts, about 3.7
-- million rows, nearly all of them held by one record only. A duplicate group only
-- ever comes from a key held twice, so detection reads shared_keys instead: one row
-- per key that two records or more hold (about one key in fifteen in the
-- benchmark), with its holders already listed in the order a group shows them and
-- the newest holder's place in the scan window. Detection then never probes
-- match_keys once per record and key, and never joins the records:
--   - the default window is a range of shared_keys_newest_idx: a key belongs to the
--     window exactly when its newest holder does, because the window is the newest
--     records;
--   - the lifted window reads shared_keys once.
--
-- shared_keys is derived data, brought up to date by detection before it reads
-- (app/services/detect.py, refresh_shared_keys). Writers only append to a log:
-- every statement that changes match_keys, whoever runs it, adds the keys it touched
-- to match_key_changes, and detection recounts exactly those keys. An object without
-- a row in shared_keys_state has never been built (or was truncated) and is built in
-- full from match_keys.

CREATE TABLE shared_keys (
    object_name text NOT NULL,
    field text NOT NULL,
    key text NOT NULL,
    -- Every holder, oldest first (created_at, then id): equal sets, equal arrays.
    members uuid[] NOT NULL CHECK (cardinality(members) >= 2),
    oldest_at timestamptz NOT NULL,
    newest_at timestamptz NOT NULL,
    newest_id uuid NOT NULL,
    PRIMARY KEY (object_name, field, key)
);

-- The window's keys, newest holder first, in the window's own order.
CREATE INDEX shared_keys_newest_idx
    ON shared_keys (object_name, newest_at DESC, newest_id DESC);

CREATE TABLE match_key_changes (
    object_name text NOT NULL,
    field text NOT NULL,
    key text NOT NULL
);

CREATE INDEX match_key_changes_object_idx ON match_key_changes (object_name);

CREATE TABLE shared_keys_state (
    object_name text PRIMARY KEY,
    built_at timestamptz NOT NULL
);

-- One INSERT per statement, whatever the statement's size: a batch of keys written by
-- the service or a COPY of millions costs the log one statement, not a row trigger
-- per key. Repeated keys are left in; detection reads the log with DISTINCT.
CREATE FUNCTION log_inserted_match_keys() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    INSERT INTO match_key_changes (object_name, field, key)
    SELECT object_name, field, key
    FROM inserted_rows;
    RETURN NULL;
END
$$;

CREATE FUNCTION log_deleted_match_keys() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    INSERT INTO match_key_changes (object_name, field, key)
    SELECT object_name, field, key
    FROM deleted_rows;
    RETURN NULL;
END
$$;

CREATE FUNCTION log_updated_match_keys() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    INSERT INTO match_key_changes (object_name, field, key)
    SELECT object_name, field, key
    FROM old_rows
    UNION ALL
    SELECT object_name, field, key
    FROM new_rows;
    RETURN NULL;
END
$$;

-- TRUNCATE leaves no rows to log: the derived data is dropped and rebuilt in full.
CREATE FUNCTION forget_shared_keys() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    IF TG_NARGS = 0 THEN
        DELETE FROM shared_keys_state;
    ELSE
        DELETE FROM shared_keys_state
        WHERE object_name = TG_ARGV[0];
    END IF;
    RETURN NULL;
END
$$;

-- A record's created_at is copied into shared_keys; a change to it (plain SQL only:
-- the API never changes it) sends the record's keys to be recounted.
CREATE FUNCTION log_created_at_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    INSERT INTO match_key_changes (object_name, field, key)
    SELECT object_name, field, key
    FROM match_keys
    WHERE object_name = TG_ARGV[0]
      AND record_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER match_keys_log_insert
AFTER INSERT ON match_keys
REFERENCING NEW TABLE AS inserted_rows
FOR EACH STATEMENT EXECUTE FUNCTION log_inserted_match_keys();

CREATE TRIGGER match_keys_log_delete
AFTER DELETE ON match_keys
REFERENCING OLD TABLE AS deleted_rows
FOR EACH STATEMENT EXECUTE FUNCTION log_deleted_match_keys();

CREATE TRIGGER match_keys_log_update
AFTER UPDATE ON match_keys
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION log_updated_match_keys();

CREATE TRIGGER match_keys_forget_shared
AFTER TRUNCATE ON match_keys
FOR EACH STATEMENT EXECUTE FUNCTION forget_shared_keys();

CREATE TRIGGER contacts_forget_shared
AFTER TRUNCATE ON contacts
FOR EACH STATEMENT EXECUTE FUNCTION forget_shared_keys('contacts');

CREATE TRIGGER companies_forget_shared
AFTER TRUNCATE ON companies
FOR EACH STATEMENT EXECUTE FUNCTION forget_shared_keys('companies');

CREATE TRIGGER contacts_created_at_change
AFTER UPDATE OF created_at ON contacts
FOR EACH ROW
WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at)
EXECUTE FUNCTION log_created_at_change('contacts');

CREATE TRIGGER companies_created_at_change
AFTER UPDATE OF created_at ON companies
FOR EACH ROW
WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at)
EXECUTE FUNCTION log_created_at_change('companies');
