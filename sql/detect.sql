-- Detection reads shared_keys: one row per key that two records or more hold, with
-- its holders listed oldest first (migrations/org/0002_detect_shared_keys.sql says
-- why). The first queries keep it up to date from the change log; each of the two
-- detect_groups queries then finds the groups of a request in one round trip.
--
-- Parameters of both detect_groups queries: $1 object name, $2 the match fields
-- asked for, $3 every match field in canonical order (email, phone, linkedin, name:
-- a field's position is its rank), $4 the number of groups to return, $5 the number
-- of records listed per group.
--
-- A group is one (field, key). Groups with equal record sets collapse into one,
-- grouped on the member array itself: members are always listed oldest first, so
-- equal sets are equal arrays. The reasons are a bit set of ranks. The first reason
-- and its key are the smallest "rank digit || key" in "C" order: one text min()
-- instead of a sorted aggregate per group. Keys compare in byte order ("C") so that
-- groups come out in the same order whatever the server's default collation.

-- name: detect_shared_keys_status
-- Tells whether shared_keys of an object were ever built and how many changes wait.
-- The count stops at $2, the backlog from which a full rebuild is cheaper.
SELECT
    EXISTS (
        SELECT 1
        FROM {{schema}}.shared_keys_state
        WHERE object_name = $1::text
    ) AS built,
    (
        SELECT count(*)
        FROM (
            SELECT 1
            FROM {{schema}}.match_key_changes
            WHERE object_name = $1::text
            LIMIT $2::bigint
        ) AS waiting
    ) AS pending;

-- name: detect_lock_shared_keys
-- Serializes the refreshes of one object's shared keys until the transaction ends.
-- Run alone, before the refresh statements: under READ COMMITTED each of them then
-- sees whatever the previous refresher committed.
SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0));

-- name: detect_apply_key_changes
-- Takes the logged changes of one object and recounts the holders of those keys.
-- Claiming and recounting share one snapshot: a change committed later stays in the
-- log for the next refresh. A key left with fewer than two holders is deleted, any
-- other is written whole; the two sets of keys are disjoint, so no row is touched
-- twice in the statement. Each changed key is one probe of match_keys' primary key
-- (the aggregate in LATERAL is never flattened into a join).
WITH claimed AS (
    DELETE FROM {{schema}}.match_key_changes
    WHERE object_name = $1::text
    RETURNING field, key
),
changed AS (
    SELECT DISTINCT c.field, c.key
    FROM claimed AS c
),
recounted AS (
    SELECT
        c.field,
        c.key,
        h.members,
        h.oldest_at,
        h.newest_at,
        h.members[cardinality(h.members)] AS newest_id
    FROM changed AS c
    CROSS JOIN LATERAL (
        SELECT
            array_agg(k.record_id ORDER BY t.created_at, k.record_id) AS members,
            min(t.created_at) AS oldest_at,
            max(t.created_at) AS newest_at
        FROM {{schema}}.match_keys AS k
        JOIN {{schema}}.{{table}} AS t
            ON t.id = k.record_id
        WHERE k.object_name = $1::text
            AND k.field = c.field
            AND k.key = c.key
    ) AS h
),
removed AS (
    DELETE FROM {{schema}}.shared_keys AS s
    USING recounted AS r
    WHERE s.object_name = $1::text
        AND s.field = r.field
        AND s.key = r.key
        AND coalesce(cardinality(r.members), 0) < 2
    RETURNING 1
),
written AS (
    INSERT INTO {{schema}}.shared_keys AS s (
        object_name, field, key, members, oldest_at, newest_at, newest_id
    )
    SELECT $1::text, r.field, r.key, r.members, r.oldest_at, r.newest_at, r.newest_id
    FROM recounted AS r
    WHERE cardinality(r.members) >= 2
    ON CONFLICT (object_name, field, key) DO UPDATE
    SET members = excluded.members,
        oldest_at = excluded.oldest_at,
        newest_at = excluded.newest_at,
        newest_id = excluded.newest_id
    WHERE (s.members, s.oldest_at, s.newest_at)
        IS DISTINCT FROM (excluded.members, excluded.oldest_at, excluded.newest_at)
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM changed) AS changed_keys,
    (SELECT count(*) FROM removed) AS removed_keys,
    (SELECT count(*) FROM written) AS written_keys;

-- name: detect_clear_key_changes
-- Takes every logged change of an object before a full rebuild. The rebuild reads a
-- later snapshot, so whatever was claimed here is part of it.
DELETE FROM {{schema}}.match_key_changes
WHERE object_name = $1::text;

-- name: detect_clear_shared_keys
-- Empties one object's shared keys before a full rebuild.
DELETE FROM {{schema}}.shared_keys
WHERE object_name = $1::text;

-- name: detect_fill_shared_keys
-- Rebuilds one object's shared keys from all of its match keys.
-- Holders are counted in the primary key's order (one pass, no sort); only the keys
-- held twice or more are joined to the records for their created_at.
INSERT INTO {{schema}}.shared_keys (
    object_name, field, key, members, oldest_at, newest_at, newest_id
)
SELECT
    $1::text,
    g.field,
    g.key,
    g.members,
    g.oldest_at,
    g.newest_at,
    g.members[cardinality(g.members)]
FROM (
    SELECT
        h.field,
        h.key,
        array_agg(h.record_id ORDER BY t.created_at, h.record_id) AS members,
        min(t.created_at) AS oldest_at,
        max(t.created_at) AS newest_at
    FROM (
        SELECT
            k.field,
            k.key,
            k.record_id,
            count(*) OVER (PARTITION BY k.field, k.key) AS holder_count
        FROM {{schema}}.match_keys AS k
        WHERE k.object_name = $1::text
    ) AS h
    JOIN {{schema}}.{{table}} AS t
        ON t.id = h.record_id
    WHERE h.holder_count >= 2
    GROUP BY h.field, h.key
    HAVING count(*) >= 2
) AS g;

-- name: detect_rebuild_timeout
-- Lifts the statement timeout for the rest of a rebuild's transaction.
SELECT set_config('statement_timeout', $1::text, true);

-- name: detect_mark_shared_keys_built
-- Records that an object's shared keys are built and kept up to date from the log.
INSERT INTO {{schema}}.shared_keys_state (object_name, built_at)
VALUES ($1::text, now())
ON CONFLICT (object_name) DO UPDATE
SET built_at = excluded.built_at;

-- name: detect_work_mem
-- Gives the lifted-window query room to group every shared key in memory.
SELECT set_config('work_mem', $1::text, true);

-- name: detect_groups_window
-- The duplicate groups opened by the newest $6 records of one object.
-- Plan at 1M contacts (docs/performance.md): an index only scan of the table's
-- created_at index finds the window's oldest entry; a range scan of
-- shared_keys_newest_idx from that entry gives every key with a holder in the window
-- (the window is the newest records, so a key has a holder in it exactly when its
-- newest holder is); the collapse and the order work on those few thousand rows.
-- Members of the groups shown come from the primary key, one probe per group.
WITH window_start AS (
    -- The oldest record of the window: the $6-th newest, read off the created_at
    -- index without keeping the rows before it.
    SELECT t.created_at, t.id
    FROM {{schema}}.{{table}} AS t
    ORDER BY t.created_at DESC, t.id DESC
    OFFSET $6::bigint - 1
    LIMIT 1
),
scanned AS (
    -- A full window holds $6 records; a table smaller than the window is counted,
    -- which is cheap because it is small, and is scanned whole.
    SELECT
        CASE
            WHEN EXISTS (SELECT 1 FROM window_start) THEN $6::bigint
            ELSE (SELECT count(*) FROM {{schema}}.{{table}})
        END AS records_scanned
),
window_bound AS (
    -- Always exactly one row, so the range below is one parameterized index scan;
    -- with no window start (a table smaller than the window) every key is in it.
    SELECT
        coalesce(w.created_at, '-infinity') AS created_at,
        coalesce(w.id, '00000000-0000-0000-0000-000000000000') AS id
    FROM (VALUES (1)) AS one (row)
    LEFT JOIN window_start AS w
        ON true
),
key_groups AS (
    SELECT
        array_position($3::text[], s.field) AS rank,
        s.key,
        s.members,
        s.oldest_at
    FROM window_bound AS b
    JOIN {{schema}}.shared_keys AS s
        ON s.object_name = $1::text
        AND (s.newest_at, s.newest_id) >= (b.created_at, b.id)
    WHERE array_position($2::text[], s.field) IS NOT NULL
),
record_sets AS (
    SELECT
        cardinality(g.members) AS record_count,
        min(g.oldest_at) AS oldest_at,
        bit_or(1 << (g.rank - 1)) AS reason_bits,
        min((g.rank::text || g.key) COLLATE "C") AS first_reason
    FROM key_groups AS g
    GROUP BY g.members
),
top_groups AS (
    SELECT
        count(*) OVER () AS total_groups,
        r.record_count,
        r.oldest_at,
        r.reason_bits,
        r.first_reason
    FROM record_sets AS r
    ORDER BY r.record_count DESC, r.oldest_at, r.first_reason COLLATE "C"
    LIMIT $4::integer
)
SELECT
    sc.records_scanned,
    g.total_groups,
    g.record_count,
    g.reason_bits,
    g.first_reason,
    s.members[1:$5::integer] AS shown_ids
FROM scanned AS sc
LEFT JOIN top_groups AS g
    ON true
LEFT JOIN LATERAL (
    -- LIMIT keeps this a probe of the primary key per group shown; as a plain join
    -- the planner hashes all of shared_keys for fifty rows.
    SELECT k.members
    FROM {{schema}}.shared_keys AS k
    WHERE k.object_name = $1::text
        AND k.field = ($3::text[])[left(g.first_reason, 1)::integer]
        -- first_reason compares in "C"; the index holds keys in the default
        -- collation, which equality must name to be an index condition.
        AND k.key = substr(g.first_reason, 2) COLLATE "default"
    LIMIT 1
) AS s
    ON true
ORDER BY g.record_count DESC, g.oldest_at, g.first_reason COLLATE "C";

-- name: detect_groups_all
-- The duplicate groups over every record of one object.
-- Plan at 1M contacts (docs/performance.md): one sequential read of shared_keys (a
-- quarter of a million rows, against 3.7 million in match_keys); the collapse is one
-- hash aggregate on the member arrays, in memory (work_mem is raised for it, see
-- detect_work_mem); the total is counted on narrow rows without the arrays, and the
-- order is a top-N heap sort. The records are counted on the table's smallest index.
WITH scanned AS (
    SELECT count(*) AS records_scanned
    FROM {{schema}}.{{table}}
),
key_groups AS (
    SELECT
        array_position($3::text[], s.field) AS rank,
        s.key,
        s.members,
        s.oldest_at
    FROM {{schema}}.shared_keys AS s
    WHERE s.object_name = $1::text
        AND array_position($2::text[], s.field) IS NOT NULL
),
record_sets AS (
    SELECT
        cardinality(g.members) AS record_count,
        min(g.oldest_at) AS oldest_at,
        bit_or(1 << (g.rank - 1)) AS reason_bits,
        min((g.rank::text || g.key) COLLATE "C") AS first_reason
    FROM key_groups AS g
    GROUP BY g.members
),
top_groups AS (
    SELECT
        count(*) OVER () AS total_groups,
        r.record_count,
        r.oldest_at,
        r.reason_bits,
        r.first_reason
    FROM record_sets AS r
    ORDER BY r.record_count DESC, r.oldest_at, r.first_reason COLLATE "C"
    LIMIT $4::integer
)
SELECT
    sc.records_scanned,
    g.total_groups,
    g.record_count,
    g.reason_bits,
    g.first_reason,
    s.members[1:$5::integer] AS shown_ids
FROM scanned AS sc
LEFT JOIN top_groups AS g
    ON true
LEFT JOIN LATERAL (
    -- LIMIT keeps this a probe of the primary key per group shown; as a plain join
    -- the planner hashes all of shared_keys for fifty rows.
    SELECT k.members
    FROM {{schema}}.shared_keys AS k
    WHERE k.object_name = $1::text
        AND k.field = ($3::text[])[left(g.first_reason, 1)::integer]
        -- first_reason compares in "C"; the index holds keys in the default
        -- collation, which equality must name to be an index condition.
        AND k.key = substr(g.first_reason, 2) COLLATE "default"
    LIMIT 1
) AS s
    ON true
ORDER BY g.record_count DESC, g.oldest_at, g.first_reason COLLATE "C";

-- name: detect_records
-- Reads the records listed by the groups of one detection.
SELECT {{columns}}
FROM {{schema}}.{{table}}
WHERE id = ANY($1::uuid[]);
