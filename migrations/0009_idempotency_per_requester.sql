-- Idempotency keys belong to the person who sent them: another person's identical key
-- creates their own request instead of returning the first person's (issue 12).
DROP INDEX requests_idempotency;
CREATE UNIQUE INDEX requests_idempotency ON requests (surface, requester, idempotency_key);
