/*
 * routes.c - the server's route table: every endpoint in one place.
 * api/openapi.yaml describes the same routes; tests/unit/test_openapi.c
 * fails when the two disagree.
 */
#include "server/router.h"

#include "server/datasets.h"
#include "server/feed.h"
#include "server/genotypes.h"
#include "server/health.h"
#include "server/jobs.h"
#include "server/leaderboard.h"
#include "server/lrfind.h"
#include "server/models.h"
#include "server/predict.h"
#include "server/samples.h"
#include "server/teams.h"

/* A route whose body is collected (JSON), and one that streams it. */
#define ROUTE(method, pattern, auth, handler, summary) \
    {method, pattern, auth, handler, summary, NULL}
#define STREAM(method, pattern, auth, stream, summary) \
    {method, pattern, auth, NULL, summary, &stream}

const struct route server_routes[] = {
    ROUTE("GET", "/healthz", ROUTE_PUBLIC, health_live, "the process is alive"),
    ROUTE("GET", "/readyz", ROUTE_PUBLIC, health_ready, "the database is reachable"),
    ROUTE("GET", "/v1/me", ROUTE_MEMBER, teams_me, "the calling key and its team"),
    ROUTE("POST", "/v1/teams", ROUTE_ADMIN, teams_create, "create a team and its first admin key"),
    ROUTE("GET", "/v1/teams/{team_id}", ROUTE_MEMBER, teams_get, "the caller's team"),
    ROUTE("GET", "/v1/teams/{team_id}/keys", ROUTE_ADMIN, keys_list, "the team's API keys"),
    ROUTE("POST", "/v1/teams/{team_id}/keys", ROUTE_ADMIN, keys_create, "create an API key"),
    ROUTE("GET", "/v1/keys/{key_id}", ROUTE_ADMIN, keys_get, "one API key (never its secret)"),
    ROUTE("DELETE", "/v1/keys/{key_id}", ROUTE_ADMIN, keys_revoke, "revoke an API key"),
    STREAM("POST", "/v1/datasets", ROUTE_MEMBER, datasets_upload, "upload a CSV or an image archive"),
    ROUTE("GET", "/v1/datasets", ROUTE_MEMBER, datasets_list, "the team's data sets, newest first"),
    ROUTE("GET", "/v1/datasets/{dataset_id}", ROUTE_MEMBER, datasets_get, "a data set and its profile"),
    ROUTE("DELETE", "/v1/datasets/{dataset_id}", ROUTE_MEMBER, datasets_delete, "delete a data set"),
    ROUTE("GET", "/v1/datasets/{dataset_id}/content", ROUTE_MEMBER, datasets_content, "the uploaded bytes"),
    ROUTE("GET", "/v1/datasets/{dataset_id}/preview", ROUTE_MEMBER, datasets_preview, "the first rows, or classes and file names"),
    ROUTE("GET", "/v1/datasets/{dataset_id}/samples/{n}", ROUTE_MEMBER, samples_get, "an image set's sample n as a small PNG"),
    ROUTE("POST", "/v1/jobs", ROUTE_MEMBER, jobs_create, "start a search job"),
    ROUTE("POST", "/v1/lr-find", ROUTE_MEMBER, lrfind_create, "start a learning-rate range test"),
    ROUTE("GET", "/v1/jobs", ROUTE_MEMBER, jobs_list, "the team's jobs, newest first"),
    ROUTE("GET", "/v1/jobs/{job_id}", ROUTE_MEMBER, jobs_get, "a job with its progress and best model"),
    ROUTE("PATCH", "/v1/jobs/{job_id}", ROUTE_MEMBER, jobs_update, "change a running job's budget"),
    ROUTE("POST", "/v1/jobs/{job_id}/cancel", ROUTE_MEMBER, jobs_cancel, "cancel a job"),
    ROUTE("GET", "/v1/jobs/{job_id}/trials", ROUTE_MEMBER, jobs_trials, "a job's trials"),
    ROUTE("GET", "/v1/jobs/{job_id}/leaderboard", ROUTE_MEMBER, jobs_leaderboard, "a job's models, ranked"),
    ROUTE("GET", "/v1/jobs/{job_id}/lr-find", ROUTE_MEMBER, lrfind_get, "an LR-finder job's curve and suggested learning rate"),
    ROUTE("GET", "/v1/jobs/{job_id}/lr-find.svg", ROUTE_MEMBER, lrfind_get_svg, "an LR-finder job's curve drawn as SVG"),
    ROUTE("GET", "/v1/jobs/{job_id}/events", ROUTE_MEMBER, feed_get, "a job's events: JSON after a seq, or a live SSE stream"),
    ROUTE("GET", "/v1/trials/{trial_id}", ROUTE_MEMBER, trials_get, "one trial with its learning curve"),
    ROUTE("GET", "/v1/leaderboards", ROUTE_MEMBER, leaderboards_team, "every model the team trained on a data set"),
    ROUTE("GET", "/v1/models/{model_id}", ROUTE_MEMBER, models_get, "a trained model"),
    ROUTE("GET", "/v1/models/{model_id}/artifact", ROUTE_MEMBER, models_artifact, "download a model file"),
    ROUTE("GET", "/v1/models/{model_id}/genotype", ROUTE_MEMBER, models_genotype, "a CNN model's architecture genotype (JSON)"),
    ROUTE("GET", "/v1/models/{model_id}/genotype.svg", ROUTE_MEMBER, models_genotype_svg, "a CNN model's cells drawn as SVG"),
    ROUTE("POST", "/v1/models/{model_id}/predict", ROUTE_MEMBER, models_predict, "predictions for CSV or JSON rows"),
};

const size_t server_routes_count = sizeof server_routes / sizeof server_routes[0];
