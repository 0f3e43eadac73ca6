-- Calendly webhook deliveries taken in: one row per delivery (an event kind
-- for one invitee), so a repeat changes nothing, and for the admin page.
CREATE TABLE webhook_deliveries (
    delivery_key  TEXT NOT NULL PRIMARY KEY,
    event         TEXT NOT NULL,
    invitee_uri   TEXT NOT NULL,
    event_uri     TEXT NOT NULL,
    email         TEXT NOT NULL,
    name          TEXT,
    received_at   TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
