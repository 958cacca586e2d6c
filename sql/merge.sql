-- name: merge_guard_table
-- Holds the object's table against schema changes for the rest of the merge. ROW
-- EXCLUSIVE is what any UPDATE takes: it never blocks another merge, but it makes a
-- concurrent ADD FOREIGN KEY (which needs SHARE ROW EXCLUSIVE) wait, so the references
-- read from the catalog next stay complete until the merge commits.
LOCK TABLE {{schema}}.{{table}} IN ROW EXCLUSIVE MODE;

-- name: merge_lock_records
-- Locks the master and the duplicates in id order and reads them. FOR UPDATE also
-- blocks the KEY SHARE lock that a new foreign key to them needs, so no row can start
-- referencing a duplicate while the merge runs.
SELECT {{columns}}
FROM {{schema}}.{{table}}
WHERE id = ANY($1::uuid[])
ORDER BY id
FOR UPDATE;

-- name: merge_references
-- Lists every foreign key that points at one table, from the catalog, with its columns
-- and whether a foreign key that acts on delete (CASCADE, SET NULL, SET DEFAULT) points
-- at the referencing table in turn. (One with NO ACTION or RESTRICT needs no warning:
-- deleting a row it holds fails, and the merge answers 409.)
SELECT
    fk.conname::text AS constraint_name,
    source_ns.nspname::text AS source_schema,
    source.relname::text AS source_table,
    source.oid AS source_oid,
    ARRAY(
        SELECT attribute.attname::text
        FROM unnest(fk.conkey) WITH ORDINALITY AS key_part (attnum, position)
        JOIN pg_catalog.pg_attribute AS attribute
          ON attribute.attrelid = fk.conrelid
         AND attribute.attnum = key_part.attnum
        ORDER BY key_part.position
    ) AS source_columns,
    ARRAY(
        SELECT attribute.attname::text
        FROM unnest(fk.confkey) WITH ORDINALITY AS key_part (attnum, position)
        JOIN pg_catalog.pg_attribute AS attribute
          ON attribute.attrelid = fk.confrelid
         AND attribute.attnum = key_part.attnum
        ORDER BY key_part.position
    ) AS target_columns,
    EXISTS (
        SELECT 1
        FROM pg_catalog.pg_constraint AS inbound
        WHERE inbound.contype = 'f'
          AND inbound.confrelid = fk.conrelid
          AND inbound.confdeltype IN ('c', 'n', 'd')
    ) AS source_is_referenced
FROM pg_catalog.pg_constraint AS fk
JOIN pg_catalog.pg_class AS target ON target.oid = fk.confrelid
JOIN pg_catalog.pg_namespace AS target_ns ON target_ns.oid = target.relnamespace
JOIN pg_catalog.pg_class AS source ON source.oid = fk.conrelid
JOIN pg_catalog.pg_namespace AS source_ns ON source_ns.oid = source.relnamespace
WHERE fk.contype = 'f'
  -- A foreign key of a partitioned table is listed once, on the partitioned table.
  AND fk.conparentid = 0
  AND target_ns.nspname = $1::text
  AND target.relname = $2::text
ORDER BY source_ns.nspname, source.relname, fk.conname;

-- name: merge_unique_keys
-- Lists the unique indexes (primary keys and unique constraints included) of the given
-- tables: their key columns, whether NULLs count as equal, and whether the index has a
-- predicate or expressions. indnullsnotdistinct is read through to_jsonb because
-- PostgreSQL before 15 does not have the column.
SELECT
    ix.indrelid AS table_oid,
    COALESCE(owner.conname, index_class.relname)::text AS constraint_name,
    COALESCE((to_jsonb(ix) ->> 'indnullsnotdistinct')::boolean, false)
        AS nulls_not_distinct,
    (ix.indpred IS NOT NULL OR ix.indexprs IS NOT NULL) AS is_partial_or_expression,
    ARRAY(
        SELECT attribute.attname::text
        FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS key_part (attnum, position)
        JOIN pg_catalog.pg_attribute AS attribute
          ON attribute.attrelid = ix.indrelid
         AND attribute.attnum = key_part.attnum
        -- Columns after indnkeyatts are INCLUDE columns: stored, not unique.
        WHERE key_part.position <= ix.indnkeyatts
        ORDER BY key_part.position
    ) AS key_columns
FROM pg_catalog.pg_index AS ix
JOIN pg_catalog.pg_class AS index_class ON index_class.oid = ix.indexrelid
LEFT JOIN pg_catalog.pg_constraint AS owner
  ON owner.conindid = ix.indexrelid
 AND owner.contype IN ('p', 'u')
WHERE ix.indisunique
  AND ix.indrelid = ANY($1::oid[])
ORDER BY ix.indrelid, index_class.relname;

-- name: merge_count_blocking_references
-- Counts the rows that reference one of the duplicates through a foreign key the merge
-- cannot re-point (several columns, a column other than id, or another schema).
SELECT count(*)
FROM {{foreign_schema}}.{{foreign_table}}
WHERE ({{foreign_columns}}) IN (
    SELECT {{key_columns}}
    FROM {{schema}}.{{table}}
    WHERE id = ANY($1::uuid[])
);

-- name: merge_drop_self_links
-- Deletes the junction rows of the duplicates that would link the master to itself: the
-- row's partner column already names the master or one of the duplicates.
-- $1 master and duplicates, $2 duplicates.
DELETE FROM {{schema}}.{{source_table}}
WHERE {{column}} = ANY($2::uuid[])
  AND ARRAY[{{partner_columns}}]::uuid[] && $1::uuid[]
RETURNING to_jsonb({{source_table}}.*)::text AS row_json;

-- name: merge_drop_repeated_rows
-- Deletes the junction rows of the duplicates that, once re-pointed to the master, would
-- repeat on one unique key a row the master has, or a row of a duplicate that comes
-- earlier in duplicate_ids. Rows are named by their key values, not by ctid, so that a
-- row changed concurrently is judged again on its new values.
-- $1 master, $2 duplicates in request order, $3 whether the key's NULLs are equal.
WITH candidate AS (
    SELECT
        {{column}} AS old_ref,
        array_position($2::uuid[], {{column}}) AS rank,
        ROW({{other_columns}}) AS other_key
    FROM {{schema}}.{{source_table}}
    WHERE {{column}} = ANY($2::uuid[])
      -- Under the default NULLS DISTINCT a key holding a NULL never clashes.
      AND (ROW({{other_columns}}) IS NOT NULL OR $3::boolean)
),
master_key AS (
    SELECT ROW({{other_columns}}) AS other_key
    FROM {{schema}}.{{source_table}}
    WHERE {{column}} = $1::uuid
),
ranked AS (
    -- One duplicate cannot hold two rows with the same key, so ranks never tie.
    SELECT
        candidate.old_ref,
        candidate.other_key,
        row_number() OVER (
            PARTITION BY candidate.other_key
            ORDER BY candidate.rank
        ) AS place
    FROM candidate
),
repeated AS (
    SELECT ranked.old_ref, ranked.other_key
    FROM ranked
    WHERE ranked.place > 1
       OR EXISTS (
            SELECT 1
            FROM master_key
            WHERE master_key.other_key = ranked.other_key
        )
)
DELETE FROM {{schema}}.{{source_table}}
WHERE {{column}} = ANY($2::uuid[])
  AND ({{column}}, ROW({{other_columns}})) IN (
        SELECT old_ref, other_key
        FROM repeated
    )
RETURNING to_jsonb({{source_table}}.*)::text AS row_json;

-- name: merge_relink
-- Re-points every row of one referencing column from the duplicates to the master.
WITH moved AS (
    UPDATE {{schema}}.{{source_table}}
    SET {{column}} = $1::uuid
    WHERE {{column}} = ANY($2::uuid[])
    RETURNING 1
)
SELECT count(*) AS moved
FROM moved;

-- name: merge_relink_self
-- Re-points a self-reference of the object's own table (referred_by_id...): rows that
-- are neither master nor duplicate move to the master; the master's own reference to
-- a duplicate would point at itself and is cleared. Duplicates' rows are left alone:
-- they are deleted next.
WITH cleared AS (
    UPDATE {{schema}}.{{table}}
    SET {{self_column}} = NULL
    WHERE id = $1::uuid
      AND {{self_column}} = ANY($2::uuid[])
    RETURNING 1
),
moved AS (
    UPDATE {{schema}}.{{table}}
    SET {{self_column}} = $1::uuid
    WHERE {{self_column}} = ANY($2::uuid[])
      AND id <> $1::uuid
      AND id <> ALL($2::uuid[])
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM moved) AS moved,
    (SELECT count(*) FROM cleared) AS cleared;

-- name: merge_delete_duplicates
-- Deletes the duplicates once nothing references them, returning each whole row.
DELETE FROM {{schema}}.{{table}}
WHERE id = ANY($1::uuid[])
RETURNING id, to_jsonb({{table}}.*)::text AS row_json;

-- name: merge_write_master
-- Writes the master's resolved field values (given as one JSON object and converted to
-- the column types by jsonb_populate_record) with the merge time as updated_at.
UPDATE {{schema}}.{{table}}
SET
    ({{fields}}) = (
        SELECT {{fields}}
        FROM jsonb_populate_record(NULL::{{schema}}.{{table}}, $2::text::jsonb)
    ),
    updated_at = now(),
    keys_stale = false
WHERE id = $1::uuid
RETURNING {{columns}};

-- name: merge_check_deferred
-- Checks deferred constraints now, so that a merge that would fail at commit fails
-- inside the transaction, and a dry run predicts it.
SET CONSTRAINTS ALL IMMEDIATE;

-- name: merge_insert_audit
-- Records one merge: who, when, the master, each deleted duplicate as it was (with the
-- junction rows dropped from it) and the counts.
INSERT INTO {{schema}}.merge_audit (
    actor_user_id,
    actor_email,
    object_name,
    master_id,
    strategy,
    duplicate_ids,
    duplicates,
    counts
)
VALUES (
    $1::uuid,
    $2::text,
    $3::text,
    $4::uuid,
    $5::text,
    $6::uuid[],
    $7::text::jsonb,
    $8::text::jsonb
)
RETURNING id, merged_at;
