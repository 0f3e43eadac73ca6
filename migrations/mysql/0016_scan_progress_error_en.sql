-- The error of a scan in English beside the original's German
-- error_message; NULL for what the PHP page wrote.
ALTER TABLE scan_progress ADD COLUMN error_message_en TEXT NULL;
