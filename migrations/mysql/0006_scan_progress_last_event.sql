-- The original's scans get their newest event id: their last line's, and
-- one more for the `done` of a finished scan. Only the new column is set.
UPDATE scan_progress p
SET p.last_event_id = (SELECT COALESCE(MAX(l.event_id), 0) FROM scan_logs l WHERE l.scan_id = p.scan_id)
    + CASE WHEN p.status = 'running' THEN 0 ELSE 1 END
WHERE p.last_event_id = 0;
