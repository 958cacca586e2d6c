-- The object model of each organization, described as data. Services read these rows
-- to know which tables, columns and relations exist; per-organization migrations that
-- add a table add its rows here too.

CREATE TABLE objects (
    org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    kind text NOT NULL CHECK (kind IN ('person', 'company', 'other')),
    table_name text NOT NULL CHECK (table_name ~ '^[a-z][a-z0-9_]*$'),
    label text NOT NULL,
    position integer NOT NULL,
    PRIMARY KEY (org_id, name)
);

CREATE TABLE object_fields (
    org_id uuid NOT NULL,
    object_name text NOT NULL,
    name text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    type text NOT NULL CHECK (
        type IN (
            'text', 'email', 'email_list', 'phone', 'phone_list', 'linkedin',
            'number', 'date', 'relation'
        )
    ),
    required boolean NOT NULL DEFAULT false,
    -- Which match key this field feeds, if any.
    match_field text CHECK (match_field IN ('email', 'phone', 'linkedin', 'name')),
    -- For type 'relation': the object the foreign key points at.
    target_object text,
    position integer NOT NULL,
    PRIMARY KEY (org_id, object_name, name),
    FOREIGN KEY (org_id, object_name) REFERENCES objects (org_id, name) ON DELETE CASCADE,
    CHECK ((type = 'relation') = (target_object IS NOT NULL))
);

-- MANY_TO_MANY relations, one row per direction, both naming the same junction table.
-- BELONGS_TO_ONE relations are the fields of type 'relation'.
CREATE TABLE object_links (
    org_id uuid NOT NULL,
    object_name text NOT NULL,
    name text NOT NULL,
    target_object text NOT NULL,
    junction_table text NOT NULL CHECK (junction_table ~ '^[a-z][a-z0-9_]*$'),
    source_column text NOT NULL,
    target_column text NOT NULL,
    -- Extra columns of the junction row, settable in the association's body.
    extra_columns text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (org_id, object_name, name),
    FOREIGN KEY (org_id, object_name) REFERENCES objects (org_id, name) ON DELETE CASCADE
);
