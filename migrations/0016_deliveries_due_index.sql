-- The outbox's poll asks for pending rows that are due, oldest first. Its index,
-- `deliveries_pending (state, next_at)`, also held every delivered and failed row: it grew
-- with every message ever posted, and marking a row delivered wrote a new entry for it
-- (the state is part of the key). This one holds the pending rows only: it stays the size of
-- the backlog, and a row leaves it when it is delivered or given up on.
DROP INDEX deliveries_pending;
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE state = 'pending';
