-- The checkpoint: events a scan has fully recorded. calscan's own tables are
-- utf8mb4 with binary collation (exact comparisons, as on the other
-- databases); a column that refers to scan_progress takes its collation.
CREATE TABLE scan_events_done (
    scan_id    VARCHAR(50)   COLLATE utf8mb4_unicode_ci NOT NULL,
    event_uri  VARCHAR(700)  NOT NULL,
    PRIMARY KEY (scan_id, event_uri),
    FOREIGN KEY (scan_id) REFERENCES scan_progress (scan_id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
