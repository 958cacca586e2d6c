-- name: detect_groups_window
-- Duplicate groups opened by the newest records of one object, collapsed and ordered.
WITH window_records AS (
    SELECT t.id
    FROM {{schema}}.{{table}} AS t
    ORDER BY t.created_at DESC, t.id DESC
    LIMIT $6::bigint
),
scanned AS (
    SELECT count(*) AS records_scanned
    FROM window_records
),
window_keys AS (
    SELECT DISTINCT k.field, k.key
    FROM window_records AS w
    JOIN {{schema}}.match_keys AS k
        ON k.object_name = $1::text
        AND k.record_id = w.id
    WHERE array_position($2::text[], k.field) IS NOT NULL
),
holders AS (
    SELECT
        wk.field,
        wk.key,
        k.record_id,
        count(*) OVER (PARTITION BY wk.field, wk.key) AS holder_count
    FROM window_keys AS wk
    JOIN {{schema}}.match_keys AS k
        ON k.object_name = $1::text
        AND k.field = wk.field
        AND k.key = wk.key
),
key_groups AS (
    SELECT
        h.field,
        h.key,
        array_agg(h.record_id ORDER BY t.created_at, h.record_id) AS members,
        min(t.created_at) AS oldest
    FROM holders AS h
    JOIN {{schema}}.{{table}} AS t
        ON t.id = h.record_id
    WHERE h.holder_count >= 2
    GROUP BY h.field, h.key
),
record_sets AS (
    SELECT
        g.members,
        min(g.oldest) AS oldest,
        array_agg(
            DISTINCT array_position($3::text[], g.field)
            ORDER BY array_position($3::text[], g.field)
        ) AS reason_ranks,
        (
            array_agg(
                g.key ORDER BY array_position($3::text[], g.field), g.key COLLATE "C"
            )
        )[1] AS match_value
    FROM key_groups AS g
    GROUP BY g.members
),
ranked AS (
    SELECT
        row_number() OVER (
            ORDER BY
                cardinality(s.members) DESC,
                s.oldest,
                s.reason_ranks[1],
                s.match_value COLLATE "C"
        ) AS position,
        count(*) OVER () AS total_groups,
        cardinality(s.members) AS record_count,
        s.reason_ranks,
        s.match_value,
        s.members[1:$5::integer] AS shown_ids
    FROM record_sets AS s
)
SELECT
    sc.records_scanned,
    r.position,
    r.total_groups,
    r.record_count,
    r.reason_ranks,
    r.match_value,
    r.shown_ids
FROM scanned AS sc
LEFT JOIN ranked AS r
    ON r.position <= $4::integer
ORDER BY r.position;

-- name: detect_groups_all
-- Duplicate groups over every record of one object, collapsed and ordered.
WITH scanned AS (
    SELECT count(*) AS records_scanned
    FROM {{schema}}.{{table}}
),
holders AS (
    SELECT
        k.field,
        k.key,
        k.record_id,
        count(*) OVER (PARTITION BY k.field, k.key) AS holder_count
    FROM {{schema}}.match_keys AS k
    WHERE k.object_name = $1::text
        AND array_position($2::text[], k.field) IS NOT NULL
),
key_groups AS (
    SELECT
        h.field,
        h.key,
        array_agg(h.record_id ORDER BY t.created_at, h.record_id) AS members,
        min(t.created_at) AS oldest
    FROM holders AS h
    JOIN {{schema}}.{{table}} AS t
        ON t.id = h.record_id
    WHERE h.holder_count >= 2
    GROUP BY h.field, h.key
),
record_sets AS (
    SELECT
        g.members,
        min(g.oldest) AS oldest,
        array_agg(
            DISTINCT array_position($3::text[], g.field)
            ORDER BY array_position($3::text[], g.field)
        ) AS reason_ranks,
        (
            array_agg(
                g.key ORDER BY array_position($3::text[], g.field), g.key COLLATE "C"
            )
        )[1] AS match_value
    FROM key_groups AS g
    GROUP BY g.members
),
ranked AS (
    SELECT
        row_number() OVER (
            ORDER BY
                cardinality(s.members) DESC,
                s.oldest,
                s.reason_ranks[1],
                s.match_value COLLATE "C"
        ) AS position,
        count(*) OVER () AS total_groups,
        cardinality(s.members) AS record_count,
        s.reason_ranks,
        s.match_value,
        s.members[1:$5::integer] AS shown_ids
    FROM record_sets AS s
)
SELECT
    sc.records_scanned,
    r.position,
    r.total_groups,
    r.record_count,
    r.reason_ranks,
    r.match_value,
    r.shown_ids
FROM scanned AS sc
LEFT JOIN ranked AS r
    ON r.position <= $4::integer
ORDER BY r.position;

-- name: detect_records
-- Reads the records listed by the groups of one detection.
SELECT {{columns}}
FROM {{schema}}.{{table}}
WHERE id = ANY($1::uuid[]);
