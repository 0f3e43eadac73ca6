-- Both in milliseconds since the epoch: when a running scan expects to be
-- done (NULL until it can tell), and the start of the completed scan an
-- incremental scan reads on from, for its summary ("no new bookings since
-- the last scan").
ALTER TABLE scan_progress ADD COLUMN eta_at BIGINT NULL, ADD COLUMN previous_scan_at BIGINT NULL;
