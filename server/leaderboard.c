/*
 * leaderboard.c - see leaderboard.h. Everything is scoped by the caller's
 * team.
 *
 * Both boards answer JSON, or CSV for Accept: text/csv, with the same
 * columns (LEADERBOARD_SQL's, LEADERBOARD_CSV_HEADER's). A job's board is
 * read with its job (jobs_fetch) and kept rendered at the job's board seq
 * in the jobs' response cache (jobs.h); how the team's is paged, versioned,
 * kept and exported is told before its code below.
 */
#include "server/leaderboard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/db.h"
#include "lib/log.h"
#include "lib/pgjson.h"
#include "server/etag.h"
#include "server/events.h"
#include "server/jobs.h"
#include "server/rcache.h"
#include "server/resource.h"

/* --- a job's leaderboard ---------------------------------------------------------------- */

/* Leaderboard rows: rank, model, family, params, the job's metric and the
 * others, costs. `where` selects the trials (t) of jobs (j). A model is a
 * succeeded trial with an artifact (an LR-finder trial has none). */
#define LEADERBOARD_SQL(where)                                                          \
    "SELECT rank() OVER (ORDER BY CASE WHEN j.higher_is_better THEN -t.score ELSE t.score END)" \
    "   AS rank, t.id AS model_id, t.job_id, t.family, t.params, j.metric, t.score,"    \
    "   t.score_std, t.metrics, t.fit_seconds, t.predict_us_per_row, t.model_bytes,"    \
    "   " PGJSON_TS("t.finished_at") " AS trained_at, t.details"                        \
    " FROM trials t JOIN jobs j ON j.id = t.job_id"                                      \
    " WHERE t.state = 'succeeded' AND t.artifact_lo IS NOT NULL AND " where              \
    " ORDER BY rank, t.finished_at, t.id"

static int wants_csv(struct http_req *r)
{
    const char *accept = http_header(r, "Accept");
    return accept && strstr(accept, "text/csv") != NULL;
}

/* The CSV form of a leaderboard: this header, then a line per row of
 * LEADERBOARD_SQL's columns (or the team board's, which has the same). */
#define LEADERBOARD_CSV_HEADER                                                        \
    "rank,model_id,job_id,family,metric,score,score_std,fit_seconds,"                 \
    "predict_us_per_row,model_bytes,params\n"

static void csv_rows(FILE *f, const PGresult *res, int rows)
{
    for (int i = 0; i < rows; i++) {
        const char *params = PQgetvalue(res, i, 4);
        fprintf(f, "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,\"", PQgetvalue(res, i, 0),
                PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                PQgetvalue(res, i, 5), PQgetvalue(res, i, 6), PQgetvalue(res, i, 7),
                PQgetvalue(res, i, 9), PQgetvalue(res, i, 10), PQgetvalue(res, i, 11));
        for (const char *c = params; *c; c++) {
            if (*c == '"') fputc('"', f);
            fputc(*c, f);
        }
        fputs("\"\n", f);
    }
}

/* A leaderboard as JSON, or CSV for Accept: text/csv, into *body (malloc'd)
 * and *len; head is taken. 0, or -1 out of memory. */
static int render_leaderboard(PGresult *res, cJSON *head, int csv, char **body, size_t *len)
{
    int rows = PQntuples(res);
    *body = NULL;
    *len = 0;
    if (csv) {
        FILE *f = open_memstream(body, len);
        if (f == NULL) {
            cJSON_Delete(head);
            return -1;
        }
        fputs(LEADERBOARD_CSV_HEADER, f);
        csv_rows(f, res, rows);
        fclose(f);
        cJSON_Delete(head);
    } else {
        cJSON_AddItemToObject(head, "items", pgjson_rows(res));
        *body = cJSON_PrintUnformatted(head);
        cJSON_Delete(head);
        *len = *body ? strlen(*body) : 0;
    }
    return *body ? 0 : -1;
}

/* GET /v1/jobs/{id}/leaderboard. An unchanged poll is a 304 from memory;
 * any other poll of a job the events table knows is the body rendered for
 * its current board seq (one render per seq, single flight); a job it does
 * not know is read (which teaches the table) and its board then looked up
 * at the seq read. */
int jobs_leaderboard(struct http_req *r)
{
    int ret;
    int csv = wants_csv(r);
    const char *variant = csv ? "lb.csv" : "lb.json";
    struct rcache_flight *flight;
    if (jobs_from_memory(r, EVENTS_BOARD, variant, &flight, &ret)) return ret;
    int64_t seq[EVENTS_VIEWS];
    PGresult *job = jobs_fetch(r, &ret, seq);
    if (job == NULL) {
        rcache_abandon(jobs_responses(), flight);
        return ret;
    }
    char job_id[37];
    snprintf(job_id, sizeof job_id, "%s", PQgetvalue(job, 0, PQfnumber(job, "id")));
    if (jobs_cached_at(r, job_id, variant, seq[EVENTS_BOARD], &flight, &ret)) {
        PQclear(job);
        return ret;
    }
    cJSON *head = cJSON_CreateObject();
    cJSON_AddStringToObject(head, "job_id", PQgetvalue(job, 0, PQfnumber(job, "id")));
    cJSON_AddStringToObject(head, "metric", PQgetvalue(job, 0, PQfnumber(job, "metric")));
    cJSON_AddBoolToObject(head, "higher_is_better",
                          PQgetvalue(job, 0, PQfnumber(job, "higher_is_better"))[0] == 't');
    cJSON_AddStringToObject(head, "state", PQgetvalue(job, 0, PQfnumber(job, "state")));
    PQclear(job);
    const char *p[2] = {http_param(r, "job_id"), r->auth.team_id};
    PGresult *res = pool_exec(&r->db, LEADERBOARD_SQL("t.job_id = $1 AND t.team_id = $2"), 2, p);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rcache_abandon(jobs_responses(), flight);
        cJSON_Delete(head);
        ret = http_problem_db(r, res);
        PQclear(res);
        return ret;
    }
    char *body;
    size_t len;
    int rc = render_leaderboard(res, head, csv, &body, &len);
    PQclear(res);
    if (rc < 0) {
        rcache_abandon(jobs_responses(), flight);
        return MHD_NO;
    }
    return jobs_respond_job(r, flight, job_id, variant, seq[EVENTS_BOARD],
                            csv ? "text/csv" : "application/json", body, len);
}

/* --- the team leaderboard ------------------------------------------------------------- */

/*
 * GET /v1/leaderboards?dataset_id=…[&target=…][&metric=…][&limit=…][&cursor=…]:
 * every model the team trained on that data set (and target), ranked by
 * one metric. Scores from different metrics do not compare: the metric
 * (and the target) default to the most recent job's.
 *
 * The order is total and stable: by score in the metric's direction, ties
 * by model id in the same direction (descending when higher is better),
 * so that one index (migrations/0008: trials by team, score and id, over
 * models only) serves both directions, forwards or backwards. The rank is
 * 1 + the number of models with a strictly better score (ties share it).
 *
 * JSON is paged by keyset, never by OFFSET: a page is the `limit` models
 * after the cursor's (score, id), an index seek whatever its depth. The
 * cursor (`next` links to the following page) carries the board it
 * belongs to (target and metric, so a new job cannot switch the board
 * under a client walking it) and the position and rank of the last model
 * it has seen, from which the page's ranks follow without counting what
 * lies before it. It is hex, not signed: it holds nothing the client may
 * not ask for anyway (the team comes from the key), and a forged position
 * only misnumbers the forger's own page. `total` (the board's models) is
 * on the first page only: it is a count of every model (about 40 ms at
 * 100,000, bench/db_scale.sh), paid once per version there, since the
 * first page is kept, but on every page of a walk it would cost a hundred
 * times the page itself.
 *
 * Versions (rcache.h): the jobs the board shows and the version of each
 * of their boards are read first, in one small statement, into a digest.
 * The first page (no cursor) is rendered once per digest and kept under
 * the team, the data set, the representation, the limit and the target
 * and metric picked (every input of the body); its tag is a hash of the
 * body. Pages after a cursor are rendered each time and not kept: a
 * client walking a 100,000-model board would otherwise push every board
 * that pollers read out of the shared cache.
 *
 * CSV (Accept: text/csv) is the whole board, streamed: the digest and
 * every batch of TEAM_EXPORT_BATCH rows are read in one REPEATABLE READ
 * transaction (a consistent snapshot however long the client takes), each
 * batch a keyset seek like a page, and a batch is rendered only when
 * libmicrohttpd has sent the last, so memory holds one batch whatever the
 * size of the board. It is not kept in the response cache: a large
 * export is over the cache's largest body (rcache.h) anyway, and an
 * export is a download, not a poll. Its tag is made from the digest and
 * the key, so an unchanged export is still a 304 without reading a row.
 */

#define TEAM_PAGE_DEFAULT 100
#define TEAM_PAGE_MAX 1000
#define TEAM_EXPORT_BATCH 1000
#define TEAM_CURSOR_MAX 1200     /* hex digits: 600 bytes hold any cursor */

/* The board: whose, which data set, and the target and metric picked. */
struct team_board {
    char team[37];
    char dataset[37];
    char target[256];
    char metric[32];
    int higher;             /* the metric's direction */
};

/* Where a page starts. set == 0: at the top. Otherwise after the model id
 * whose score is `score` (PostgreSQL's text of the float8, which reads
 * back as the same value), with `pos` models up to and including it, the
 * last of them ranked `rank`. */
struct board_pos {
    int set;
    char score[40];
    char id[37];
    long long pos;
    long long rank;
};

/* A board's models (t) of its jobs (j): $1 team, $2 data set, $3 target,
 * $4 metric. A model always has a score (the scheduler stores none
 * without); the condition keeps the query and the index's predicate
 * the same. */
#define TEAM_BOARD_WHERE                                                               \
    " t.team_id = $1 AND t.state = 'succeeded' AND t.artifact_lo IS NOT NULL"          \
    " AND t.score IS NOT NULL AND j.dataset_id = $2 AND j.target = $3 AND j.metric = $4"

/* A page of LEADERBOARD_SQL's columns: $5 the score before the page (its
 * ties keep rank $7), $6 the models before it, $8 how many, and $9 the id
 * before it for a page after a cursor. The inner query is the index seek;
 * the outer one only numbers its rows. */
#define TEAM_PAGE_SQL(keyset, dir)                                                     \
    "SELECT CASE WHEN b.score = $5::float8 THEN $7::bigint"                           \
    "   ELSE $6::bigint + rank() OVER (ORDER BY b.score " dir ") END AS rank,"        \
    " b.model_id, b.job_id, b.family, b.params, b.metric, b.score, b.score_std,"      \
    " b.metrics, b.fit_seconds, b.predict_us_per_row, b.model_bytes, b.trained_at,"   \
    " b.details"                                                                      \
    " FROM (SELECT t.id AS model_id, t.job_id, t.family, t.params, j.metric, t.score," \
    "     t.score_std, t.metrics, t.fit_seconds, t.predict_us_per_row, t.model_bytes," \
    "     " PGJSON_TS("t.finished_at") " AS trained_at, t.details"                    \
    "   FROM trials t JOIN jobs j ON j.id = t.job_id"                                  \
    "   WHERE" TEAM_BOARD_WHERE keyset                                                \
    "   ORDER BY t.score " dir ", t.id " dir " LIMIT $8) b"                           \
    " ORDER BY b.score " dir ", b.model_id " dir

/* [higher is better][after a cursor] */
static const char *const team_page_sql[2][2] = {
    {TEAM_PAGE_SQL("", "ASC"),
     TEAM_PAGE_SQL(" AND (t.score, t.id) > ($5::float8, $9::uuid)", "ASC")},
    {TEAM_PAGE_SQL("", "DESC"),
     TEAM_PAGE_SQL(" AND (t.score, t.id) < ($5::float8, $9::uuid)", "DESC")},
};

/* Up to limit models of b after `after`. The caller PQclears. */
static PGresult *team_page(struct pool_conn *db, const struct team_board *b,
                           const struct board_pos *after, long limit)
{
    char pos[24], rank[24], lim[24];
    snprintf(pos, sizeof pos, "%lld", after->set ? after->pos : 0);
    snprintf(rank, sizeof rank, "%lld", after->rank);
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *p[9] = {b->team, b->dataset, b->target, b->metric,
                        after->set ? after->score : NULL, pos, after->set ? rank : NULL, lim,
                        after->id};
    return pool_exec(db, team_page_sql[b->higher][after->set], after->set ? 9 : 8, p);
}

/* The position after row `row` of a page that started at `at`. */
static void board_pos_at(const PGresult *res, int row, const struct board_pos *at,
                         struct board_pos *out)
{
    long long before = at->set ? at->pos : 0;
    out->set = 1;
    snprintf(out->score, sizeof out->score, "%s", PQgetvalue(res, row, 6));
    snprintf(out->id, sizeof out->id, "%s", PQgetvalue(res, row, 1));
    out->rank = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    out->pos = before + row + 1;
}

/* A cursor: "c1", the metric, pos, rank, score, id and the target, one a
 * line (the target last: it is the one part that may hold a newline), in
 * hex. out holds TEAM_CURSOR_MAX + 1. 0, or -1 when it does not fit. */
static int cursor_encode(const struct team_board *b, const struct board_pos *at, char *out)
{
    char text[TEAM_CURSOR_MAX / 2 + 1];
    int n = snprintf(text, sizeof text, "c1\n%s\n%lld\n%lld\n%s\n%s\n%s", b->metric, at->pos,
                     at->rank, at->score, at->id, b->target);
    if (n < 0 || (size_t)n >= sizeof text) return -1;
    crypto_hex((const unsigned char *)text, (size_t)n, out);
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A float8 as PostgreSQL writes it: digits, sign, point and exponent, or
 * Infinity (a board's score is never NaN: the condition on the index
 * seek would then be another order). */
static int is_float_text(const char *s)
{
    if (strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0) return 1;
    if (*s == '\0' || strlen(s) > 32 || strspn(s, "0123456789+-.eE") != strlen(s)) return 0;
    char *end;
    strtod(s, &end);
    return *end == '\0';
}

/* Split off the next line of *s (NUL-terminating it). */
static char *next_line(char **s)
{
    char *line = *s, *nl = line ? strchr(line, '\n') : NULL;
    if (nl == NULL) return NULL;
    *nl = '\0';
    *s = nl + 1;
    return line;
}

/* Read a cursor into *at, metric (32) and target (256). 0, or -1 when it
 * is not one this server wrote. */
static int cursor_decode(const char *hex, struct board_pos *at, char *metric, char *target)
{
    size_t n = strlen(hex);
    char text[TEAM_CURSOR_MAX / 2 + 1];
    if (n == 0 || n > TEAM_CURSOR_MAX || n % 2) return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return -1;
        text[i / 2] = (char)(hi << 4 | lo);
    }
    text[n / 2] = '\0';
    char *s = text;
    const char *fmt = next_line(&s), *met = next_line(&s), *pos = next_line(&s),
               *rank = next_line(&s), *score = next_line(&s), *id = next_line(&s);
    if (id == NULL || strcmp(fmt, "c1") != 0 || jobs_metric_find(met) == NULL ||
        !is_float_text(score) || !http_is_uuid(id) || strlen(s) > 255)
        return -1;
    char *end1, *end2;
    errno = 0;
    long long p = strtoll(pos, &end1, 10), k = strtoll(rank, &end2, 10);
    if (errno || *pos == '\0' || *end1 || *rank == '\0' || *end2 || p < 1 || k < 1 || k > p ||
        p > (1LL << 40))
        return -1;
    memset(at, 0, sizeof *at);
    at->set = 1;
    at->pos = p;
    at->rank = k;
    snprintf(at->score, sizeof at->score, "%s", score);
    snprintf(at->id, sizeof at->id, "%s", id);
    snprintf(metric, 32, "%s", met);
    snprintf(target, 256, "%s", s);
    return 0;
}

/* A strong tag: "\"" + 32 hex digits of SHA-256 over data + "\"". */
static void hash_tag(char out[ETAG_MAX], const void *data, size_t len)
{
    unsigned char d[CRYPTO_SHA256_LEN];
    crypto_sha256(data, len, d);
    out[0] = '"';
    crypto_hex(d, 16, out + 1);
    strcat(out, "\"");
}

/* --- the CSV export, streamed --- */

struct team_export {
    struct pool_conn db;    /* in the export's transaction until export_done */
    struct team_board board;
    struct board_pos at;    /* the last model rendered */
    char *text;             /* the batch rendered, handed out from off */
    size_t len, off;
    int last;               /* the batch rendered was the last */
};

/* Read and render the next batch (after the header when header). 0, or -1
 * when the statement failed (*res_out, when given, then gets the result). */
static int export_batch(struct team_export *e, int header, PGresult **res_out)
{
    PGresult *res = team_page(&e->db, &e->board, &e->at, TEAM_EXPORT_BATCH);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (res_out) *res_out = res;
        else PQclear(res);
        return -1;
    }
    int rows = PQntuples(res);
    free(e->text);
    e->text = NULL;
    e->len = e->off = 0;
    FILE *f = open_memstream(&e->text, &e->len);
    if (f == NULL) {
        PQclear(res);
        return -1;
    }
    if (header) fputs(LEADERBOARD_CSV_HEADER, f);
    csv_rows(f, res, rows);
    if (fclose(f) != 0) {
        PQclear(res);
        return -1;
    }
    if (rows > 0) board_pos_at(res, rows - 1, &e->at, &e->at);
    e->last = rows < TEAM_EXPORT_BATCH;
    PQclear(res);
    return 0;
}

static ssize_t export_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct team_export *e = cls;
    while (e->off == e->len) {
        if (e->last) return MHD_CONTENT_READER_END_OF_STREAM;
        if (export_batch(e, 0, NULL) < 0) {
            log_msg(LOG_WARN, "team leaderboard export: %s", PQerrorMessage(e->db.pg));
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    }
    size_t take = e->len - e->off < max ? e->len - e->off : max;
    memcpy(buf, e->text + e->off, take);
    e->off += take;
    return (ssize_t)take;
}

static void export_done(void *cls)
{
    struct team_export *e = cls;
    if (e->db.pg) {
        PQclear(PQexec(e->db.pg, "ROLLBACK"));   /* read only: nothing to keep */
        pool_release(&e->db);
    }
    free(e->text);
    free(e);
}

/* Answer the CSV export of b, read in the transaction r's connection is
 * in (the handler began it before reading the version): 304 for a
 * matching tag, else the header and first batch now (so a failure is
 * still a problem response) and the rest as the client takes it. The
 * connection goes with the response. */
static int export_respond(struct http_req *r, const struct team_board *b, const char *etag)
{
    int ret;
    if (etag_match(http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        db_command(r->db.pg, "ROLLBACK");
        return http_respond_not_modified(r, etag);
    }
    struct team_export *e = calloc(1, sizeof *e);
    if (e == NULL) {
        db_command(r->db.pg, "ROLLBACK");
        return MHD_NO;
    }
    e->board = *b;
    e->db = r->db;
    r->has_db = 0;
    memset(&r->db, 0, sizeof r->db);
    PGresult *res = NULL;
    if (export_batch(e, 1, &res) < 0) {
        ret = res ? http_problem_db(r, res) : MHD_NO;
        PQclear(res);
        export_done(e);
        return ret;
    }
    const char *headers[] = {MHD_HTTP_HEADER_ETAG, etag, NULL};
    return http_respond_callback(r, 200, MHD_SIZE_UNKNOWN, "text/csv", headers, export_read, e,
                                 export_done);
}

/* --- the handler --- */

/* A 400 naming a query parameter. */
#define bad_param(r, name, ...) \
    http_problem(r, 400, "invalid-parameter", "Invalid parameter", name, __VA_ARGS__)

/* The JSON page of b after `after`: the total (first page only), the
 * page, and next. head is taken. 0, or a queued problem (*ret). */
static int page_json(struct http_req *r, const struct team_board *b, const struct board_pos *after,
                     long limit, cJSON *head, char **body, size_t *len, int *ret)
{
    *body = NULL;
    PGresult *res = NULL;
    if (!after->set) {
        const char *p[4] = {b->team, b->dataset, b->target, b->metric};
        res = pool_exec(&r->db,
            "SELECT count(*) FROM trials t JOIN jobs j ON j.id = t.job_id WHERE" TEAM_BOARD_WHERE,
            4, p);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            cJSON_AddNumberToObject(head, "total", strtod(PQgetvalue(res, 0, 0), NULL));
            PQclear(res);
            res = NULL;
        }
    }
    /* One more than the page: whether there is a next one. */
    if (res == NULL) res = team_page(&r->db, b, after, limit + 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        cJSON_Delete(head);
        *ret = http_problem_db(r, res);
        PQclear(res);
        return -1;
    }
    int rows = PQntuples(res);
    cJSON *items = pgjson_rows(res);
    cJSON_AddNumberToObject(head, "limit", (double)limit);
    if (rows > limit) {
        cJSON_DeleteItemFromArray(items, rows - 1);
        struct board_pos last;
        board_pos_at(res, (int)limit - 1, after, &last);
        char cursor[TEAM_CURSOR_MAX + 1], next[TEAM_CURSOR_MAX + 128];
        if (cursor_encode(b, &last, cursor) == 0) {
            snprintf(next, sizeof next, "/v1/leaderboards?dataset_id=%s&limit=%ld&cursor=%s",
                     b->dataset, limit, cursor);
            cJSON_AddStringToObject(head, "next", next);
        } else {
            cJSON_AddNullToObject(head, "next");   /* cannot happen: bounded parts */
        }
    } else {
        cJSON_AddNullToObject(head, "next");
    }
    PQclear(res);
    cJSON_AddItemToObject(head, "items", items);
    *body = cJSON_PrintUnformatted(head);
    cJSON_Delete(head);
    if (*body == NULL) {
        *ret = MHD_NO;
        return -1;
    }
    *len = strlen(*body);
    return 0;
}

int leaderboards_team(struct http_req *r)
{
    int ret;
    const char *dataset = http_query(r, "dataset_id");
    if (!http_is_uuid(dataset))
        return bad_param(r, "dataset_id", "dataset_id is required and must be a data set id");
    const char *target = http_query(r, "target");
    const char *metric = http_query(r, "metric");
    if (metric && jobs_metric_find(metric) == NULL)
        return bad_param(r, "metric", "unknown metric '%s'", metric);
    if (target && strlen(target) > 255) return bad_param(r, "target", "target is a column name");
    int csv = wants_csv(r);
    const char *cursor = http_query(r, "cursor");
    long limit = TEAM_PAGE_DEFAULT;
    if (csv && http_query(r, "limit"))
        return bad_param(r, "limit", "the CSV export is every model: page the JSON form");
    if (csv && cursor)
        return bad_param(r, "cursor", "the CSV export is every model: page the JSON form");
    if (resource_query_int(r, "limit", 1, TEAM_PAGE_MAX, TEAM_PAGE_DEFAULT, &limit, &ret) < 0)
        return ret;
    struct board_pos after = {0};
    char cur_metric[32], cur_target[256];
    if (cursor) {
        if (cursor_decode(cursor, &after, cur_metric, cur_target) < 0)
            return bad_param(r, "cursor", "cursor must be a leaderboard's `next` cursor, unchanged");
        if ((metric && strcmp(metric, cur_metric) != 0) || (target && strcmp(target, cur_target) != 0))
            return bad_param(r, "cursor", "the cursor is of another board (target '%s', metric %s)",
                             cur_target, cur_metric);
        metric = cur_metric;
        target = cur_target;
    }
    if (http_db(r) == NULL) return http_problem_db_unavailable(r, "leaderboard");
    /* The export reads everything, the version first, in one snapshot. */
    if (csv && db_command(r->db.pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0)
        return http_problem_db_unavailable(r, "leaderboard");
    const char *p[4] = {r->auth.team_id, dataset, target, metric};
    PGresult *pick = pool_exec(&r->db,
        "WITH p AS (SELECT target, metric FROM jobs WHERE team_id = $1 AND dataset_id = $2"
        "   AND ($3::text IS NULL OR target = $3) AND ($4::text IS NULL OR metric = $4)"
        "   ORDER BY created_at DESC LIMIT 1)"
        " SELECT p.target, p.metric,"
        "   (SELECT md5(coalesce(string_agg(j.id::text || ':' || coalesce(h.board_seq, 0)::text,"
        "                                   ',' ORDER BY j.id), ''))"
        "      FROM jobs j LEFT JOIN job_event_heads h ON h.job_id = j.id"
        "     WHERE j.team_id = $1 AND j.dataset_id = $2 AND j.target = p.target"
        "       AND j.metric = p.metric)"
        " FROM p", 4, p);
    if (PQresultStatus(pick) != PGRES_TUPLES_OK) {
        ret = http_problem_db(r, pick);
        PQclear(pick);
        return ret;
    }
    if (PQntuples(pick) == 0) {
        /* No job on this data set (target, metric): an empty board. */
        PQclear(pick);
        if (csv) {
            db_command(r->db.pg, "ROLLBACK");
            char *text = strdup(LEADERBOARD_CSV_HEADER);
            if (text == NULL) return MHD_NO;
            return http_respond_bytes(r, 200, "text/csv", text, strlen(text), NULL);
        }
        cJSON *head = cJSON_CreateObject();
        cJSON_AddStringToObject(head, "dataset_id", dataset);
        cJSON_AddNumberToObject(head, "total", 0);
        cJSON_AddNumberToObject(head, "limit", (double)limit);
        cJSON_AddNullToObject(head, "next");
        cJSON_AddItemToObject(head, "items", cJSON_CreateArray());
        return http_respond_json(r, 200, head);
    }
    struct team_board b = {0};
    snprintf(b.team, sizeof b.team, "%s", r->auth.team_id);
    snprintf(b.dataset, sizeof b.dataset, "%s", dataset);
    snprintf(b.target, sizeof b.target, "%s", PQgetvalue(pick, 0, 0));
    snprintf(b.metric, sizeof b.metric, "%s", PQgetvalue(pick, 0, 1));
    const struct jobs_metric *mi = jobs_metric_find(b.metric);
    b.higher = mi ? mi->higher_is_better : 0;
    char version[40], key[420];
    snprintf(version, sizeof version, "%s", PQgetvalue(pick, 0, 2));
    PQclear(pick);
    /* The target last: the other parts cannot hold a '/'. */
    if (csv) {
        snprintf(key, sizeof key, "team/%s/%s/lb.csv/%s/%s\n%s", b.team, b.dataset, b.metric,
                 b.target, version);
        char etag[ETAG_MAX];
        hash_tag(etag, key, strlen(key));
        return export_respond(r, &b, etag);
    }
    snprintf(key, sizeof key, "team/%s/%s/lb.json/%ld/%s/%s", b.team, b.dataset, limit, b.metric,
             b.target);
    struct rcache_flight *flight = NULL;
    if (!after.set && jobs_cached(r, key, version, r->auth.team_id, &flight, &ret)) return ret;
    cJSON *head = cJSON_CreateObject();
    cJSON_AddStringToObject(head, "dataset_id", dataset);
    cJSON_AddStringToObject(head, "target", b.target);
    cJSON_AddStringToObject(head, "metric", b.metric);
    cJSON_AddBoolToObject(head, "higher_is_better", b.higher);
    char *body;
    size_t len;
    if (page_json(r, &b, &after, limit, head, &body, &len, &ret) < 0) {
        rcache_abandon(jobs_responses(), flight);
        return ret;
    }
    char etag[ETAG_MAX];
    hash_tag(etag, body, len);
    if (!after.set)
        return jobs_respond_stored(r, flight, key, version, "application/json", body, len, etag);
    if (etag_match(http_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        free(body);
        return http_respond_not_modified(r, etag);
    }
    return http_respond_bytes(r, 200, "application/json", body, len, etag);
}
