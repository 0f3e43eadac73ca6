-- The error of a scan in English beside the German one in error_message.
ALTER TABLE scan_progress ADD COLUMN error_message_en TEXT NULL;
