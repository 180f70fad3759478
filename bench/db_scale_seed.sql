-- db_scale_seed.sql - what bench/db_scale.sh loads: one team's jobs, their
-- trials and their events, as the triggers of migrations/0005 write them
-- (job_state queued and running; per trial: trial_started, :progress
-- trial_progress, trial_succeeded; job_state succeeded), generated in bulk
-- with the triggers off.
--
-- psql variables: team, dataset (the team's uploaded data set), jobs,
-- trials (per job), progress (events per trial), running (how many of the
-- jobs are still running: their last 4 trials run, leased for a day, and
-- they have room for more trials).
--
-- Finished jobs finished between now and 30 days ago, evenly.

SET session_replication_role = replica;   -- no triggers: the events are written below

CREATE TEMP TABLE seed AS
SELECT gen_random_uuid() AS id, g AS n, g <= :running AS active,
       CASE WHEN g <= :running THEN NULL
            ELSE now() - (g - :running) * (interval '30 days' / :jobs) END AS finished_at
  FROM generate_series(1, :jobs) g;

INSERT INTO jobs (id, team_id, dataset_id, state, target, task, metric, higher_is_better,
                  models, strategy, max_trials, max_seconds, trial_timeout_seconds,
                  max_failed_trials, parallelism, cv, seed, created_at, started_at, finished_at)
SELECT s.id, :'team', :'dataset', CASE WHEN s.active THEN 'running' ELSE 'succeeded' END,
       'species', 'classification', 'accuracy', true, '{knn,linear,nb,forest,gbm,mlp}', 'tpe',
       CASE WHEN s.active THEN :trials + 1000 ELSE :trials END, 604800, 600, 10, 4,
       '{"folds": 5}', s.n,
       coalesce(s.finished_at, now()) - interval '2 hours',
       coalesce(s.finished_at, now()) - interval '2 hours', s.finished_at
  FROM seed s;

INSERT INTO trials (job_id, team_id, seq, state, family, params, lease_owner, lease_expires_at,
                    progress, learning_curve, metrics, score, score_std, fit_seconds,
                    predict_us_per_row, model_bytes, artifact_lo, oof_lo, created_at,
                    started_at, finished_at)
SELECT s.id, :'team', t, CASE WHEN run THEN 'running' ELSE 'succeeded' END,
       (ARRAY['knn', 'linear', 'nb', 'forest', 'gbm', 'mlp'])[1 + t % 6],
       jsonb_build_object('k', t % 17, 'alpha', round((t % 100) / 100.0, 2)),
       CASE WHEN run THEN 'bench' END, CASE WHEN run THEN now() + interval '1 day' END,
       jsonb_build_object('event', 'iteration', 'iteration', :progress),
       '[]',
       CASE WHEN run THEN NULL ELSE jsonb_build_object('accuracy', score) END,
       CASE WHEN run THEN NULL ELSE score END, CASE WHEN run THEN NULL ELSE 0.01 END,
       CASE WHEN run THEN NULL ELSE 1.5 END, CASE WHEN run THEN NULL ELSE 2.0 END,
       CASE WHEN run THEN NULL ELSE 40000 END,
       CASE WHEN run THEN NULL ELSE 0 END, CASE WHEN run THEN NULL ELSE 0 END,
       start_at, start_at, CASE WHEN run THEN NULL ELSE start_at + interval '30 seconds' END
  FROM seed s, generate_series(1, :trials) t,
       LATERAL (SELECT s.active AND t > :trials - 4 AS run,
                       0.8 + random() * 0.19 AS score,
                       coalesce(s.finished_at, now()) - interval '2 hours'
                         + t * interval '30 seconds' AS start_at) x;

-- seq: 1 queued, 2 running, then :progress + 2 per trial, then the final state.
INSERT INTO job_events (job_id, seq, type, trial_id, data, created_at)
SELECT id, 1, 'job_state', NULL::uuid, '{"state": "queued"}'::jsonb, created_at FROM jobs WHERE team_id = :'team'
UNION ALL
SELECT id, 2, 'job_state', NULL::uuid, '{"state": "running"}'::jsonb, started_at FROM jobs WHERE team_id = :'team';

INSERT INTO job_events (job_id, seq, type, trial_id, data, created_at)
SELECT t.job_id, 2 + (t.seq - 1) * (:progress + 2) + k,
       CASE WHEN k = 1 THEN 'trial_started'
            WHEN k = :progress + 2 AND t.state = 'succeeded' THEN 'trial_succeeded'
            ELSE 'trial_progress' END,
       t.id,
       CASE WHEN k = 1 THEN jsonb_build_object('trial_seq', t.seq, 'family', t.family, 'attempt', 1)
            WHEN k = :progress + 2 AND t.state = 'succeeded'
              THEN jsonb_build_object('trial_seq', t.seq, 'family', t.family, 'score', t.score)
            ELSE jsonb_build_object('trial_seq', t.seq, 'event', 'iteration', 'iteration', k - 1,
                                    'total', :progress) END,
       t.started_at + k * interval '1 second'
  FROM trials t JOIN seed s ON s.id = t.job_id, generate_series(1, :progress + 2) k;

INSERT INTO job_events (job_id, seq, type, trial_id, data, created_at)
SELECT id, 3 + :trials * (:progress + 2), 'job_state', NULL::uuid, '{"state": "succeeded"}', finished_at
  FROM jobs WHERE team_id = :'team' AND state = 'succeeded';

INSERT INTO job_event_heads (job_id, seq, job_seq, board_seq, has_progress, best_score, best_trial)
SELECT e.job_id, e.s, e.s, e.s, true, b.score, b.id
  FROM (SELECT job_id, max(seq) AS s FROM job_events GROUP BY job_id) e
  LEFT JOIN LATERAL (SELECT id, score FROM trials t WHERE t.job_id = e.job_id
                        AND t.state = 'succeeded' ORDER BY score DESC LIMIT 1) b ON true;

SET session_replication_role = DEFAULT;
VACUUM ANALYZE jobs;
VACUUM ANALYZE trials;
VACUUM ANALYZE job_events;
VACUUM ANALYZE job_event_heads;
