-- Both in milliseconds since the epoch: when a running scan expects to be
-- done (NULL until it can tell), and the start of the completed scan an
-- incremental scan reads on from, for its summary ("no new bookings since
-- the last scan"). SQLite adds one column a statement; the migration runs in
-- one transaction.
ALTER TABLE scan_progress ADD COLUMN eta_at BIGINT NULL;
ALTER TABLE scan_progress ADD COLUMN previous_scan_at BIGINT NULL;
