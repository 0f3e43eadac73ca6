-- In one statement (InnoDB applies an ALTER whole or not at all), both in
-- milliseconds since the epoch and NULL for what the PHP page wrote:
ALTER TABLE scan_progress
    -- when a running scan expects to be done, once it can tell,
    ADD COLUMN eta_at BIGINT NULL,
    -- and the start of the completed scan an incremental scan reads on from,
    -- for its summary ("no new bookings since the last scan").
    ADD COLUMN previous_scan_at BIGINT NULL;
