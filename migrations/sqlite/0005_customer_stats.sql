-- calscan's figures per customer move beside the customer table, keyed by
-- the normalized email (trimmed, lower-cased), so that the customer table can
-- be anyone's: calscan's own (this one) or a school's, which gains no column.
-- The figure columns of `customers` are copied and no longer written.
CREATE TABLE customer_stats (
    email             TEXT        PRIMARY KEY,
    -- The name lower-cased in Rust (full Unicode), for search.
    name_folded       TEXT,
    bookings          INTEGER     NOT NULL DEFAULT 0,
    first_booking_at  TEXT,
    last_booking_at   TEXT,
    created_by_scan   TEXT,
    created_at        TEXT        NOT NULL,
    updated_at        TEXT        NOT NULL
) WITHOUT ROWID;

INSERT INTO customer_stats (email, name_folded, bookings, first_booking_at, last_booking_at,
                            created_by_scan, created_at, updated_at)
SELECT email, name_folded, bookings, first_booking_at, last_booking_at,
       created_by_scan, created_at, updated_at
FROM customers;
