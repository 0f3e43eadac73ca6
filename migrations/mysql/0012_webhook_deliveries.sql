-- Calendly webhook deliveries taken in: one row per delivery (an event kind
-- for one invitee), so a repeat changes nothing, and for the admin page.
CREATE TABLE webhook_deliveries (
    delivery_key  VARCHAR(760)  NOT NULL PRIMARY KEY,
    event         VARCHAR(64)   NOT NULL,
    invitee_uri   VARCHAR(700)  NOT NULL,
    event_uri     VARCHAR(700)  NOT NULL,
    email         VARCHAR(320)  NOT NULL,
    name          TEXT,
    received_at   DATETIME(6)   NOT NULL,
    KEY webhook_deliveries_received (received_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
