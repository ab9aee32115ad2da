-- Talking to the reviewer (issue 20): a command in one of redline's review threads (or on the pull
-- request) and its answer. One row per comment: the unique key is written in the same transaction
-- as the delivery, so a redelivered webhook, or the same comment under another delivery id, makes
-- no second job and no second answer.
CREATE TABLE conversations (
    id          BIGSERIAL PRIMARY KEY,
    repo        TEXT NOT NULL,
    pr_number   BIGINT NOT NULL,
    kind        TEXT NOT NULL,             -- review_comment (a reply in a thread) or issue_comment
    comment_id  BIGINT NOT NULL,           -- the comment that asks
    thread_id   BIGINT,                    -- the thread's first comment (redline's) for a reply
    command     TEXT NOT NULL,             -- explain, fix, ignore, ask, help
    argument    TEXT NOT NULL DEFAULT '',  -- the reason of `ignore`, the text of a question
    author      TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    job_id      BIGINT,
    answer_id   BIGINT,                    -- redline's answer, once posted
    outcome     TEXT,                      -- a short line: what the answer did
    audit       TEXT,                      -- JSON: what was sent to which LLM endpoint, if anything
    tokens_in   BIGINT NOT NULL DEFAULT 0,
    tokens_out  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    answered_at BIGINT
);
CREATE UNIQUE INDEX conversations_comment ON conversations (repo, kind, comment_id);
CREATE INDEX conversations_job ON conversations (job_id);

-- What `explain` and `fix` say about a finding: its message, CWE and suggested replacement.
ALTER TABLE findings ADD COLUMN message TEXT;
ALTER TABLE findings ADD COLUMN cwe TEXT;
ALTER TABLE findings ADD COLUMN suggestion TEXT;

-- What a review covered (JSON: full or incremental, since which head, files not reviewed), so that
-- the next push knows what is left to look at.
ALTER TABLE reviews ADD COLUMN scope TEXT;
