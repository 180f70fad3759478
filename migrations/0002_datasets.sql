-- 0002: data sets. An uploaded file's bytes live in a PostgreSQL large
-- object, once per team and content (blobs, keyed by SHA-256); a data set is
-- a named, profiled view of a blob. Two uploads of the same bytes are two
-- data sets sharing one blob.

CREATE TABLE blobs (
    id          bigserial PRIMARY KEY,
    team_id     uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    sha256      bytea NOT NULL CHECK (length(sha256) = 32),
    lo          oid NOT NULL,
    size        bigint NOT NULL CHECK (size >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Deduplication: one blob per team and content.
CREATE UNIQUE INDEX blobs_team_sha256_key ON blobs (team_id, sha256);

CREATE TABLE datasets (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id      uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    blob_id      bigint NOT NULL REFERENCES blobs (id),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind         text NOT NULL CHECK (kind IN ('tabular', 'images')),
    format       text NOT NULL,          -- csv, csv.gz, zip, tar, tar.gz
    content_type text NOT NULL,
    profile      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- GET /v1/datasets: a team's data sets, newest first, paged by (created_at, id).
CREATE INDEX datasets_team_created_idx ON datasets (team_id, created_at DESC, id DESC);
-- DELETE: is the blob still used by another data set?
CREATE INDEX datasets_blob_idx ON datasets (blob_id);
