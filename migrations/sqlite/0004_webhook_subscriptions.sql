-- Calendly webhook subscriptions made by `calscan webhooks subscribe`, with
-- the signing key calscan generated for each: the webhook route verifies
-- deliveries with these keys (and CALENDLY_WEBHOOK_SIGNING_KEY, when set).
CREATE TABLE webhook_subscriptions (
    uri           TEXT NOT NULL PRIMARY KEY,
    callback_url  TEXT NOT NULL,
    signing_key   TEXT NOT NULL,
    created_at    TEXT NOT NULL
) WITHOUT ROWID;
