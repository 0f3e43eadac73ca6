-- MySQL/MariaDB is where the PHP scanner calscan replaces lives: its two
-- tables are calscan's on this database, so that a school's database is
-- adopted in place and a fresh one gets the very same layout. This file is
-- the original's DDL as it shipped; on a database that has it already, it
-- changes nothing. The files after it upgrade the table by adding only what
-- calscan needs, with defaults, so the original's own statements keep working.
-- MySQL commits DDL as it goes: one statement per file, so a failed migration
-- is never half applied.
CREATE TABLE IF NOT EXISTS scan_progress (
    id INT AUTO_INCREMENT PRIMARY KEY,
    scan_id VARCHAR(50) UNIQUE NOT NULL,
    status ENUM('running', 'completed', 'error') DEFAULT 'running',
    progress INT DEFAULT 0,
    current_step VARCHAR(255),
    events_scanned INT DEFAULT 0,
    emails_found INT DEFAULT 0,
    new_count INT DEFAULT 0,
    existing_count INT DEFAULT 0,
    error_message TEXT,
    started_at DATETIME,
    completed_at DATETIME,
    INDEX idx_scan_id (scan_id),
    INDEX idx_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
