-- When a running scan expects to be done, in milliseconds since the epoch;
-- NULL until it can tell, and for scans that are over.
ALTER TABLE scan_progress ADD COLUMN eta_at BIGINT NULL;
