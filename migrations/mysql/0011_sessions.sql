-- Admin sessions; the id is stored as a digest of the cookie value.
CREATE TABLE sessions (
    id_hash     VARCHAR(128)  NOT NULL PRIMARY KEY,
    username    VARCHAR(255)  NOT NULL,
    expires_ms  BIGINT        NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
