/*
 * genotype.c - DARTS cell genotypes (genotype.h): JSON, random draws,
 * mutation, and the SVG cell diagram.
 */
#include "lib/genotype.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const OP_NAMES[GOP_COUNT] = {
    "none",         "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
};

const char *genotype_op_name(int op)
{
    return op >= 0 && op < GOP_COUNT ? OP_NAMES[op] : NULL;
}

int genotype_op_find(const char *name)
{
    for (int i = 0; i < GOP_COUNT; i++)
        if (name && strcmp(name, OP_NAMES[i]) == 0) return i;
    return -1;
}

static int cell_from_json(const cJSON *arr, const char *cell, struct genotype_edge *e,
                          char *err, size_t errlen)
{
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != GENOTYPE_EDGES) {
        snprintf(err, errlen, "genotype.%s: must be an array of %d [op, input] pairs", cell,
                 GENOTYPE_EDGES);
        return -1;
    }
    for (int i = 0; i < GENOTYPE_EDGES; i++) {
        const cJSON *pair = cJSON_GetArrayItem(arr, i);
        const cJSON *op = cJSON_GetArrayItem(pair, 0), *in = cJSON_GetArrayItem(pair, 1);
        if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !cJSON_IsString(op) ||
            !cJSON_IsNumber(in)) {
            snprintf(err, errlen, "genotype.%s[%d]: must be [op name, input index]", cell, i);
            return -1;
        }
        int k = genotype_op_find(op->valuestring);
        if (k <= GOP_NONE) {
            snprintf(err, errlen, "genotype.%s[%d]: unknown op '%.40s'", cell, i, op->valuestring);
            return -1;
        }
        int node = i / 2;
        double v = in->valuedouble;
        if (v != (int)v || v < 0 || v > node + 1) {
            snprintf(err, errlen, "genotype.%s[%d]: input must be an integer 0..%d for node %d",
                     cell, i, node + 1, node);
            return -1;
        }
        e[i].op = k;
        e[i].input = (int)v;
    }
    return 0;
}

int genotype_from_json(const cJSON *j, struct genotype *g, char *err, size_t errlen)
{
    if (!cJSON_IsObject(j)) {
        snprintf(err, errlen, "genotype: must be an object with normal and reduce cells");
        return -1;
    }
    for (const cJSON *it = j->child; it; it = it->next)
        if (strcmp(it->string, "normal") != 0 && strcmp(it->string, "reduce") != 0 &&
            strcmp(it->string, "normal_concat") != 0 && strcmp(it->string, "reduce_concat") != 0) {
            snprintf(err, errlen, "genotype.%.40s: unknown member", it->string);
            return -1;
        }
    if (cell_from_json(cJSON_GetObjectItemCaseSensitive(j, "normal"), "normal", g->normal, err,
                       errlen) < 0)
        return -1;
    return cell_from_json(cJSON_GetObjectItemCaseSensitive(j, "reduce"), "reduce", g->reduce,
                          err, errlen);
}

static cJSON *cell_to_json(const struct genotype_edge *e)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < GENOTYPE_EDGES; i++) {
        cJSON *pair = cJSON_CreateArray();
        if (pair == NULL) {
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(pair, cJSON_CreateString(OP_NAMES[e[i].op]));
        cJSON_AddItemToArray(pair, cJSON_CreateNumber(e[i].input));
        cJSON_AddItemToArray(arr, pair);
    }
    return arr;
}

cJSON *genotype_to_json(const struct genotype *g)
{
    cJSON *j = cJSON_CreateObject(), *n = cell_to_json(g->normal), *r = cell_to_json(g->reduce);
    if (j == NULL || n == NULL || r == NULL) {
        cJSON_Delete(j);
        cJSON_Delete(n);
        cJSON_Delete(r);
        return NULL;
    }
    cJSON_AddItemToObject(j, "normal", n);
    cJSON_AddItemToObject(j, "reduce", r);
    return j;
}

uint64_t genotype_rng_next(struct genotype_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int below(struct genotype_rng *r, int n) { return (int)(genotype_rng_next(r) % (uint64_t)n); }

static int random_op(struct genotype_rng *r) { return 1 + below(r, GOP_COUNT - 1); }

static void random_cell(struct genotype_edge *e, struct genotype_rng *r)
{
    for (int node = 0; node < GENOTYPE_NODES; node++) {
        int a = below(r, node + 2), b = below(r, node + 1);
        if (b >= a) b++;   /* two distinct inputs */
        e[2 * node] = (struct genotype_edge){random_op(r), a};
        e[2 * node + 1] = (struct genotype_edge){random_op(r), b};
    }
}

void genotype_random(struct genotype *g, struct genotype_rng *r)
{
    random_cell(g->normal, r);
    random_cell(g->reduce, r);
}

void genotype_mutate(struct genotype *g, struct genotype_rng *r)
{
    struct genotype_edge *cell = below(r, 2) ? g->reduce : g->normal;
    int i = below(r, GENOTYPE_EDGES), node = i / 2;
    struct genotype_edge *e = &cell[i], *other = &cell[i ^ 1];
    /* node 0 has two candidate inputs and uses both: only its ops change */
    if (node == 0 || below(r, 2) == 0) {
        int op = 1 + below(r, GOP_COUNT - 2);   /* any op but the current one */
        if (op >= e->op) op++;
        e->op = op;
        return;
    }
    /* another input, distinct from its sibling's: node >= 1 has node + 2
     * candidates, so at least one is free besides the two in use */
    int n = node + 2, in;
    do in = below(r, n);
    while (in == e->input || in == other->input);
    e->input = in;
}

void genotype_key(const struct genotype *g, char *out, size_t len)
{
    size_t o = 0;
    for (int c = 0; c < 2; c++) {
        const struct genotype_edge *e = c ? g->reduce : g->normal;
        for (int i = 0; i < GENOTYPE_EDGES && o < len; i++)
            o += (size_t)snprintf(out + o, len - o, "%s%d%d", c || i ? "." : "", e[i].op,
                                  e[i].input);
    }
    if (len) out[o < len ? o : len - 1] = '\0';
}

/* --- the diagram --------------------------------------------------------------- */

struct sb {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_printf(struct sb *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n;
        char *q = realloc(b->p, cap);
        if (q == NULL) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* Text content with &, <, > escaped. */
static void sb_text(struct sb *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '&') sb_printf(b, "&amp;");
        else if (*s == '<') sb_printf(b, "&lt;");
        else if (*s == '>') sb_printf(b, "&gt;");
        else if (*s == '"') sb_printf(b, "&quot;");
        else sb_printf(b, "%c", *s);
    }
}

static const char *op_color(int op)
{
    switch (op) {
    case GOP_MAX_POOL_3X3:
    case GOP_AVG_POOL_3X3: return "#8c6d1f";
    case GOP_SKIP_CONNECT: return "#555555";
    case GOP_SEP_CONV_3X3:
    case GOP_SEP_CONV_5X5: return "#1f5f8c";
    default: return "#7a2f8c";
    }
}

#define CELL_W 860
#define CELL_H 250

/* One cell at vertical offset y0. States: 0, 1 = inputs, 2.. = nodes,
 * GENOTYPE_NODES + 2 = the output. */
static void draw_cell(struct sb *b, const struct genotype_edge *e, const char *name, int y0)
{
    double x[GENOTYPE_NODES + 3], y[GENOTYPE_NODES + 3];
    x[0] = 60, y[0] = y0 + 70;
    x[1] = 60, y[1] = y0 + 180;
    for (int i = 0; i < GENOTYPE_NODES; i++) {
        x[2 + i] = 230 + 150 * i;
        y[2 + i] = y0 + (i % 2 ? 170 : 85);
    }
    x[GENOTYPE_NODES + 2] = CELL_W - 60, y[GENOTYPE_NODES + 2] = y0 + 125;
    sb_printf(b, "<text x=\"12\" y=\"%d\" class=\"cell\">", y0 + 22);
    sb_text(b, name);
    sb_printf(b, " cell</text>\n");
    /* concat edges first, under everything */
    for (int i = 0; i < GENOTYPE_NODES; i++)
        sb_printf(b,
                  "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" class=\"concat\"/>\n",
                  x[2 + i], y[2 + i], x[GENOTYPE_NODES + 2], y[GENOTYPE_NODES + 2]);
    for (int i = 0; i < GENOTYPE_EDGES; i++) {
        int to = 2 + i / 2, from = e[i].input;
        double bend = (i % 2 ? 28 : -28);
        double mx = (x[from] + x[to]) / 2, my = (y[from] + y[to]) / 2 + bend;
        const char *c = op_color(e[i].op);
        sb_printf(b,
                  "<path d=\"M%.0f %.0f Q%.0f %.0f %.0f %.0f\" stroke=\"%s\" class=\"edge\" "
                  "marker-end=\"url(#arrow)\"/>\n",
                  x[from], y[from], mx, my, x[to] - 22, y[to], c);
        /* the quadratic's midpoint is halfway between the chord's middle and the control */
        double lx = (x[from] + x[to] - 22) / 4 + mx / 2, ly = (y[from] + y[to]) / 4 + my / 2;
        sb_printf(b, "<text x=\"%.0f\" y=\"%.0f\" class=\"op\" fill=\"%s\">%s</text>\n", lx,
                  ly - 3, c, OP_NAMES[e[i].op]);
    }
    static const char *const in_names[] = {"c_{k-2}", "c_{k-1}"};
    for (int s = 0; s < GENOTYPE_NODES + 3; s++) {
        char label[16];
        const char *fill = "#e8f0fa";
        if (s < 2) {
            snprintf(label, sizeof label, "%s", in_names[s]);
            fill = "#e6f4e6";
        } else if (s < GENOTYPE_NODES + 2) {
            snprintf(label, sizeof label, "%d", s - 2);
        } else {
            snprintf(label, sizeof label, "c_{k}");
            fill = "#fbeee0";
        }
        sb_printf(b,
                  "<rect x=\"%.0f\" y=\"%.0f\" width=\"44\" height=\"26\" rx=\"6\" "
                  "fill=\"%s\" class=\"node\"/>\n<text x=\"%.0f\" y=\"%.0f\" "
                  "class=\"label\">%s</text>\n",
                  x[s] - 22, y[s] - 13, fill, x[s], y[s] + 5, label);
    }
}

char *genotype_svg(const struct genotype *g, const char *title)
{
    struct sb b = {malloc(8192), 0, 8192, 0};
    if (b.p == NULL) return NULL;
    int h = 2 * CELL_H + 40;
    sb_printf(&b,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
              "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n<title>",
              CELL_W, h, CELL_W, h);
    sb_text(&b, title ? title : "DARTS cells");
    sb_printf(&b,
              "</title>\n<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" "
              "refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">"
              "<path d=\"M0 0 L10 5 L0 10 z\" fill=\"#444\"/></marker>\n<style>"
              ".edge{fill:none;stroke-width:1.6}.concat{stroke:#bbb;stroke-dasharray:4 3}"
              ".node{stroke:#333}.label{font:12px sans-serif;text-anchor:middle}"
              ".op{font:10px sans-serif;text-anchor:middle}"
              ".cell{font:bold 14px sans-serif}</style></defs>\n"
              "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
    draw_cell(&b, g->normal, "normal", 10);
    draw_cell(&b, g->reduce, "reduction", 10 + CELL_H + 20);
    sb_printf(&b, "</svg>\n");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

const struct genotype genotype_darts_v2 = {
    .normal = {{GOP_SEP_CONV_3X3, 0}, {GOP_SEP_CONV_3X3, 1}, {GOP_SEP_CONV_3X3, 0},
               {GOP_SEP_CONV_3X3, 1}, {GOP_SEP_CONV_3X3, 1}, {GOP_SKIP_CONNECT, 0},
               {GOP_SKIP_CONNECT, 0}, {GOP_DIL_CONV_3X3, 2}},
    .reduce = {{GOP_MAX_POOL_3X3, 0}, {GOP_MAX_POOL_3X3, 1}, {GOP_SKIP_CONNECT, 2},
               {GOP_MAX_POOL_3X3, 1}, {GOP_MAX_POOL_3X3, 0}, {GOP_SKIP_CONNECT, 2},
               {GOP_SKIP_CONNECT, 2}, {GOP_MAX_POOL_3X3, 1}},
};
