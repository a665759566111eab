-- A browser shell link is bound to the first browser that opens it: the SHA-256 of a secret
-- kept in that browser's HttpOnly, SameSite=Strict cookie (issue 12).
ALTER TABLE shell_sessions ADD COLUMN browser_hash TEXT;
