-- Calendly webhook subscriptions made by `calscan webhooks subscribe`, with
-- the signing key calscan generated for each: the webhook route verifies
-- deliveries with these keys (and CALENDLY_WEBHOOK_SIGNING_KEY, when set).
CREATE TABLE webhook_subscriptions (
    uri           VARCHAR(700)  NOT NULL PRIMARY KEY,
    callback_url  TEXT          NOT NULL,
    signing_key   VARCHAR(255)  NOT NULL,
    created_at    DATETIME(6)   NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
