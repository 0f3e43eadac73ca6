-- The same logical schema as migrations/sqlite and migrations/postgres.
-- MySQL commits DDL as it goes, so each file holds one statement: a failed
-- migration is never half applied. Tables are InnoDB, utf8mb4 with binary
-- collation (exact comparisons, as on the other databases); timestamps are
-- DATETIME(6) in UTC; leases are unix ms.
CREATE TABLE scan_progress (
    id               BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    scan_id          VARCHAR(64)  NOT NULL UNIQUE,
    status           VARCHAR(16)  NOT NULL DEFAULT 'running'
                     CHECK (status IN ('running', 'completed', 'error', 'cancelled', 'interrupted')),
    mode             VARCHAR(16)  NOT NULL DEFAULT 'full',
    progress         BIGINT       NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    -- The step in German (the original's language) and in English.
    current_step     TEXT         NOT NULL,
    current_step_en  TEXT         NOT NULL,
    events_scanned   BIGINT       NOT NULL DEFAULT 0,
    events_total     BIGINT,
    emails_found     BIGINT       NOT NULL DEFAULT 0,
    new_count        BIGINT       NOT NULL DEFAULT 0,
    existing_count   BIGINT       NOT NULL DEFAULT 0,
    error_message    TEXT,
    started_at       DATETIME(6)  NOT NULL,
    completed_at     DATETIME(6),
    -- The instance running the scan and until when its lease holds.
    owner            VARCHAR(64),
    lease_until_ms   BIGINT,
    -- The newest event id (log lines and progress events share the sequence).
    last_event_id    BIGINT       NOT NULL DEFAULT 0,
    -- 1 for the running scan, NULL for every other: its unique index is the
    -- one-running-scan rule (MySQL has no partial index).
    running_slot     TINYINT AS (CASE WHEN status = 'running' THEN 1 END) STORED,
    UNIQUE KEY scan_progress_one_running (running_slot),
    KEY scan_progress_started (started_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
