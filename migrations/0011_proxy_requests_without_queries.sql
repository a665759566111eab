-- Proxy links no longer record query strings (issue 12): they can hold tokens and personal
-- data, and `proxy list` shows the recent requests to everyone who may list links. Rows
-- written before that change go; the links' hit counts are kept on the links themselves.
-- (Deleting, not trimming: SQLite and PostgreSQL share no function to find the '?'.)
DELETE FROM proxy_requests WHERE path LIKE '%?%';
