-- What developers did with each posted finding (issue 8): open, fixed or dismissed, and why.
ALTER TABLE findings ADD COLUMN outcome_reason TEXT;
ALTER TABLE findings ADD COLUMN outcome_at BIGINT;
-- How many lines of code the fingerprint covers, to look for the same code after a push.
ALTER TABLE findings ADD COLUMN code_lines BIGINT NOT NULL DEFAULT 1;
CREATE INDEX findings_comment ON findings (repo, comment_id);
