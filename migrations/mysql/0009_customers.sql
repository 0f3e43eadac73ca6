-- The customer table, where the school has none: an email and a name. Where
-- the school's own `customers` exists, it is kept as it is and used (calscan
-- reads its layout at start). calscan's figures per customer live in
-- customer_stats, so this table gains no column.
CREATE TABLE IF NOT EXISTS customers (
    id     BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email  VARCHAR(320)  NOT NULL,
    name   VARCHAR(255)  NULL,
    KEY customers_email (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
