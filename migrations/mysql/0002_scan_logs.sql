-- The original's log table as it shipped (see 0001); its `id` stays the
-- AUTO_INCREMENT it was.
CREATE TABLE IF NOT EXISTS scan_logs (
    id INT AUTO_INCREMENT PRIMARY KEY,
    scan_id VARCHAR(50) NOT NULL,
    message TEXT,
    created_at DATETIME,
    INDEX idx_scan_id (scan_id),
    FOREIGN KEY (scan_id) REFERENCES scan_progress(scan_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
