-- 0005: job events. Every change to a job that a client can see (its state,
-- its budget, a trial started, progressing, finishing, a new best model) is
-- a row of job_events with a per-job sequence number 1, 2, 3, ... and a
-- NOTIFY podium_events '<job_id> <seq>' sent by the same transaction.
--
-- Triggers write the events, so every path that changes jobs and trials
-- (the server, any number of schedulers, an operator's psql) emits them and
-- none can forget to.
--
-- The counter lives in job_event_heads, not in jobs: bumping a column of
-- jobs from a trial's trigger would row-lock the job, and a scheduler
-- proposing a trial (SELECT ... FOR UPDATE OF j SKIP LOCKED) would then skip
-- that job while any of its trials is being written. The head row is the
-- only lock an event takes; it serializes a job's events, so they commit in
-- sequence order and a reader of "seq > N" never sees a gap that a slower
-- transaction fills later. A rolled-back event rolls its number back too.
-- The head also keeps the job's best score so far, so "new best" is one
-- comparison, not a scan of the trials.
--
-- Besides seq (every event: what a job's trials and events show), the head
-- keeps the seq of the last event that changes the job's own resource
-- (job_seq: all but trial_progress) and its leaderboard (board_seq: all but
-- trial_started, trial_progress and job_updated). They are what the
-- server's ETags are made of, so a poll of a leaderboard is not a full
-- answer each time a trial starts or reports progress.

CREATE TABLE job_event_heads (
    job_id      uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    seq         bigint NOT NULL DEFAULT 0,
    job_seq     bigint NOT NULL DEFAULT 0,
    board_seq   bigint NOT NULL DEFAULT 0,
    best_score  double precision,
    best_trial  uuid
);

CREATE TABLE job_events (
    job_id      uuid NOT NULL REFERENCES job_event_heads (job_id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    type        text NOT NULL,
    trial_id    uuid,
    data        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, seq)
);

-- Jobs that exist already start at 0 with their best so far.
INSERT INTO job_event_heads (job_id, seq, best_score, best_trial)
SELECT j.id, 0, b.score, b.id
  FROM jobs j
  LEFT JOIN LATERAL (SELECT t.id, t.score FROM trials t
                      WHERE t.job_id = j.id AND t.state = 'succeeded' AND t.score IS NOT NULL
                      ORDER BY CASE WHEN j.higher_is_better THEN -t.score ELSE t.score END, t.seq
                      LIMIT 1) b ON true;

-- Append one event to a job: the next number, the row, the notification
-- ('<job_id> <seq> <job_seq> <board_seq>').
CREATE FUNCTION podium_job_event(p_job uuid, p_type text, p_trial uuid, p_data jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    s bigint;
    js bigint;
    bs bigint;
BEGIN
    INSERT INTO job_event_heads AS h (job_id, seq, job_seq, board_seq) VALUES (p_job, 1, 1, 1)
    ON CONFLICT (job_id) DO UPDATE SET
        seq = h.seq + 1,
        job_seq = CASE WHEN p_type = 'trial_progress' THEN h.job_seq ELSE h.seq + 1 END,
        board_seq = CASE WHEN p_type IN ('trial_started', 'trial_progress', 'job_updated')
                         THEN h.board_seq ELSE h.seq + 1 END
    RETURNING h.seq, h.job_seq, h.board_seq INTO s, js, bs;
    INSERT INTO job_events (job_id, seq, type, trial_id, data)
    VALUES (p_job, s, p_type, p_trial, p_data);
    PERFORM pg_notify('podium_events', p_job::text || ' ' || s::text || ' ' || js::text
                                       || ' ' || bs::text);
    RETURN s;
END $$;

-- Trials: started (inserted, or taken over after a lease expired), progress
-- while running (the trainer's latest iteration, a few small members only),
-- finished (succeeded with its score, failed or cancelled with the reason),
-- a new best, and trial_updated for any other change a client can see.
CREATE FUNCTION podium_trial_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d jsonb;
    hib boolean;
    prev_score double precision;
    prev_trial uuid;
BEGIN
    IF TG_OP = 'INSERT' OR NEW.attempts IS DISTINCT FROM OLD.attempts THEN
        PERFORM podium_job_event(NEW.job_id, 'trial_started', NEW.id,
            jsonb_build_object('trial_seq', NEW.seq, 'family', NEW.family,
                               'attempt', NEW.attempts));
        IF TG_OP = 'INSERT' OR NEW.state = OLD.state THEN
            RETURN NULL;
        END IF;
    END IF;

    IF NEW.state IS DISTINCT FROM OLD.state THEN
        IF NEW.state = 'succeeded' THEN
            PERFORM podium_job_event(NEW.job_id, 'trial_succeeded', NEW.id,
                jsonb_build_object('trial_seq', NEW.seq, 'family', NEW.family,
                                   'score', NEW.score, 'score_std', NEW.score_std,
                                   'fit_seconds', NEW.fit_seconds));
            IF NEW.score IS NOT NULL AND NEW.score = NEW.score THEN  -- not NaN
                SELECT higher_is_better INTO hib FROM jobs WHERE id = NEW.job_id;
                -- The head row is locked by the event above: this read is current.
                SELECT best_score, best_trial INTO prev_score, prev_trial
                  FROM job_event_heads WHERE job_id = NEW.job_id;
                IF prev_score IS NULL OR (hib AND NEW.score > prev_score)
                   OR (NOT hib AND NEW.score < prev_score) THEN
                    UPDATE job_event_heads SET best_score = NEW.score, best_trial = NEW.id
                     WHERE job_id = NEW.job_id;
                    PERFORM podium_job_event(NEW.job_id, 'new_best', NEW.id,
                        jsonb_build_object('trial_seq', NEW.seq, 'family', NEW.family,
                                           'score', NEW.score,
                                           'previous_score', prev_score,
                                           'previous_trial_id', prev_trial));
                END IF;
            END IF;
        ELSIF NEW.state IN ('failed', 'cancelled') THEN
            PERFORM podium_job_event(NEW.job_id, 'trial_' || NEW.state, NEW.id,
                jsonb_build_object('trial_seq', NEW.seq, 'family', NEW.family,
                                   'reason', left(NEW.failure_reason, 300)));
        ELSE
            PERFORM podium_job_event(NEW.job_id, 'trial_updated', NEW.id,
                jsonb_build_object('trial_seq', NEW.seq, 'state', NEW.state));
        END IF;
        RETURN NULL;
    END IF;

    IF NEW.state = 'running' AND NEW.progress IS DISTINCT FROM OLD.progress
       AND jsonb_typeof(NEW.progress) = 'object' THEN
        SELECT coalesce(jsonb_object_agg(key, value), '{}') INTO d
          FROM jsonb_each(NEW.progress)
         WHERE key IN ('event', 'stage', 'fold', 'iteration', 'total', 'metric', 'value')
           AND length(value::text) <= 64;
        PERFORM podium_job_event(NEW.job_id, 'trial_progress', NEW.id,
            jsonb_build_object('trial_seq', NEW.seq) || d);
        RETURN NULL;
    END IF;

    PERFORM podium_job_event(NEW.job_id, 'trial_updated', NEW.id,
        jsonb_build_object('trial_seq', NEW.seq, 'state', NEW.state));
    RETURN NULL;
END $$;

CREATE TRIGGER trials_events_insert AFTER INSERT ON trials
    FOR EACH ROW EXECUTE FUNCTION podium_trial_events();
-- Only columns the API shows: a lease renewal (every few seconds for each
-- running trial) does not even call the function.
CREATE TRIGGER trials_events_update AFTER UPDATE ON trials
    FOR EACH ROW
    WHEN ((OLD.state, OLD.attempts, OLD.progress, OLD.score, OLD.score_std, OLD.metrics,
           OLD.fit_seconds, OLD.predict_us_per_row, OLD.model_bytes, OLD.failure_reason,
           OLD.started_at, OLD.finished_at, OLD.family, OLD.params)
          IS DISTINCT FROM
          (NEW.state, NEW.attempts, NEW.progress, NEW.score, NEW.score_std, NEW.metrics,
           NEW.fit_seconds, NEW.predict_us_per_row, NEW.model_bytes, NEW.failure_reason,
           NEW.started_at, NEW.finished_at, NEW.family, NEW.params))
    EXECUTE FUNCTION podium_trial_events();

-- Jobs: job_state when created (queued) and on every state change, with the
-- error of a failed job; job_updated for budget, parallelism, a cancel
-- request or a deleted data set. A final state is the job's last event of
-- the statement (job_updated first), so a stream can end after it.
CREATE FUNCTION podium_job_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM podium_job_event(NEW.id, 'job_state', NULL, jsonb_build_object('state', NEW.state));
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('podium_events', OLD.id::text || ' deleted');
        RETURN NULL;
    END IF;
    IF (OLD.max_trials, OLD.max_seconds, OLD.trial_timeout_seconds, OLD.max_failed_trials,
        OLD.parallelism, OLD.cancel_requested, OLD.dataset_id)
       IS DISTINCT FROM
       (NEW.max_trials, NEW.max_seconds, NEW.trial_timeout_seconds, NEW.max_failed_trials,
        NEW.parallelism, NEW.cancel_requested, NEW.dataset_id)
       OR (NEW.state = OLD.state AND ((OLD.error, OLD.started_at, OLD.finished_at)
                                      IS DISTINCT FROM (NEW.error, NEW.started_at, NEW.finished_at))) THEN
        PERFORM podium_job_event(NEW.id, 'job_updated', NULL,
            jsonb_build_object('budget', jsonb_build_object(
                                   'max_trials', NEW.max_trials, 'max_seconds', NEW.max_seconds,
                                   'trial_timeout_seconds', NEW.trial_timeout_seconds,
                                   'max_failed_trials', NEW.max_failed_trials),
                               'parallelism', NEW.parallelism,
                               'cancel_requested', NEW.cancel_requested,
                               'dataset_id', NEW.dataset_id));
    END IF;
    IF NEW.state IS DISTINCT FROM OLD.state THEN
        d := jsonb_build_object('state', NEW.state);
        IF NEW.error IS NOT NULL THEN
            d := d || jsonb_build_object('error', left(NEW.error, 300));
        END IF;
        PERFORM podium_job_event(NEW.id, 'job_state', NULL, d);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_events_insert AFTER INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION podium_job_events();
-- Not for strategy_state, which every proposal rewrites.
CREATE TRIGGER jobs_events_update AFTER UPDATE ON jobs
    FOR EACH ROW
    WHEN ((OLD.state, OLD.max_trials, OLD.max_seconds, OLD.trial_timeout_seconds,
           OLD.max_failed_trials, OLD.parallelism, OLD.cancel_requested, OLD.dataset_id,
           OLD.error, OLD.started_at, OLD.finished_at)
          IS DISTINCT FROM
          (NEW.state, NEW.max_trials, NEW.max_seconds, NEW.trial_timeout_seconds,
           NEW.max_failed_trials, NEW.parallelism, NEW.cancel_requested, NEW.dataset_id,
           NEW.error, NEW.started_at, NEW.finished_at))
    EXECUTE FUNCTION podium_job_events();
CREATE TRIGGER jobs_events_delete AFTER DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION podium_job_events();

-- API keys: a server caches verified keys for a few seconds; a revoked,
-- re-roled or deleted key is announced on podium_keys (payload: the key's
-- id) so every server forgets it at once. A team's operator flag changing
-- announces '*' (forget every key).
CREATE FUNCTION podium_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'teams' THEN
        PERFORM pg_notify('podium_keys', '*');
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('podium_keys', OLD.id::text);
    ELSE
        PERFORM pg_notify('podium_keys', NEW.id::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER api_keys_changed AFTER UPDATE ON api_keys
    FOR EACH ROW
    WHEN ((OLD.revoked_at, OLD.role, OLD.team_id, OLD.hash, OLD.prefix)
          IS DISTINCT FROM (NEW.revoked_at, NEW.role, NEW.team_id, NEW.hash, NEW.prefix))
    EXECUTE FUNCTION podium_key_changed();
CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION podium_key_changed();
CREATE TRIGGER teams_operator_changed AFTER UPDATE ON teams
    FOR EACH ROW WHEN (OLD.operator IS DISTINCT FROM NEW.operator)
    EXECUTE FUNCTION podium_key_changed();
