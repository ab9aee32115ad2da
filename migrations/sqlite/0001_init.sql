-- redline's store (SQLite). Times are unix milliseconds (BIGINT) so the same SQL runs on PostgreSQL.
CREATE TABLE deliveries (
    id          TEXT PRIMARY KEY,          -- X-GitHub-Delivery
    event       TEXT NOT NULL,
    action      TEXT,
    outcome     TEXT NOT NULL,             -- what the server decided: enqueued, cancelled, ignored, ...
    job_id      BIGINT,
    received_at BIGINT NOT NULL
);

CREATE TABLE installations (
    id           BIGINT PRIMARY KEY,
    account      TEXT NOT NULL,
    status       TEXT NOT NULL,            -- active, suspended, deleted
    repositories TEXT NOT NULL DEFAULT '[]',  -- JSON array of owner/name
    updated_at   BIGINT NOT NULL
);

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id     TEXT,
    installation_id BIGINT NOT NULL,
    repo            TEXT NOT NULL,
    pr_number       BIGINT NOT NULL,
    head_sha        TEXT NOT NULL,
    cause           TEXT NOT NULL,         -- opened, synchronize, comment, ...
    priority        BIGINT NOT NULL DEFAULT 0,
    status          TEXT NOT NULL,         -- queued, running, done, failed (retrying), dead, cancelled
    attempts        BIGINT NOT NULL DEFAULT 0,
    max_attempts    BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    run_after       BIGINT NOT NULL,
    last_error      TEXT,
    outcome         TEXT,                  -- a short line: what the job did
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX jobs_claim ON jobs (status, priority DESC, id);
CREATE INDEX jobs_pr ON jobs (repo, pr_number, status);

CREATE TABLE reviews (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          BIGINT NOT NULL,
    repo            TEXT NOT NULL,
    pr_number       BIGINT NOT NULL,
    head_sha        TEXT NOT NULL,
    verdict         TEXT NOT NULL,
    summary         TEXT NOT NULL,
    engine          TEXT NOT NULL,
    model           TEXT,
    prompt_version  TEXT,
    tokens_in       BIGINT NOT NULL DEFAULT 0,
    tokens_out      BIGINT NOT NULL DEFAULT 0,
    cost_usd        DOUBLE PRECISION NOT NULL DEFAULT 0,
    latency_ms      BIGINT NOT NULL,
    github_review_id BIGINT,
    audit           TEXT,                  -- JSON: what was sent to which LLM endpoint (issue 10)
    created_at      BIGINT NOT NULL
);
CREATE INDEX reviews_pr ON reviews (repo, pr_number);

CREATE TABLE findings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    review_id   BIGINT NOT NULL,
    repo        TEXT NOT NULL,
    pr_number   BIGINT NOT NULL,
    path        TEXT NOT NULL,
    line        BIGINT NOT NULL,
    end_line    BIGINT NOT NULL,
    severity    TEXT NOT NULL,
    category    TEXT NOT NULL,
    rule_id     TEXT,
    guidance    TEXT NOT NULL DEFAULT '[]', -- JSON array of knowledge ids
    confidence  DOUBLE PRECISION NOT NULL,
    source      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    placement   TEXT NOT NULL,             -- inline, summary (capped or refused by GitHub), repeat (already posted)
    comment_id  BIGINT,
    outcome     TEXT NOT NULL DEFAULT 'open',
    created_at  BIGINT NOT NULL
);
CREATE INDEX findings_pr ON findings (repo, pr_number, fingerprint);
