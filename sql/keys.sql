-- name: mark_keys_fresh
-- Tells the stale-marking trigger that this transaction writes the keys itself.
SELECT set_config('dupes.keys_fresh', 'on', true);

-- name: delete_record_keys
-- Removes every match key of the given records of one object.
DELETE FROM {{schema}}.match_keys
WHERE object_name = $1::text
  AND record_id = ANY($2::uuid[]);

-- name: insert_record_keys
-- Stores match keys given as three parallel arrays (field, key, record id).
INSERT INTO {{schema}}.match_keys (object_name, field, key, record_id)
SELECT $1::text, k.field, k.key, k.record_id
FROM unnest($2::text[], $3::text[], $4::uuid[]) AS k (field, key, record_id)
ON CONFLICT DO NOTHING;

-- name: lock_stale_rows
-- Takes a batch of rows written outside the service, in id order, for re-keying.
-- FOR UPDATE without SKIP LOCKED: a row that another re-keyer holds is waited for and
-- then, no longer stale, left out, so a caller that returns has seen every stale row.
SELECT {{columns}}
FROM {{schema}}.{{table}}
WHERE keys_stale
ORDER BY id
LIMIT $1::integer
FOR UPDATE;

-- name: clear_stale_marks
-- Marks re-keyed rows fresh. keys_stale is outside the trigger's column list.
UPDATE {{schema}}.{{table}}
SET keys_stale = false
WHERE id = ANY($1::uuid[]);

-- name: mark_all_stale
-- Marks every row of an object stale, e.g. after the phone region changed.
UPDATE {{schema}}.{{table}}
SET keys_stale = true
WHERE NOT keys_stale;
