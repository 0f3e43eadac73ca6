-- A cancel asked on any instance, for the one running the scan to see.
ALTER TABLE scan_progress ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;
