-- 0001: teams and API keys. Every resource Podium stores belongs to a team;
-- later tables carry team_id and are always queried through it.

CREATE TABLE teams (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- The operator team (the one bootstrapped into an empty database) is the
    -- only one whose admins may create other teams.
    operator    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Team names are unique regardless of case (POST /v1/teams answers 409).
CREATE UNIQUE INDEX teams_name_key ON teams (lower(name));

-- A key is shown to its owner once; only its SHA-256 is stored. The prefix
-- (the first characters of the key) is what people see in listings and logs.
CREATE TABLE api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id       uuid NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name          text NOT NULL DEFAULT '' CHECK (length(name) <= 100),
    role          text NOT NULL CHECK (role IN ('admin', 'member')),
    prefix        text NOT NULL,
    hash          bytea NOT NULL CHECK (length(hash) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
-- Every request looks its key up by hash.
CREATE UNIQUE INDEX api_keys_hash_key ON api_keys (hash);
-- Listing a team's keys, newest first.
CREATE INDEX api_keys_team_created_idx ON api_keys (team_id, created_at DESC);
