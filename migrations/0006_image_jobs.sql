-- 0006: search jobs on image data sets (neural architecture search) and
-- what a trial reports beyond its metrics.
--
-- jobs.options holds what only some jobs have: for an image job the size
-- images are converted to and the NAS settings (cells, channels, epochs,
-- population, ...), as the server validated them; for a learning-rate
-- finder job (POST /v1/lr-find) its settings and model params. Two NAS
-- strategies join the search strategies, regularized evolution and DARTS,
-- and so does 'lr_find', the finder's one trial.
--
-- trials.details holds facts a trial's result reports besides its metrics:
-- the device it trained on, and for a CNN its genotype, parameter count
-- and FLOPs (what NAS leaderboards show).

ALTER TABLE jobs ADD COLUMN options jsonb NOT NULL DEFAULT '{}';
ALTER TABLE jobs DROP CONSTRAINT jobs_strategy_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_strategy_check
    CHECK (strategy IN ('random', 'tpe', 'asha', 'evolution', 'darts', 'lr_find'));
ALTER TABLE trials ADD COLUMN details jsonb;
