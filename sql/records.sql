-- Records of an organization's objects. {{schema}}, {{table}} and the column lists
-- come from the object metadata; values travel as bound parameters, a record's values
-- as one JSON object that PostgreSQL types column by column with
-- jsonb_populate_record, so one query text serves every object.

-- name: record_by_id
-- Reads one record by id.
SELECT {{columns}}
FROM {{schema}}.{{table}}
WHERE id = $1::uuid;

-- name: record_insert
-- Creates one record from a JSON object of its field values; keys are written by the
-- same transaction, so the row is not marked stale.
INSERT INTO {{schema}}.{{table}} ({{fields}}, keys_stale)
SELECT {{fields}}, false
FROM jsonb_populate_record(NULL::{{schema}}.{{table}}, $1::text::jsonb)
RETURNING {{columns}};

-- name: records_insert_many
-- Creates several records from a JSON array of objects that carry their own ids.
INSERT INTO {{schema}}.{{table}} ({{fields}}, keys_stale)
SELECT {{fields}}, false
FROM jsonb_populate_recordset(NULL::{{schema}}.{{table}}, $1::text::jsonb)
RETURNING {{columns}};

-- name: record_update
-- Sets the given fields of one record from a JSON object; the rest stay as they are.
UPDATE {{schema}}.{{table}}
SET
    ({{fields}}) = (
        SELECT {{fields}}
        FROM jsonb_populate_record(NULL::{{schema}}.{{table}}, $2::text::jsonb)
    ),
    keys_stale = false,
    updated_at = now()
WHERE id = $1::uuid
RETURNING {{columns}};

-- name: record_touch
-- Marks one record written without changing a field (an empty PATCH).
UPDATE {{schema}}.{{table}}
SET updated_at = now()
WHERE id = $1::uuid
RETURNING {{columns}};

-- name: record_delete
-- Deletes one record; its match keys go with it by trigger, its dependants by the
-- foreign keys' ON DELETE rules.
DELETE FROM {{schema}}.{{table}}
WHERE id = $1::uuid
RETURNING id;

-- name: records_existing_ids
-- Which of the given ids are records of this object, held until the transaction ends:
-- FOR KEY SHARE is the lock a foreign key check takes, so a record found here cannot
-- be deleted (or merged away) before the rows that name it are written, and one being
-- deleted right now is waited for and then not found.
SELECT id
FROM {{schema}}.{{table}}
WHERE id = ANY($1::uuid[])
ORDER BY id
FOR KEY SHARE;

-- name: records_page
-- One page of records after a keyset position, oldest first. The first page starts
-- from (-infinity, nil uuid); rows inserted or deleted between pages never shift it.
SELECT {{columns}}
FROM {{schema}}.{{table}}
WHERE (created_at, id) > ($1::timestamptz, $2::uuid)
ORDER BY created_at, id
LIMIT $3::integer;

-- name: records_count
-- How many records an object holds.
SELECT count(*)
FROM {{schema}}.{{table}};

-- name: records_page_filtered
-- One page of the records whose filter columns equal the values of a JSON object.
-- The row comparison with a one-row sub-select becomes plain equality conditions on
-- parameters, so an index on a filter column is used.
SELECT {{columns}}
FROM {{schema}}.{{table}}
WHERE (created_at, id) > ($1::timestamptz, $2::uuid)
  AND ({{filters}}) = (
      SELECT {{filters}}
      FROM jsonb_populate_record(NULL::{{schema}}.{{table}}, $4::text::jsonb)
  )
ORDER BY created_at, id
LIMIT $3::integer;

-- name: records_count_filtered
-- How many records match the filter columns' values given as a JSON object.
SELECT count(*)
FROM {{schema}}.{{table}}
WHERE ({{filters}}) = (
    SELECT {{filters}}
    FROM jsonb_populate_record(NULL::{{schema}}.{{table}}, $1::text::jsonb)
);

-- name: links_of_record
-- The MANY_TO_MANY links of one record through a junction table, oldest first.
SELECT {{link_columns}}
FROM {{schema}}.{{junction}}
WHERE {{source}} = $1::uuid
ORDER BY created_at, {{target}};

-- name: link_upsert
-- Links two records, or updates the link's extra columns when it exists.
INSERT INTO {{schema}}.{{junction}} ({{source}}, {{target}}, {{extras}})
SELECT $1::uuid, $2::uuid, {{extras}}
FROM jsonb_populate_record(NULL::{{schema}}.{{junction}}, $3::text::jsonb)
ON CONFLICT ({{source}}, {{target}}) DO UPDATE
SET
    ({{extras}}) = (
        SELECT {{extras}}
        FROM jsonb_populate_record(NULL::{{schema}}.{{junction}}, $3::text::jsonb)
    ),
    updated_at = now()
RETURNING {{link_columns}}, (xmax = 0) AS inserted;

-- name: link_upsert_plain
-- Links two records through a junction without extra columns; idempotent.
INSERT INTO {{schema}}.{{junction}} ({{source}}, {{target}})
VALUES ($1::uuid, $2::uuid)
ON CONFLICT ({{source}}, {{target}}) DO UPDATE
SET updated_at = now()
RETURNING {{link_columns}}, (xmax = 0) AS inserted;

-- name: link_delete
-- Removes the link between two records, if there is one.
DELETE FROM {{schema}}.{{junction}}
WHERE {{source}} = $1::uuid
  AND {{target}} = $2::uuid
RETURNING {{target}};

-- name: existing_match_keys
-- Which of the given (field, key) pairs some record of the object already holds.
SELECT DISTINCT mk.field, mk.key
FROM {{schema}}.match_keys AS mk
JOIN unnest($2::text[], $3::text[]) AS wanted (field, key)
    ON wanted.field = mk.field
   AND wanted.key = mk.key
WHERE mk.object_name = $1::text;

-- name: import_lock
-- Serializes imports of one object in one organization until the transaction ends,
-- so that two imports cannot both create a record the other would call a duplicate.
SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0));
