-- calscan's figures per customer, keyed by the normalized email (trimmed,
-- lower-cased), beside the customer table, whichever it is: the bookings
-- seen, the first and last, the scan that added the customer, the name
-- lower-cased in Rust (full Unicode) for search.
CREATE TABLE customer_stats (
    email             VARCHAR(320)  NOT NULL PRIMARY KEY,
    name_folded       TEXT,
    bookings          BIGINT        NOT NULL DEFAULT 0,
    first_booking_at  DATETIME(6),
    last_booking_at   DATETIME(6),
    created_by_scan   VARCHAR(64),
    created_at        DATETIME(6)   NOT NULL,
    updated_at        DATETIME(6)   NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
