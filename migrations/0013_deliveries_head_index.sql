-- The outbox asks for each request's oldest pending delivery ("no earlier pending row of the
-- same request"). With only (state, next_at) to answer that, PostgreSQL checked every pending
-- row against every other: under a backlog of 64,000 rows one poll took over 30 s and thread
-- updates stopped. This index answers the check with one lookup per row.
CREATE INDEX deliveries_pending_request ON deliveries (request_id, seq) WHERE state = 'pending';
