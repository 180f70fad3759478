-- 0007: job events do not grow without bound, and the hot paths stay on
-- indexes at 100,000 trials.
--
-- Retention (scheduler/retention.c runs it): trial_progress events, about
-- one a second per running trial and worth nothing once a trial has
-- ended (the trial itself keeps its latest progress and its learning
-- curve), are deleted
--   - for a finished job (succeeded, failed, cancelled), all of them once
--     it finished longer ago than the retention window;
--   - for an active job (queued, running), all but its newest N (a cap).
-- Every other event (job and trial states, results, new bests, budget
-- changes) is kept for as long as the job exists. Nothing else changes:
-- seq numbers are never reused or renumbered, so new events go on from
-- the head's seq with no gap, and the compacted ones leave holes below
-- job_event_heads.compacted_seq. A reader resuming from a seq below it is
-- told so (server/feed.c) and refetches the job and its trials.
--
-- Deletion is by batches of one job's progress events, oldest first, each
-- a short transaction of its own (podium_compact_progress below), found
-- through two small partial indexes, so no pass scans job_events or holds
-- a lock for long.

-- has_progress: the job may hold trial_progress events (set by the event
-- that adds one, cleared by the compaction that deletes the last one); the
-- retention pass walks only such jobs. compacted_seq: every trial_progress
-- event with seq <= compacted_seq has been deleted (0: none ever was).
ALTER TABLE job_event_heads
    ADD COLUMN has_progress boolean NOT NULL DEFAULT false,
    ADD COLUMN compacted_seq bigint NOT NULL DEFAULT 0;

UPDATE job_event_heads h SET has_progress = true
 WHERE EXISTS (SELECT 1 FROM job_events e WHERE e.job_id = h.job_id AND e.type = 'trial_progress');

-- A job's progress events in seq order: what a compaction batch deletes
-- (a range of this index) and what the cap counts back from.
CREATE INDEX job_events_progress_idx ON job_events (job_id, seq) WHERE type = 'trial_progress';
-- The jobs a retention pass looks at, in job_id order (keyset paging).
-- has_progress changes twice in a job's life, so the per-event update of
-- the head stays a HOT update.
CREATE INDEX job_event_heads_progress_idx ON job_event_heads (job_id) WHERE has_progress;

-- As in 0005, plus has_progress.
CREATE OR REPLACE FUNCTION podium_job_event(p_job uuid, p_type text, p_trial uuid, p_data jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    s bigint;
    js bigint;
    bs bigint;
BEGIN
    INSERT INTO job_event_heads AS h (job_id, seq, job_seq, board_seq, has_progress)
    VALUES (p_job, 1, 1, 1, p_type = 'trial_progress')
    ON CONFLICT (job_id) DO UPDATE SET
        seq = h.seq + 1,
        job_seq = CASE WHEN p_type = 'trial_progress' THEN h.job_seq ELSE h.seq + 1 END,
        board_seq = CASE WHEN p_type IN ('trial_started', 'trial_progress', 'job_updated')
                         THEN h.board_seq ELSE h.seq + 1 END,
        has_progress = h.has_progress OR p_type = 'trial_progress'
    RETURNING h.seq, h.job_seq, h.board_seq INTO s, js, bs;
    INSERT INTO job_events (job_id, seq, type, trial_id, data)
    VALUES (p_job, s, p_type, p_trial, p_data);
    PERFORM pg_notify('podium_events', p_job::text || ' ' || s::text || ' ' || js::text
                                       || ' ' || bs::text);
    RETURN s;
END $$;

-- One compaction batch: delete at most p_batch of job p_job's
-- trial_progress events, oldest first, among all of them (p_keep = 0) or
-- all but the newest p_keep. Returns how many were deleted (fewer than
-- p_batch: nothing more to do now), or -1 when the job's head is locked
-- (an event being written: try again later; never waits).
--
-- The head row is locked for the batch, so no event of this job commits
-- meanwhile: compacted_seq and has_progress are exact when it returns.
-- No NOTIFY and no head seq change: deleting progress is not news, and
-- the ETags made of the head's seqs (server/etag.h) stay valid.
CREATE FUNCTION podium_compact_progress(p_job uuid, p_keep integer, p_batch integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    upto bigint := 9223372036854775807;
    bound bigint;
    n integer;
BEGIN
    PERFORM 1 FROM job_event_heads WHERE job_id = p_job FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN CASE WHEN EXISTS (SELECT 1 FROM job_event_heads WHERE job_id = p_job)
                    THEN -1 ELSE 0 END;
    END IF;
    IF p_keep > 0 THEN
        -- The newest progress event that is not kept.
        SELECT e.seq INTO upto FROM job_events e
         WHERE e.job_id = p_job AND e.type = 'trial_progress'
         ORDER BY e.seq DESC OFFSET p_keep LIMIT 1;
        IF NOT FOUND THEN
            RETURN 0;
        END IF;
    END IF;
    SELECT max(b.seq) INTO bound FROM (
        SELECT e.seq FROM job_events e
         WHERE e.job_id = p_job AND e.type = 'trial_progress' AND e.seq <= upto
         ORDER BY e.seq LIMIT p_batch) b;
    IF bound IS NULL THEN
        n := 0;
    ELSE
        DELETE FROM job_events e
         WHERE e.job_id = p_job AND e.type = 'trial_progress' AND e.seq <= bound;
        GET DIAGNOSTICS n = ROW_COUNT;
    END IF;
    UPDATE job_event_heads h
       SET compacted_seq = greatest(h.compacted_seq, coalesce(bound, 0)),
           has_progress = EXISTS (SELECT 1 FROM job_events e
                                   WHERE e.job_id = p_job AND e.type = 'trial_progress')
     WHERE h.job_id = p_job
       AND (bound IS NOT NULL
            OR h.has_progress IS DISTINCT FROM EXISTS (
                   SELECT 1 FROM job_events e WHERE e.job_id = p_job AND e.type = 'trial_progress'));
    RETURN n;
END $$;
