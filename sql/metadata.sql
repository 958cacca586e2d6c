-- name: metadata_objects
-- Lists the objects of an organization in display order.
SELECT name, kind, table_name, label
FROM dupes_core.objects
WHERE org_id = $1::uuid
ORDER BY position, name;

-- name: metadata_fields
-- Lists the fields of every object of an organization in display order.
SELECT object_name, name, type, required, match_field, target_object
FROM dupes_core.object_fields
WHERE org_id = $1::uuid
ORDER BY object_name, position, name;

-- name: metadata_links
-- Lists the MANY_TO_MANY relations of an organization, one row per direction.
SELECT
    object_name,
    name,
    target_object,
    junction_table,
    source_column,
    target_column,
    extra_columns
FROM dupes_core.object_links
WHERE org_id = $1::uuid
ORDER BY object_name, name;
