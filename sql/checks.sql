-- name: check_dangling_references
-- Counts, per reference of the default objects, rows that point at a missing record.
SELECT 'contacts.company_id' AS reference, count(*) AS dangling
FROM {{schema}}.contacts AS c
WHERE c.company_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM {{schema}}.companies AS t WHERE t.id = c.company_id)
UNION ALL
SELECT 'contacts.referred_by_id', count(*)
FROM {{schema}}.contacts AS c
WHERE c.referred_by_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM {{schema}}.contacts AS t WHERE t.id = c.referred_by_id)
UNION ALL
SELECT 'companies.parent_company_id', count(*)
FROM {{schema}}.companies AS c
WHERE c.parent_company_id IS NOT NULL
  AND NOT EXISTS (
      SELECT 1 FROM {{schema}}.companies AS t WHERE t.id = c.parent_company_id
  )
UNION ALL
SELECT 'opportunities.company_id', count(*)
FROM {{schema}}.opportunities AS o
WHERE o.company_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM {{schema}}.companies AS t WHERE t.id = o.company_id)
UNION ALL
SELECT 'opportunities.primary_contact_id', count(*)
FROM {{schema}}.opportunities AS o
WHERE o.primary_contact_id IS NOT NULL
  AND NOT EXISTS (
      SELECT 1 FROM {{schema}}.contacts AS t WHERE t.id = o.primary_contact_id
  )
UNION ALL
SELECT 'notes.contact_id', count(*)
FROM {{schema}}.notes AS n
WHERE n.contact_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM {{schema}}.contacts AS t WHERE t.id = n.contact_id)
UNION ALL
SELECT 'notes.company_id', count(*)
FROM {{schema}}.notes AS n
WHERE n.company_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM {{schema}}.companies AS t WHERE t.id = n.company_id)
UNION ALL
SELECT 'opportunity_contacts.contact_id', count(*)
FROM {{schema}}.opportunity_contacts AS j
WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.contacts AS t WHERE t.id = j.contact_id)
UNION ALL
SELECT 'opportunity_contacts.opportunity_id', count(*)
FROM {{schema}}.opportunity_contacts AS j
WHERE NOT EXISTS (
    SELECT 1 FROM {{schema}}.opportunities AS t WHERE t.id = j.opportunity_id
)
UNION ALL
SELECT 'match_keys.record_id', count(*)
FROM {{schema}}.match_keys AS k
WHERE (
    k.object_name = 'contacts'
    AND NOT EXISTS (SELECT 1 FROM {{schema}}.contacts AS t WHERE t.id = k.record_id)
) OR (
    k.object_name = 'companies'
    AND NOT EXISTS (SELECT 1 FROM {{schema}}.companies AS t WHERE t.id = k.record_id)
);

-- name: check_self_references
-- Counts records of the default objects that reference themselves.
SELECT 'contacts.referred_by_id' AS reference, count(*) AS rows
FROM {{schema}}.contacts
WHERE referred_by_id = id
UNION ALL
SELECT 'companies.parent_company_id', count(*)
FROM {{schema}}.companies
WHERE parent_company_id = id;

-- name: check_record_counts
-- Counts the rows of every table of the default objects, and the merge audit entries.
SELECT
    (SELECT count(*) FROM {{schema}}.contacts) AS contacts,
    (SELECT count(*) FROM {{schema}}.companies) AS companies,
    (SELECT count(*) FROM {{schema}}.opportunities) AS opportunities,
    (SELECT count(*) FROM {{schema}}.notes) AS notes,
    (SELECT count(*) FROM {{schema}}.opportunity_contacts) AS opportunity_contacts,
    (SELECT count(*) FROM {{schema}}.merge_audit) AS merge_audit;

-- name: check_note_owners
-- Lists every note with the contact and company it belongs to.
SELECT id, contact_id, company_id
FROM {{schema}}.notes;

-- name: check_opportunity_links
-- Lists every opportunity-contact link.
SELECT opportunity_id, contact_id
FROM {{schema}}.opportunity_contacts;

-- name: check_contact_references
-- Lists every contact with the company and contact it references.
SELECT id, company_id, referred_by_id
FROM {{schema}}.contacts;

-- name: check_opportunity_references
-- Lists every opportunity with the company and primary contact it references.
SELECT id, company_id, primary_contact_id
FROM {{schema}}.opportunities;

-- name: check_merge_audit
-- Lists every merge of the organization: the master and the duplicates it absorbed.
SELECT object_name, master_id, duplicate_ids, merged_at
FROM {{schema}}.merge_audit
ORDER BY merged_at, id;
