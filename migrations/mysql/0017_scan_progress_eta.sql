-- When a running scan expects to be done, in milliseconds since the epoch;
-- NULL until it can tell, and for what the PHP page wrote.
ALTER TABLE scan_progress ADD COLUMN eta_at BIGINT NULL;
