-- 0004: search jobs and their trials.
--
-- A job searches model families and parameters on one data set within a
-- budget. Its trials are created by a scheduler when it proposes one (the
-- job's row locked FOR UPDATE SKIP LOCKED, so two schedulers never propose
-- for the same job at once) and are held by a lease (owner, expiry) that
-- the owner's heartbeat renews; a trial whose lease has expired is taken
-- over by any scheduler. A succeeded trial is a model: it has an artifact
-- and out-of-fold predictions, stored as large objects.

CREATE TABLE jobs (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id                uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    dataset_id             uuid REFERENCES datasets (id) ON DELETE SET NULL,
    state                  text NOT NULL DEFAULT 'queued'
                           CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    target                 text NOT NULL,
    task                   text NOT NULL CHECK (task IN ('classification', 'regression')),
    metric                 text NOT NULL,
    higher_is_better       boolean NOT NULL,
    models                 text[] NOT NULL,
    strategy               text NOT NULL CHECK (strategy IN ('random', 'tpe', 'asha')),
    max_trials             integer NOT NULL CHECK (max_trials BETWEEN 1 AND 100000),
    max_seconds            integer NOT NULL CHECK (max_seconds BETWEEN 1 AND 604800),
    trial_timeout_seconds  integer NOT NULL CHECK (trial_timeout_seconds BETWEEN 1 AND 86400),
    max_failed_trials      integer NOT NULL CHECK (max_failed_trials >= 0),
    parallelism            integer NOT NULL CHECK (parallelism BETWEEN 1 AND 1024),
    cv                     jsonb NOT NULL,            -- {"folds": 5} or {"holdout": 0.2}
    seed                   bigint NOT NULL,
    -- The search strategy's own state, persisted after every proposal and
    -- observation so that a restarted scheduler continues the same search.
    strategy_state         jsonb NOT NULL DEFAULT '{}',
    cancel_requested       boolean NOT NULL DEFAULT false,
    error                  text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    started_at             timestamptz,
    finished_at            timestamptz
);
-- GET /v1/jobs: newest first per team.
CREATE INDEX jobs_team_created_idx ON jobs (team_id, created_at DESC, id DESC);
-- Schedulers look for work among active jobs only.
CREATE INDEX jobs_active_idx ON jobs (created_at) WHERE state IN ('queued', 'running');
-- DELETE /v1/datasets/{id}: is a job running on it? The team leaderboard:
-- every job on a data set and target.
CREATE INDEX jobs_dataset_idx ON jobs (dataset_id, target);

CREATE TABLE trials (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id              uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    team_id             uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    seq                 integer NOT NULL,             -- 1, 2, ... within the job
    state               text NOT NULL DEFAULT 'running'
                        CHECK (state IN ('running', 'succeeded', 'failed', 'cancelled')),
    family              text NOT NULL,
    params              jsonb NOT NULL,
    lease_owner         text,                         -- the scheduler running it
    lease_expires_at    timestamptz,
    attempts            integer NOT NULL DEFAULT 1,   -- > 1: taken over after a lease expired
    progress            jsonb,                        -- the trainer's latest event
    learning_curve      jsonb NOT NULL DEFAULT '[]',  -- its iteration events (bounded)
    metrics             jsonb,                        -- the result event's metrics
    score               double precision,             -- the job's metric, mean over folds
    score_std           double precision,
    fit_seconds         double precision,
    predict_us_per_row  double precision,
    model_bytes         bigint,
    failure_reason      text,
    stderr_tail         text,
    artifact_lo         oid,
    artifact_sha256     bytea,
    oof_lo              oid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    UNIQUE (job_id, seq)
);
-- A job's trials in order (GET /v1/jobs/{id}/trials; the strategy's history).
CREATE INDEX trials_job_seq_idx ON trials (job_id, seq);
-- Taking over trials whose lease has expired.
CREATE INDEX trials_lease_idx ON trials (lease_expires_at) WHERE state = 'running';
-- Leaderboards: a job's succeeded trials by score.
CREATE INDEX trials_job_score_idx ON trials (job_id, score) WHERE state = 'succeeded';
