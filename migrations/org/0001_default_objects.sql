-- The default objects of an organization: contacts, companies, opportunities, notes,
-- the junction of opportunities and contacts, the match keys and the merge audit.
--
-- The runner executes this inside the organization's own schema (first on the search
-- path) with the setting dupes.org_id naming the organization, in one transaction.

-- Match keys of every record, maintained by the service. Detection reads only this
-- table: the primary key serves "who else holds this key", the second index serves
-- "which keys does this record hold".
CREATE TABLE match_keys (
    object_name text NOT NULL,
    field text NOT NULL,
    key text NOT NULL,
    record_id uuid NOT NULL,
    PRIMARY KEY (object_name, field, key, record_id)
);

CREATE INDEX match_keys_record_idx ON match_keys (object_name, record_id);

-- Rows written by anything but the service (COPY, another system's INSERT) are marked
-- stale, and re-keyed before detection reads them. The service's own writes compute the
-- keys in the same transaction and say so through the dupes.keys_fresh setting.
CREATE FUNCTION mark_keys_stale() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('dupes.keys_fresh', true) IS DISTINCT FROM 'on' THEN
        NEW.keys_stale := true;
    END IF;
    RETURN NEW;
END
$$;

-- Keys of a deleted record go with it, however it was deleted.
CREATE FUNCTION drop_match_keys() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    DELETE FROM match_keys
    WHERE object_name = TG_ARGV[0]
      AND record_id IN (SELECT id FROM deleted_rows);
    RETURN NULL;
END
$$;

CREATE TABLE companies (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    domain text,
    email text,
    phone text,
    linkedin_url text,
    industry text,
    employees numeric,
    parent_company_id uuid REFERENCES companies (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    keys_stale boolean NOT NULL DEFAULT true
);

CREATE TABLE contacts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    first_name text,
    last_name text,
    email text,
    additional_emails text[],
    phone text,
    additional_phones text[],
    linkedin_url text,
    job_title text,
    city text,
    company_id uuid REFERENCES companies (id) ON DELETE SET NULL,
    referred_by_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    keys_stale boolean NOT NULL DEFAULT true
);

CREATE TABLE opportunities (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL,
    amount numeric,
    stage text,
    close_date date,
    company_id uuid REFERENCES companies (id) ON DELETE SET NULL,
    primary_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    keys_stale boolean NOT NULL DEFAULT true
);

CREATE TABLE notes (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    body text NOT NULL,
    contact_id uuid REFERENCES contacts (id) ON DELETE CASCADE,
    company_id uuid REFERENCES companies (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    keys_stale boolean NOT NULL DEFAULT true
);

CREATE TABLE opportunity_contacts (
    id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    opportunity_id uuid NOT NULL REFERENCES opportunities (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    role text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (opportunity_id, contact_id)
);

-- The scan window of detection walks records newest first.
CREATE INDEX contacts_created_idx ON contacts (created_at DESC, id DESC);
CREATE INDEX companies_created_idx ON companies (created_at DESC, id DESC);
CREATE INDEX opportunities_created_idx ON opportunities (created_at DESC, id DESC);
CREATE INDEX notes_created_idx ON notes (created_at DESC, id DESC);

-- Foreign keys are indexed so that a merge re-points them by index, not by scan.
CREATE INDEX contacts_company_id_idx ON contacts (company_id);
CREATE INDEX contacts_referred_by_id_idx ON contacts (referred_by_id);
CREATE INDEX companies_parent_company_id_idx ON companies (parent_company_id);
CREATE INDEX opportunities_company_id_idx ON opportunities (company_id);
CREATE INDEX opportunities_primary_contact_id_idx ON opportunities (primary_contact_id);
CREATE INDEX notes_contact_id_idx ON notes (contact_id);
CREATE INDEX notes_company_id_idx ON notes (company_id);
CREATE INDEX opportunity_contacts_contact_id_idx ON opportunity_contacts (contact_id);

-- Finding stale rows is a probe of a small partial index, not a scan.
CREATE INDEX contacts_keys_stale_idx ON contacts (id) WHERE keys_stale;
CREATE INDEX companies_keys_stale_idx ON companies (id) WHERE keys_stale;

CREATE TRIGGER contacts_keys_stale
BEFORE INSERT OR UPDATE OF
    first_name, last_name, email, additional_emails, phone, additional_phones,
    linkedin_url
ON contacts
FOR EACH ROW EXECUTE FUNCTION mark_keys_stale();

CREATE TRIGGER companies_keys_stale
BEFORE INSERT OR UPDATE OF name, email, phone, linkedin_url
ON companies
FOR EACH ROW EXECUTE FUNCTION mark_keys_stale();

CREATE TRIGGER contacts_drop_keys
AFTER DELETE ON contacts
REFERENCING OLD TABLE AS deleted_rows
FOR EACH STATEMENT EXECUTE FUNCTION drop_match_keys('contacts');

CREATE TRIGGER companies_drop_keys
AFTER DELETE ON companies
REFERENCING OLD TABLE AS deleted_rows
FOR EACH STATEMENT EXECUTE FUNCTION drop_match_keys('companies');

-- One row per merge: who, when, the master, what each deleted duplicate held.
CREATE TABLE merge_audit (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    merged_at timestamptz NOT NULL DEFAULT now(),
    actor_user_id uuid NOT NULL,
    actor_email text NOT NULL,
    object_name text NOT NULL,
    master_id uuid NOT NULL,
    strategy text NOT NULL,
    duplicate_ids uuid[] NOT NULL,
    duplicates jsonb NOT NULL,
    counts jsonb NOT NULL
);

CREATE INDEX merge_audit_master_idx ON merge_audit (object_name, master_id);

-- The metadata that describes the tables above.
INSERT INTO dupes_core.objects (org_id, name, kind, table_name, label, position)
SELECT current_setting('dupes.org_id')::uuid, o.name, o.kind, o.name, o.label, o.position
FROM (
    VALUES
        ('contacts', 'person', 'Contacts', 1),
        ('companies', 'company', 'Companies', 2),
        ('opportunities', 'other', 'Opportunities', 3),
        ('notes', 'other', 'Notes', 4)
) AS o (name, kind, label, position);

INSERT INTO dupes_core.object_fields (
    org_id, object_name, name, type, required, match_field, target_object, position
)
SELECT current_setting('dupes.org_id')::uuid, f.*
FROM (
    VALUES
        ('contacts', 'first_name', 'text', false, 'name', NULL, 1),
        ('contacts', 'last_name', 'text', false, 'name', NULL, 2),
        ('contacts', 'email', 'email', false, 'email', NULL, 3),
        ('contacts', 'additional_emails', 'email_list', false, 'email', NULL, 4),
        ('contacts', 'phone', 'phone', false, 'phone', NULL, 5),
        ('contacts', 'additional_phones', 'phone_list', false, 'phone', NULL, 6),
        ('contacts', 'linkedin_url', 'linkedin', false, 'linkedin', NULL, 7),
        ('contacts', 'job_title', 'text', false, NULL, NULL, 8),
        ('contacts', 'city', 'text', false, NULL, NULL, 9),
        ('contacts', 'company_id', 'relation', false, NULL, 'companies', 10),
        ('contacts', 'referred_by_id', 'relation', false, NULL, 'contacts', 11),
        ('companies', 'name', 'text', true, 'name', NULL, 1),
        ('companies', 'domain', 'text', false, NULL, NULL, 2),
        ('companies', 'email', 'email', false, 'email', NULL, 3),
        ('companies', 'phone', 'phone', false, 'phone', NULL, 4),
        ('companies', 'linkedin_url', 'linkedin', false, 'linkedin', NULL, 5),
        ('companies', 'industry', 'text', false, NULL, NULL, 6),
        ('companies', 'employees', 'number', false, NULL, NULL, 7),
        ('companies', 'parent_company_id', 'relation', false, NULL, 'companies', 8),
        ('opportunities', 'name', 'text', true, NULL, NULL, 1),
        ('opportunities', 'amount', 'number', false, NULL, NULL, 2),
        ('opportunities', 'stage', 'text', false, NULL, NULL, 3),
        ('opportunities', 'close_date', 'date', false, NULL, NULL, 4),
        ('opportunities', 'company_id', 'relation', false, NULL, 'companies', 5),
        ('opportunities', 'primary_contact_id', 'relation', false, NULL, 'contacts', 6),
        ('notes', 'body', 'text', true, NULL, NULL, 1),
        ('notes', 'contact_id', 'relation', false, NULL, 'contacts', 2),
        ('notes', 'company_id', 'relation', false, NULL, 'companies', 3)
) AS f (object_name, name, type, required, match_field, target_object, position);

INSERT INTO dupes_core.object_links (
    org_id, object_name, name, target_object, junction_table, source_column,
    target_column, extra_columns
)
SELECT current_setting('dupes.org_id')::uuid, l.*
FROM (
    VALUES
        ('opportunities', 'contacts', 'contacts', 'opportunity_contacts',
         'opportunity_id', 'contact_id', ARRAY['role']),
        ('contacts', 'opportunities', 'opportunities', 'opportunity_contacts',
         'contact_id', 'opportunity_id', ARRAY['role'])
) AS l (
    object_name, name, target_object, junction_table, source_column, target_column,
    extra_columns
);
