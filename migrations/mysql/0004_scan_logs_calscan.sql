-- What calscan adds to the original's scan_logs (see 0003): the line's event
-- id within its scan (the SSE id; `id` stays the table's AUTO_INCREMENT) and
-- the line in English. Lines the PHP page writes get event id 0 until calscan
-- numbers them, when it reads their scan.
ALTER TABLE scan_logs
    MODIFY COLUMN created_at DATETIME(6),
    ADD COLUMN event_id BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN message_en TEXT NULL,
    ADD KEY scan_logs_event (scan_id, event_id);
