-- The checkpoint: events a scan has fully recorded.
CREATE TABLE scan_events_done (
    scan_id    VARCHAR(64)   NOT NULL,
    event_uri  VARCHAR(700)  NOT NULL,
    PRIMARY KEY (scan_id, event_uri),
    FOREIGN KEY (scan_id) REFERENCES scan_progress (scan_id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
