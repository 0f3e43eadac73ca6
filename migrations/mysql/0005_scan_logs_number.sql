-- The original's lines get their event ids: 1, 2, 3, … within each scan, in
-- the order they were written. Only the new column is set.
UPDATE scan_logs l
JOIN (
    SELECT id, ROW_NUMBER() OVER (PARTITION BY scan_id ORDER BY id) AS n
    FROM scan_logs
) numbered ON numbered.id = l.id
SET l.event_id = numbered.n
WHERE l.event_id = 0;
