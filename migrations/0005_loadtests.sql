-- Load test results (loadtest.run), one row per run, so a run compares with the previous
-- run of the same target. `report` is the merged loadgen JSON (histograms included);
-- `verdict` the thresholds' checks. Times are milliseconds since the Unix epoch.
CREATE TABLE loadtests (
    request_id  TEXT PRIMARY KEY,
    env         TEXT NOT NULL,
    target      TEXT NOT NULL,
    url         TEXT NOT NULL,
    requester   TEXT NOT NULL,
    workers     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    passed      BIGINT NOT NULL,
    report      TEXT NOT NULL,
    verdict     TEXT NOT NULL
);

CREATE INDEX loadtests_target ON loadtests (env, target, created_at);

-- Files an action hands to the request's thread (a load test's chart). Surfaces upload
-- them when an event's data names one; `data` is base64 so the column is portable.
CREATE TABLE attachments (
    id           TEXT PRIMARY KEY,
    request_id   TEXT NOT NULL,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    title        TEXT NOT NULL,
    data         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE INDEX attachments_request ON attachments (request_id);
