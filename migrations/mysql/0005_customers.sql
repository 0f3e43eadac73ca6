CREATE TABLE customers (
    id                BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email             VARCHAR(320)  NOT NULL UNIQUE,
    name              TEXT,
    -- The name lower-cased in Rust (full Unicode), for search.
    name_folded       TEXT,
    bookings          BIGINT        NOT NULL DEFAULT 0,
    first_booking_at  DATETIME(6),
    last_booking_at   DATETIME(6),
    created_by_scan   VARCHAR(64),
    created_at        DATETIME(6)   NOT NULL,
    updated_at        DATETIME(6)   NOT NULL,
    KEY customers_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
