-- Every booking (Calendly invitee) seen, so a booking counts once however
-- often it is scanned.
CREATE TABLE bookings (
    invitee_uri  VARCHAR(700)  NOT NULL PRIMARY KEY,
    email        VARCHAR(320)  NOT NULL,
    event_uri    VARCHAR(700)  NOT NULL,
    start_time   DATETIME(6)   NOT NULL,
    canceled     BOOLEAN       NOT NULL DEFAULT FALSE,
    KEY bookings_email (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
