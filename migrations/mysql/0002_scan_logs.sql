CREATE TABLE scan_logs (
    scan_id     VARCHAR(64)  NOT NULL,
    id          BIGINT       NOT NULL,
    -- The line in German (the original's language) and in English.
    message     TEXT         NOT NULL,
    message_en  TEXT         NOT NULL,
    created_at  DATETIME(6)  NOT NULL,
    PRIMARY KEY (scan_id, id),
    FOREIGN KEY (scan_id) REFERENCES scan_progress (scan_id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
