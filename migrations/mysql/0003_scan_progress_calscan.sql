-- What calscan adds to the original's scan_progress, in one statement (InnoDB
-- applies an ALTER whole or not at all). Every column has a default, so the
-- original's INSERT (scan_id, status, progress, current_step, started_at)
-- and its UPDATEs still work. The status ENUM gains values at its end (its
-- stored values keep their meaning); the timestamps gain microseconds (every
-- stored second stays what it was).
ALTER TABLE scan_progress
    MODIFY COLUMN status ENUM('running', 'completed', 'error', 'cancelled', 'interrupted') DEFAULT 'running',
    MODIFY COLUMN started_at DATETIME(6),
    MODIFY COLUMN completed_at DATETIME(6),
    ADD COLUMN mode VARCHAR(16) NOT NULL DEFAULT 'full',
    -- The step in English beside the original's German one.
    ADD COLUMN current_step_en TEXT NULL,
    ADD COLUMN events_total BIGINT NULL,
    -- The instance running the scan and until when its lease holds (unix ms).
    -- The PHP page keeps no lease: its running scans have neither.
    ADD COLUMN owner VARCHAR(64) NULL,
    ADD COLUMN lease_until_ms BIGINT NULL,
    -- The newest event id (log lines and progress events share the sequence).
    ADD COLUMN last_event_id BIGINT NOT NULL DEFAULT 0,
    -- A cancel asked on any instance, for the one running the scan to see.
    ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    -- 1 for the scan calscan runs, NULL for every other: its unique index is
    -- the one-running-scan rule (MySQL has no partial index). Scans the PHP
    -- page runs hold no lease and no slot, so its INSERT never fails here.
    ADD COLUMN running_slot TINYINT AS (CASE WHEN status = 'running' AND owner IS NOT NULL THEN 1 END) STORED,
    ADD UNIQUE KEY scan_progress_one_running (running_slot),
    ADD KEY scan_progress_started (started_at);
