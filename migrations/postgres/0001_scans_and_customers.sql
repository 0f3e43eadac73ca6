-- The same logical schema as migrations/sqlite, with PostgreSQL's own types.

CREATE TABLE scan_progress (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scan_id          TEXT        NOT NULL UNIQUE,
    status           TEXT        NOT NULL DEFAULT 'running'
                     CHECK (status IN ('running', 'completed', 'error', 'cancelled', 'interrupted')),
    mode             TEXT        NOT NULL DEFAULT 'full',
    progress         BIGINT      NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    -- The step in German (the original's language) and in English.
    current_step     TEXT        NOT NULL DEFAULT '',
    current_step_en  TEXT        NOT NULL DEFAULT '',
    events_scanned   BIGINT      NOT NULL DEFAULT 0,
    events_total     BIGINT,
    emails_found     BIGINT      NOT NULL DEFAULT 0,
    new_count        BIGINT      NOT NULL DEFAULT 0,
    existing_count   BIGINT      NOT NULL DEFAULT 0,
    error_message    TEXT,
    started_at       TIMESTAMPTZ NOT NULL,
    completed_at     TIMESTAMPTZ,
    -- The instance running the scan and until when (unix ms) its lease holds.
    owner            TEXT,
    lease_until_ms   BIGINT,
    -- The newest event id (log lines and progress events share the sequence).
    last_event_id    BIGINT      NOT NULL DEFAULT 0
);

-- One running scan at a time, whatever the number of processes.
CREATE UNIQUE INDEX scan_progress_one_running ON scan_progress (status) WHERE status = 'running';
CREATE INDEX scan_progress_started ON scan_progress (started_at);

CREATE TABLE scan_logs (
    scan_id     TEXT        NOT NULL REFERENCES scan_progress (scan_id) ON DELETE CASCADE,
    id          BIGINT      NOT NULL,
    -- The line in German (the original's language) and in English.
    message     TEXT        NOT NULL,
    message_en  TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scan_id, id)
);

-- The checkpoint: events a scan has fully recorded.
CREATE TABLE scan_events_done (
    scan_id    TEXT NOT NULL REFERENCES scan_progress (scan_id) ON DELETE CASCADE,
    event_uri  TEXT NOT NULL,
    PRIMARY KEY (scan_id, event_uri)
);

-- Each distinct email a scan found, and whether it was new to the customers.
CREATE TABLE scan_emails (
    scan_id  TEXT    NOT NULL REFERENCES scan_progress (scan_id) ON DELETE CASCADE,
    email    TEXT    NOT NULL,
    is_new   BOOLEAN NOT NULL,
    PRIMARY KEY (scan_id, email)
);

CREATE TABLE customers (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email             TEXT        NOT NULL UNIQUE,
    name              TEXT,
    -- The name lower-cased in Rust, for search.
    name_folded       TEXT,
    bookings          BIGINT      NOT NULL DEFAULT 0,
    first_booking_at  TIMESTAMPTZ,
    last_booking_at   TIMESTAMPTZ,
    created_by_scan   TEXT,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX customers_created ON customers (created_at);

-- Every booking (Calendly invitee) seen, so a booking counts once however
-- often it is scanned.
CREATE TABLE bookings (
    invitee_uri  TEXT        PRIMARY KEY,
    email        TEXT        NOT NULL,
    event_uri    TEXT        NOT NULL,
    start_time   TIMESTAMPTZ NOT NULL,
    canceled     BOOLEAN     NOT NULL DEFAULT FALSE
);
CREATE INDEX bookings_email ON bookings (email);

-- Admin sessions; the id is stored as a digest of the cookie value.
CREATE TABLE sessions (
    id_hash     TEXT   PRIMARY KEY,
    username    TEXT   NOT NULL,
    expires_ms  BIGINT NOT NULL
);
