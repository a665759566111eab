-- The expiry sweep (`Store::expired_approvals`, every few seconds on every replica) asks
-- for pending approvals whose time ran out. With only `requests_state (state, created_at)`
-- it read every pending request to compare its expiry: on PostgreSQL a parallel sequential
-- scan of 40-90 ms at 100,000 pending requests, both cores busy while acks waited. With the
-- expiry in the index after the state, it reads only the expired ones.
CREATE INDEX requests_approval_expiry ON requests (state, approval_expires_at);
