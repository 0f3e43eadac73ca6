-- Each distinct email a scan found, and whether it was new to the customers.
CREATE TABLE scan_emails (
    scan_id  VARCHAR(50)   COLLATE utf8mb4_unicode_ci NOT NULL,
    email    VARCHAR(320)  NOT NULL,
    is_new   BOOLEAN       NOT NULL,
    PRIMARY KEY (scan_id, email),
    FOREIGN KEY (scan_id) REFERENCES scan_progress (scan_id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
