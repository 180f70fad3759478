/* gunzip.c - see gunzip.h. zlib's inflate with windowBits 15+16 (gzip
 * wrapper only), reset at each member end. */
#include "lib/gunzip.h"

#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define OUT_BLOCK (64 * 1024)

struct gunzip {
    z_stream z;
    int in_member;      /* a member has started and not ended */
    uint64_t in_total, out_total, max_out;
    double max_ratio;
    gunzip_out_fn fn;
    void *ctx;
    int failed;
    unsigned char out[OUT_BLOCK];
};

int gunzip_is_gzip(const void *data, size_t len)
{
    const unsigned char *p = data;
    return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

struct gunzip *gunzip_new(uint64_t max_out, double max_ratio, gunzip_out_fn fn, void *ctx)
{
    struct gunzip *g = calloc(1, sizeof *g);
    if (g == NULL) return NULL;
    if (inflateInit2(&g->z, 15 + 16) != Z_OK) {
        free(g);
        return NULL;
    }
    g->max_out = max_out;
    g->max_ratio = max_ratio;
    g->fn = fn;
    g->ctx = ctx;
    return g;
}

void gunzip_free(struct gunzip *g)
{
    if (g == NULL) return;
    inflateEnd(&g->z);
    free(g);
}

static int over_limit(const struct gunzip *g)
{
    if (g->max_out && g->out_total > g->max_out) return 1;
    if (g->max_ratio > 0 && g->out_total > (16u << 20) &&
        (double)g->out_total > g->max_ratio * (double)(g->in_total ? g->in_total : 1))
        return 1;
    return 0;
}

int gunzip_feed(struct gunzip *g, const void *data, size_t len)
{
    if (g->failed) return g->failed;
    const unsigned char *p = data;
    while (len > 0) {
        /* zlib counts in uInt; feed at most 1 GiB per round. */
        size_t take = len > (1u << 30) ? (1u << 30) : len;
        g->z.next_in = (unsigned char *)p;
        g->z.avail_in = (uInt)take;
        int more = 1;
        while (more) {
            /* Bytes after a finished member: skip trailing zero padding
             * (tar and some tools add it), start a new member otherwise. */
            if (!g->in_member) {
                while (g->z.avail_in > 0 && *g->z.next_in == 0) {
                    g->z.next_in++;
                    g->z.avail_in--;
                }
                if (g->z.avail_in == 0) break;
                g->in_member = 1;
            }
            uInt before = g->z.avail_in;
            g->z.next_out = g->out;
            g->z.avail_out = OUT_BLOCK;
            int zr = inflate(&g->z, Z_NO_FLUSH);
            size_t produced = OUT_BLOCK - g->z.avail_out;
            g->in_total += before - g->z.avail_in;
            g->out_total += produced;
            /* Deliver what inflate produced before reporting an error or
             * the limit, and no byte past the limit: the outcome must not
             * depend on how the input was split into calls. */
            int bad = zr != Z_OK && zr != Z_STREAM_END && !(zr == Z_BUF_ERROR && produced == 0);
            int limit = over_limit(g);
            size_t deliver = produced;
            if (limit && g->max_out && g->out_total > g->max_out) {
                uint64_t past = g->out_total - g->max_out;
                deliver -= past < produced ? (size_t)past : produced;
            }
            if (deliver > 0 && g->fn((void *)g->ctx, (const char *)g->out, deliver) != 0)
                return g->failed = GUNZIP_ESTOPPED;
            if (limit) return g->failed = GUNZIP_ELIMIT;
            if (bad) return g->failed = zr == Z_MEM_ERROR ? GUNZIP_ENOMEM : GUNZIP_EDATA;
            if (zr == Z_STREAM_END) {
                g->in_member = 0;
                inflateReset(&g->z);
            }
            /* A full output block may leave more output inside zlib even
             * when all input is taken: go round until it is drained. */
            more = g->z.avail_in > 0 || produced == OUT_BLOCK;
        }
        p += take;
        len -= take;
    }
    return GUNZIP_OK;
}

int gunzip_finish(struct gunzip *g)
{
    if (g->failed) return g->failed;
    if (g->in_member || g->in_total == 0) return g->failed = GUNZIP_ETRUNCATED;
    return GUNZIP_OK;
}

uint64_t gunzip_total_in(const struct gunzip *g) { return g->in_total; }
uint64_t gunzip_total_out(const struct gunzip *g) { return g->out_total; }
