/*
 * imageset.c - profile an uploaded image archive in one streaming pass.
 * See imageset.h for the rules, the limits and the JSON it produces.
 *
 * How: libarchive reads the archive through the caller's callbacks (zip,
 * tar, gzip filter only). For each regular entry we pull its data in 64 KiB
 * chunks with archive_read_data, counting every decompressed byte against
 * the limits before doing anything with it. The first 8 bytes decide what
 * the entry is:
 *   PNG/JPEG -> bytes are collected (up to max_entry_bytes) and decoded by
 *               lib/image once the entry ends;
 *   IDX      -> a small state machine checks the header and counts the
 *               data (labels go into a 256-bucket histogram);
 *   gzip     -> inflated with zlib as it streams, into the same IDX state
 *               machine (or dropped if it is not IDX);
 *   other    -> drained and counted as skipped.
 * Nothing but the current image and the summary counters is held.
 *
 * Visiting (imageset_visit) is the same pass with a callback: each class
 * folder image is decoded (image_decode instead of image_probe) and handed
 * over as it ends; IDX data, which needs both files, is kept (each file at
 * most max_entry_bytes) and handed over image by image once the walk has
 * shown that the layout is "idx". So the layout, the safety rules and the
 * class names are decided in one place for profiling and for training.
 */
#include "lib/imageset.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "lib/image.h"

#define CHUNK (64u << 10)

/* libarchive's ARCHIVE_ERRNO_FILE_FORMAT ("Unrecognized archive format") is
 * private; its archive_private.h makes it EFTYPE where that exists, else
 * EILSEQ. */
#ifdef EFTYPE
#define IMAGESET_ERRNO_FILE_FORMAT EFTYPE
#else
#define IMAGESET_ERRNO_FILE_FORMAT EILSEQ
#endif

/* --- small containers ------------------------------------------------------ */

struct cls {
    char *name;
    uint64_t count;
    int n_samples;
    char *samples[IMAGESET_MAX_SAMPLES];
};

struct size_slot {
    uint32_t w, h;
    uint64_t count;           /* 0 = empty slot */
};

/* A list of names that keeps the first `cap` and counts the rest. */
struct namelist {
    char **names;
    char **notes;             /* NULL when the list has none */
    size_t n, cap;
    uint64_t count;
};

/* --- IDX -------------------------------------------------------------------- */

enum idx_state { IDX_HEADER, IDX_DATA, IDX_NOT_IDX };

struct idx_file {
    int present;
    int gz;
    char name[IMAGESET_MAX_PATH + 1];
    uint64_t n, rows, cols;
    uint64_t expected, got;   /* data bytes (after the header) */
    uint64_t hist[256];       /* labels only */
    unsigned char *data;      /* visiting only: the expected bytes, owned */
};

/* The parser of the entry being read. */
struct idx_parse {
    enum idx_state state;
    unsigned char hdr[16];
    size_t hdr_len, hdr_need; /* need 4 until the magic is known */
    int kind;                 /* 1 labels, 3 images, 0 unknown yet */
    struct idx_file f;
};

enum entry_mode { M_SNIFF, M_IMAGE, M_IDX, M_GZIP, M_DRAIN };

struct ctx {
    const struct imageset_source *src;
    struct imageset_error *err;
    struct archive *a;
    /* limits, resolved */
    uint64_t max_entries, max_entry_bytes, max_total_bytes, max_classes;
    double max_ratio;
    uint64_t compressed;      /* 0: use raw_read */
    struct image_limits image_lim;
    int src_failed;
    uint64_t raw_read;

    /* counters */
    uint64_t entries, total;
    const char *format;

    /* folder layout */
    struct cls **cls_tab;     /* open addressing */
    size_t cls_cap, n_cls;
    struct size_slot *sz_tab;
    size_t sz_cap, n_sz;
    uint64_t images, folder_images_seen, root_images;
    uint64_t channels[5];
    uint64_t enc_png, enc_jpeg;
    uint32_t min_w, min_h, max_w, max_h;
    struct namelist unreadable, skipped;
    uint64_t skip_reason[6];

    /* idx layout */
    struct idx_file idx_images, idx_labels;
    struct idx_parse *ip;     /* of the current entry */

    /* the current entry */
    const char *path;         /* pathbuf, or "" */
    char pathbuf[IMAGESET_MAX_PATH + 1];
    enum entry_mode mode;
    unsigned char head[8];
    size_t head_len;
    unsigned char *img;
    size_t img_len, img_cap;
    uint64_t entry_bytes;
    z_stream z;
    int z_live, z_end;
    unsigned char *chunk, *zout;

    /* visiting */
    unsigned flags;
    imageset_visit_fn fn;     /* NULL when profiling */
    void *fn_ctx;
};

enum skip_reason {
    SK_NOT_IMAGE, SK_ROOT, SK_HIDDEN, SK_NOT_REGULAR, SK_ENCRYPTED, SK_IDX_BESIDE,
};
static const char *const skip_reason_name[6] = {
    "not an image", "at the archive root", "hidden", "not a regular file",
    "encrypted", "IDX beside class folders",
};

/* Length of the valid UTF-8 sequence at s (no overlongs, no surrogates,
 * <= U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)   /* also stops at the NUL */
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Replace every byte that is not part of valid UTF-8 with '?', in place,
 * so that names and messages can go into JSON and PostgreSQL as they are
 * (a name cut short by a buffer ends in '?'s too). */
static void utf8_sanitize(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = utf8_len(p);
        if (n == 0) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

static int fail(struct ctx *c, int code, const char *entry, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct ctx *c, int code, const char *entry, const char *fmt, ...)
{
    struct imageset_error *e = c->err;
    if (e->code != 0)
        return e->code;       /* keep the first */
    e->code = code;
    snprintf(e->entry, sizeof e->entry, "%s", entry ? entry : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    utf8_sanitize(e->entry);
    utf8_sanitize(e->message);
    return code;
}

static int oom(struct ctx *c)
{
    return fail(c, IMAGESET_ENOMEM, c->path, "out of memory");
}

const char *imageset_strerror(int code)
{
    switch (code) {
    case IMAGESET_OK: return "ok";
    case IMAGESET_ENOMEM: return "out of memory";
    case IMAGESET_EFORMAT: return "not a zip, tar or tar.gz archive";
    case IMAGESET_ECORRUPT: return "truncated or damaged archive";
    case IMAGESET_EPATH: return "unsafe path in the archive";
    case IMAGESET_ELIMIT: return "archive over a size limit";
    case IMAGESET_ELAYOUT: return "neither class folders nor IDX files";
    case IMAGESET_ENOIMAGES: return "no readable images";
    case IMAGESET_EIDX: return "inconsistent IDX files";
    case IMAGESET_EARG: return "bad argument";
    case IMAGESET_ESTOPPED: return "stopped by the caller";
    default: return "unknown error";
    }
}

/* --- name lists --------------------------------------------------------------- */

static int namelist_add(struct namelist *l, const char *name, const char *note)
{
    l->count++;
    if (l->n >= l->cap)
        return 0;
    if (!l->names) {
        l->names = calloc(l->cap, sizeof *l->names);
        l->notes = calloc(l->cap, sizeof *l->notes);
        if (!l->names || !l->notes)
            return -1;
    }
    l->names[l->n] = strdup(name);
    l->notes[l->n] = strdup(note ? note : "");
    if (!l->names[l->n] || !l->notes[l->n]) {
        free(l->names[l->n]);
        free(l->notes[l->n]);
        l->names[l->n] = l->notes[l->n] = NULL;
        return -1;
    }
    l->n++;
    return 0;
}

static void namelist_free(struct namelist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->names[i]);
        free(l->notes[i]);
    }
    free(l->names);
    free(l->notes);
}

static int skip(struct ctx *c, const char *name, int reason)
{
    c->skip_reason[reason]++;
    if (namelist_add(&c->skipped, name, skip_reason_name[reason]) != 0)
        return oom(c);
    return 0;
}

/* --- class table (string keys, open addressing) ------------------------------ */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int cls_grow(struct ctx *c)
{
    size_t cap = c->cls_cap ? c->cls_cap * 2 : 64;
    struct cls **tab = calloc(cap, sizeof *tab);
    if (!tab)
        return -1;
    for (size_t i = 0; i < c->cls_cap; i++) {
        struct cls *k = c->cls_tab[i];
        if (!k)
            continue;
        size_t j = hash_str(k->name) & (cap - 1);
        while (tab[j])
            j = (j + 1) & (cap - 1);
        tab[j] = k;
    }
    free(c->cls_tab);
    c->cls_tab = tab;
    c->cls_cap = cap;
    return 0;
}

/* The class named name[0..len), created when new; NULL with err set. */
static struct cls *cls_get(struct ctx *c, const char *name, size_t len)
{
    char key[IMAGESET_MAX_PATH + 1];
    memcpy(key, name, len);
    key[len] = '\0';
    if (c->n_cls * 2 >= c->cls_cap && cls_grow(c) != 0) {
        oom(c);
        return NULL;
    }
    size_t j = hash_str(key) & (c->cls_cap - 1);
    while (c->cls_tab[j]) {
        if (strcmp(c->cls_tab[j]->name, key) == 0)
            return c->cls_tab[j];
        j = (j + 1) & (c->cls_cap - 1);
    }
    if (c->n_cls >= c->max_classes) {
        fail(c, IMAGESET_ELIMIT, c->path, "%s: more than %llu class folders", c->path,
             (unsigned long long)c->max_classes);
        return NULL;
    }
    struct cls *k = calloc(1, sizeof *k);
    if (!k || !(k->name = strdup(key))) {
        free(k);
        oom(c);
        return NULL;
    }
    c->cls_tab[j] = k;
    c->n_cls++;
    return k;
}

static void cls_free_all(struct ctx *c)
{
    for (size_t i = 0; i < c->cls_cap; i++) {
        struct cls *k = c->cls_tab[i];
        if (!k)
            continue;
        for (int s = 0; s < k->n_samples; s++)
            free(k->samples[s]);
        free(k->name);
        free(k);
    }
    free(c->cls_tab);
}

/* --- size table ----------------------------------------------------------- */

static uint64_t hash_wh(uint32_t w, uint32_t h)
{
    uint64_t x = ((uint64_t)w << 32) | h;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static int size_add(struct ctx *c, uint32_t w, uint32_t h)
{
    if (c->n_sz * 2 >= c->sz_cap) {
        size_t cap = c->sz_cap ? c->sz_cap * 2 : 64;
        struct size_slot *tab = calloc(cap, sizeof *tab);
        if (!tab)
            return oom(c);
        for (size_t i = 0; i < c->sz_cap; i++) {
            if (!c->sz_tab[i].count)
                continue;
            size_t j = hash_wh(c->sz_tab[i].w, c->sz_tab[i].h) & (cap - 1);
            while (tab[j].count)
                j = (j + 1) & (cap - 1);
            tab[j] = c->sz_tab[i];
        }
        free(c->sz_tab);
        c->sz_tab = tab;
        c->sz_cap = cap;
    }
    size_t j = hash_wh(w, h) & (c->sz_cap - 1);
    while (c->sz_tab[j].count && (c->sz_tab[j].w != w || c->sz_tab[j].h != h))
        j = (j + 1) & (c->sz_cap - 1);
    if (!c->sz_tab[j].count) {
        c->sz_tab[j].w = w;
        c->sz_tab[j].h = h;
        c->n_sz++;
    }
    c->sz_tab[j].count++;
    return 0;
}

/* --- paths ------------------------------------------------------------------ */

/* 0, or IMAGESET_EPATH with err set. '/' and '\' both separate. */
static int check_path(struct ctx *c, const char *p)
{
    size_t len = strlen(p);
    if (len > IMAGESET_MAX_PATH)
        return fail(c, IMAGESET_EPATH, p, "%.200s...: path longer than %d bytes", p,
                    IMAGESET_MAX_PATH);
    if (p[0] == '/' || p[0] == '\\')
        return fail(c, IMAGESET_EPATH, p, "%s: absolute path", p);
    if (isalpha((unsigned char)p[0]) && p[1] == ':')
        return fail(c, IMAGESET_EPATH, p, "%s: path with a drive letter", p);
    const char *s = p;
    while (*s) {
        size_t n = strcspn(s, "/\\");
        if (n == 2 && s[0] == '.' && s[1] == '.')
            return fail(c, IMAGESET_EPATH, p, "%s: path with a '..' component", p);
        s += n;
        if (*s)
            s++;
    }
    return 0;
}

/* Whether the entry is macOS metadata or hidden (a component starting
 * with '.', other than "." itself). */
static int is_hidden(const char *p)
{
    const char *s = p;
    while (*s) {
        size_t n = strcspn(s, "/\\");
        if (n == 8 && memcmp(s, "__MACOSX", 8) == 0)
            return 1;
        if (n >= 2 && s[0] == '.')
            return 1;         /* ".git", ".DS_Store"; "." alone is not hidden */
        s += n;
        if (*s)
            s++;
    }
    return 0;
}

/* The immediate parent folder of path: *name, *len; 0 when at the root.
 * "./" components and empty components are not folders. */
static int parent_folder(const char *p, const char **name, size_t *len)
{
    const char *last = NULL, *prev = NULL;
    size_t last_len = 0, prev_len = 0;
    const char *s = p;
    while (*s) {
        size_t n = strcspn(s, "/\\");
        if (n > 0 && !(n == 1 && s[0] == '.')) {
            prev = last;
            prev_len = last_len;
            last = s;
            last_len = n;
        }
        s += n;
        if (*s)
            s++;
    }
    if (!prev)
        return 0;
    *name = prev;
    *len = prev_len;
    return 1;
}

/* --- IDX parsing ------------------------------------------------------------ */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Feed decoded IDX bytes. 0 or a negative status. */
static int idx_feed(struct ctx *c, const unsigned char *p, size_t n)
{
    struct idx_parse *ip = c->ip;
    while (n > 0 && ip->state == IDX_HEADER) {
        size_t take = ip->hdr_need - ip->hdr_len;
        if (take > n)
            take = n;
        memcpy(ip->hdr + ip->hdr_len, p, take);
        ip->hdr_len += take;
        p += take;
        n -= take;
        if (ip->hdr_len < ip->hdr_need)
            return 0;
        if (ip->kind == 0) {
            uint32_t magic = be32(ip->hdr);
            if (magic == 0x00000801) {
                ip->kind = 1;
                ip->hdr_need = 8;
            } else if (magic == 0x00000803) {
                ip->kind = 3;
                ip->hdr_need = 16;
            } else {
                ip->state = IDX_NOT_IDX;
                return 0;
            }
            continue;
        }
        struct idx_file *f = &ip->f;
        f->n = be32(ip->hdr + 4);
        if (ip->kind == 3) {
            f->rows = be32(ip->hdr + 8);
            f->cols = be32(ip->hdr + 12);
            if (f->rows == 0 || f->cols == 0 || f->rows > 65535 || f->cols > 65535 ||
                f->rows * f->cols > IMAGE_DEFAULT_MAX_PIXELS)
                return fail(c, IMAGESET_EIDX, f->name,
                            "%s: IDX images of %llux%llu pixels are not supported", f->name,
                            (unsigned long long)f->rows, (unsigned long long)f->cols);
            f->expected = f->n * f->rows * f->cols;   /* < 2^32 * 2^26: no overflow */
        } else {
            f->expected = f->n;
        }
        if (f->expected + ip->hdr_need > c->max_entry_bytes)
            return fail(c, IMAGESET_ELIMIT, f->name,
                        "%s: IDX header says %llu bytes of data, over the %llu byte entry limit",
                        f->name, (unsigned long long)f->expected,
                        (unsigned long long)c->max_entry_bytes);
        if (c->fn && !(f->data = malloc(f->expected ? (size_t)f->expected : 1)))
            return oom(c);
        ip->state = IDX_DATA;
    }
    if (ip->state != IDX_DATA || n == 0)
        return 0;
    struct idx_file *f = &ip->f;
    if (n > f->expected - f->got)
        return fail(c, IMAGESET_EIDX, f->name,
                    "%s: more data than the IDX header says (%llu items of %llu bytes)",
                    f->name, (unsigned long long)f->n,
                    (unsigned long long)(ip->kind == 3 ? f->rows * f->cols : 1));
    if (ip->kind == 1)
        for (size_t i = 0; i < n; i++)
            f->hist[p[i]]++;
    if (f->data)
        memcpy(f->data + f->got, p, n);
    f->got += n;
    return 0;
}

static int inflate_feed(struct ctx *c, const unsigned char *p, size_t n)
{
    c->z.next_in = (Bytef *)p;
    c->z.avail_in = (uInt)n;
    for (;;) {
        if (c->ip->state == IDX_NOT_IDX)
            return 0;         /* not IDX after all: the rest is drained */
        if (c->z_end) {
            if (c->z.avail_in == 0)
                return 0;
            /* another gzip member follows */
            if (inflateReset(&c->z) != Z_OK)
                return fail(c, IMAGESET_EIDX, c->path, "%s: bad gzip data", c->path);
            c->z_end = 0;
        }
        c->z.next_out = c->zout;
        c->z.avail_out = CHUNK;
        int r = inflate(&c->z, Z_NO_FLUSH);
        size_t got = CHUNK - c->z.avail_out;
        if (r == Z_STREAM_END)
            c->z_end = 1;
        else if (r == Z_BUF_ERROR && got == 0)
            return 0;         /* needs more input */
        else if (r != Z_OK && r != Z_BUF_ERROR)
            return fail(c, IMAGESET_EIDX, c->path, "%s: bad gzip data (%s)", c->path,
                        c->z.msg ? c->z.msg : "inflate failed");
        int rc = idx_feed(c, c->zout, got);
        if (rc)
            return rc;
        if (!c->z_end && c->z.avail_in == 0 && c->z.avail_out != 0)
            return 0;
    }
}

/* --- one entry -------------------------------------------------------------- */

static int image_append(struct ctx *c, const unsigned char *p, size_t n)
{
    if (c->img_len + n > c->img_cap) {
        size_t cap = c->img_cap ? c->img_cap : CHUNK;
        while (cap < c->img_len + n)
            cap *= 2;
        /* read_entry keeps img_len + n <= max_entry_bytes: never allocate
         * past that limit. */
        if (cap > c->max_entry_bytes && c->img_len + n <= c->max_entry_bytes)
            cap = (size_t)c->max_entry_bytes;
        unsigned char *q = realloc(c->img, cap);
        if (!q)
            return oom(c);
        c->img = q;
        c->img_cap = cap;
    }
    memcpy(c->img + c->img_len, p, n);
    c->img_len += n;
    return 0;
}

static int start_idx(struct ctx *c, int gz)
{
    c->ip = calloc(1, sizeof *c->ip);
    if (!c->ip)
        return oom(c);
    c->ip->hdr_need = 4;
    c->ip->f.gz = gz;
    snprintf(c->ip->f.name, sizeof c->ip->f.name, "%s", c->path);
    if (gz) {
        memset(&c->z, 0, sizeof c->z);
        if (inflateInit2(&c->z, 16 + MAX_WBITS) != Z_OK)
            return oom(c);
        c->z_live = 1;
        c->z_end = 0;
    }
    return 0;
}

/* Decide what the entry is from its first bytes (all of them if fewer). */
static int classify(struct ctx *c, int has_class)
{
    int fmt = image_sniff(c->head, c->head_len);
    if (fmt != IMAGE_UNKNOWN) {
        if (!has_class && !(c->flags & IMAGESET_VISIT_FLAT)) {
            c->root_images++;
            c->mode = M_DRAIN;
            return skip(c, c->path, SK_ROOT);
        }
        c->mode = M_IMAGE;
        c->img_len = 0;
        return image_append(c, c->head, c->head_len);
    }
    if (c->head_len >= 2 && c->head[0] == 0x1f && c->head[1] == 0x8b) {
        c->mode = M_GZIP;
        int rc = start_idx(c, 1);
        return rc ? rc : inflate_feed(c, c->head, c->head_len);
    }
    if (c->head_len >= 4 && c->head[0] == 0 && c->head[1] == 0 && c->head[2] == 8 &&
        (c->head[3] == 1 || c->head[3] == 3)) {
        c->mode = M_IDX;
        int rc = start_idx(c, 0);
        return rc ? rc : idx_feed(c, c->head, c->head_len);
    }
    c->mode = M_DRAIN;
    return skip(c, c->path, SK_NOT_IMAGE);
}

static int feed(struct ctx *c, const unsigned char *p, size_t n, int has_class)
{
    if (c->mode == M_SNIFF) {
        size_t take = sizeof c->head - c->head_len;
        if (take > n)
            take = n;
        memcpy(c->head + c->head_len, p, take);
        c->head_len += take;
        p += take;
        n -= take;
        if (c->head_len < sizeof c->head)
            return 0;
        int rc = classify(c, has_class);
        if (rc)
            return rc;
    }
    switch (c->mode) {
    case M_IMAGE: return n ? image_append(c, p, n) : 0;
    case M_IDX: return n ? idx_feed(c, p, n) : 0;
    case M_GZIP: return n ? inflate_feed(c, p, n) : 0;
    default: return 0;
    }
}

/* Hand one image to the visitor; its refusal stops the walk. */
static int deliver(struct ctx *c, const char *name, const char *cname,
                   const struct image_pixels *px, const char *error, int format)
{
    struct imageset_item it = {name, cname, px, error, format};
    if (c->fn(c->fn_ctx, &it) != 0)
        return fail(c, IMAGESET_ESTOPPED, name, "%s: stopped by the caller", name);
    return 0;
}

/* cname NULL: an image at the archive root (IMAGESET_VISIT_FLAT only). */
static int finish_image(struct ctx *c, const char *cname, size_t clen)
{
    struct image_info info;
    struct image_pixels px = {0};
    char msg[256];
    c->folder_images_seen++;
    int rc = c->fn ? image_decode(c->img, c->img_len, &c->image_lim, &info, &px, msg, sizeof msg)
                   : image_probe(c->img, c->img_len, &c->image_lim, &info, msg, sizeof msg);
    if (rc == IMAGE_ENOMEM)
        return oom(c);
    char cbuf[IMAGESET_MAX_PATH + 1];
    if (cname) {
        memcpy(cbuf, cname, clen);
        cbuf[clen] = '\0';
    }
    if (rc != 0) {
        utf8_sanitize(msg);
        if (namelist_add(&c->unreadable, c->path, msg) != 0)
            return oom(c);
        return c->fn ? deliver(c, c->path, cname ? cbuf : NULL, NULL, msg, info.format) : 0;
    }
    if (cname) {
        struct cls *k = cls_get(c, cname, clen);
        if (!k) {
            image_pixels_free(&px);
            return c->err->code;
        }
        k->count++;
        if (k->n_samples < IMAGESET_MAX_SAMPLES) {
            if (!(k->samples[k->n_samples] = strdup(c->path))) {
                image_pixels_free(&px);
                return oom(c);
            }
            k->n_samples++;
        }
    }
    if (c->fn) {
        rc = deliver(c, c->path, cname ? cbuf : NULL, &px, NULL, info.format);
        image_pixels_free(&px);
        if (rc)
            return rc;
    }
    c->images++;
    if (info.channels >= 1 && info.channels <= 4)
        c->channels[info.channels]++;
    if (info.format == IMAGE_PNG)
        c->enc_png++;
    else
        c->enc_jpeg++;
    if (c->images == 1) {
        c->min_w = c->max_w = info.width;
        c->min_h = c->max_h = info.height;
    } else {
        if (info.width < c->min_w) c->min_w = info.width;
        if (info.width > c->max_w) c->max_w = info.width;
        if (info.height < c->min_h) c->min_h = info.height;
        if (info.height > c->max_h) c->max_h = info.height;
    }
    return size_add(c, info.width, info.height);
}

static int finish_idx(struct ctx *c)
{
    struct idx_parse *ip = c->ip;
    /* Not IDX after all, or a gzip'd file too short to tell: skipped. */
    if (ip->state == IDX_NOT_IDX || (c->mode == M_GZIP && ip->kind == 0))
        return skip(c, c->path, SK_NOT_IMAGE);
    if (c->mode == M_GZIP && !c->z_end)
        return fail(c, IMAGESET_EIDX, c->path, "%s: gzip stream is truncated", c->path);
    if (ip->state == IDX_HEADER)
        return fail(c, IMAGESET_EIDX, c->path, "%s: IDX header is truncated", c->path);
    struct idx_file *f = &ip->f;
    if (f->got != f->expected)
        return fail(c, IMAGESET_EIDX, f->name,
                    "%s: IDX file holds %llu bytes of data, its header says %llu "
                    "(%llu items)", f->name, (unsigned long long)f->got,
                    (unsigned long long)f->expected, (unsigned long long)f->n);
    struct idx_file *slot = ip->kind == 3 ? &c->idx_images : &c->idx_labels;
    if (slot->present)
        return fail(c, IMAGESET_EIDX, f->name, "%s: a second IDX %s file (the first is %s)",
                    f->name, ip->kind == 3 ? "images" : "labels", slot->name);
    *slot = *f;
    slot->present = 1;
    f->data = NULL;           /* the slot owns it now */
    return 0;
}

static void end_entry(struct ctx *c)
{
    if (c->z_live) {
        inflateEnd(&c->z);
        c->z_live = 0;
    }
    if (c->ip)
        free(c->ip->f.data);
    free(c->ip);
    c->ip = NULL;
}

static int read_entry(struct ctx *c, struct archive_entry *e)
{
    const char *path = c->path;
    int rc = 0;
    const char *cname = NULL;
    size_t clen = 0;
    int has_class = parent_folder(path, &cname, &clen);

    c->mode = M_SNIFF;
    c->head_len = 0;
    c->entry_bytes = 0;
    if (is_hidden(path)) {
        c->mode = M_DRAIN;
        if ((rc = skip(c, path, SK_HIDDEN)) != 0)
            return rc;
    }
    if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
        (uint64_t)archive_entry_size(e) > c->max_entry_bytes)
        return fail(c, IMAGESET_ELIMIT, path, "%s: entry of %lld bytes, over the %llu byte limit",
                    path, (long long)archive_entry_size(e),
                    (unsigned long long)c->max_entry_bytes);

    for (;;) {
        la_ssize_t n = archive_read_data(c->a, c->chunk, CHUNK);
        if (n < 0) {
            if (c->src_failed)
                return fail(c, IMAGESET_ECORRUPT, path, "%s: reading the archive failed", path);
            return fail(c, IMAGESET_ECORRUPT, path, "%s: %s", path,
                        archive_error_string(c->a) ? archive_error_string(c->a)
                                                   : "cannot read the entry's data");
        }
        if (n == 0)
            break;
        c->entry_bytes += (uint64_t)n;
        c->total += (uint64_t)n;
        if (c->entry_bytes > c->max_entry_bytes)
            return fail(c, IMAGESET_ELIMIT, path,
                        "%s: entry decompresses to more than %llu bytes", path,
                        (unsigned long long)c->max_entry_bytes);
        if (c->total > c->max_total_bytes)
            return fail(c, IMAGESET_ELIMIT, path,
                        "%s: archive decompresses to more than %llu bytes", path,
                        (unsigned long long)c->max_total_bytes);
        if (c->total > IMAGESET_RATIO_FLOOR) {
            uint64_t comp = c->compressed ? c->compressed : c->raw_read;
            if (comp == 0 || (double)c->total / (double)comp > c->max_ratio)
                return fail(c, IMAGESET_ELIMIT, path,
                            "%s: archive decompresses to %llu bytes from %llu, a ratio "
                            "over %g (a zip bomb?)", path, (unsigned long long)c->total,
                            (unsigned long long)comp, c->max_ratio);
        }
        if ((rc = feed(c, c->chunk, (size_t)n, has_class)) != 0)
            return rc;
    }
    if (c->mode == M_SNIFF && (rc = classify(c, has_class)) != 0)
        return rc;
    switch (c->mode) {
    case M_IMAGE: return finish_image(c, cname, clen);
    case M_IDX:
    case M_GZIP: return finish_idx(c);
    default: return 0;
    }
}

/* --- libarchive callbacks ----------------------------------------------------- */

static la_ssize_t cb_read(struct archive *a, void *ud, const void **buf)
{
    struct ctx *c = ud;
    ssize_t n = c->src->read(c->src->ctx, buf);
    if (n < 0) {
        c->src_failed = 1;
        archive_set_error(a, EIO, "the read callback failed");
        return -1;
    }
    c->raw_read += (uint64_t)n;
    return n;
}

static la_int64_t cb_seek(struct archive *a, void *ud, la_int64_t off, int whence)
{
    struct ctx *c = ud;
    (void)a;
    return c->src->seek(c->src->ctx, off, whence);
}

/* --- JSON ---------------------------------------------------------------------- */

/* Natural order: runs of digits compare as numbers; ties by strcmp. */
static int natcmp(const char *a, const char *b)
{
    const char *x = a, *y = b;
    while (*x && *y) {
        if (isdigit((unsigned char)*x) && isdigit((unsigned char)*y)) {
            while (*x == '0' && isdigit((unsigned char)x[1])) x++;
            while (*y == '0' && isdigit((unsigned char)y[1])) y++;
            size_t nx = 0, ny = 0;
            while (isdigit((unsigned char)x[nx])) nx++;
            while (isdigit((unsigned char)y[ny])) ny++;
            if (nx != ny)
                return nx < ny ? -1 : 1;
            int d = memcmp(x, y, nx);
            if (d)
                return d;
            x += nx;
            y += ny;
        } else {
            if (*x != *y)
                return (unsigned char)*x < (unsigned char)*y ? -1 : 1;
            x++;
            y++;
        }
    }
    if (*x || *y)
        return *x ? 1 : -1;
    return strcmp(a, b);
}

static int cls_ptr_cmp(const void *a, const void *b)
{
    const struct cls *x = *(const struct cls *const *)a, *y = *(const struct cls *const *)b;
    return natcmp(x->name, y->name);
}

static cJSON *wh(uint32_t w, uint32_t h)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddNumberToObject(o, "width", w);
        cJSON_AddNumberToObject(o, "height", h);
    }
    return o;
}

static void add_namelist(cJSON *parent, const char *key, const struct namelist *l,
                         int notes_as_array)
{
    cJSON *o = cJSON_AddObjectToObject(parent, key);
    if (!o)
        return;
    cJSON_AddNumberToObject(o, "count", (double)l->count);
    cJSON *files = cJSON_AddArrayToObject(o, "files");
    cJSON *reasons = notes_as_array ? cJSON_AddArrayToObject(o, "reasons") : NULL;
    for (size_t i = 0; i < l->n; i++) {
        if (files)
            cJSON_AddItemToArray(files, cJSON_CreateString(l->names[i]));
        if (reasons)
            cJSON_AddItemToArray(reasons, cJSON_CreateString(l->notes[i]));
    }
}

static cJSON *build_common(struct ctx *c, const char *layout)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "kind", "images");
    cJSON_AddStringToObject(o, "layout", layout);
    cJSON_AddStringToObject(o, "format", c->format ? c->format : "");
    return o;
}

static void add_tail(struct ctx *c, cJSON *o)
{
    add_namelist(o, "unreadable", &c->unreadable, 1);
    add_namelist(o, "skipped", &c->skipped, 0);
    cJSON *sk = cJSON_GetObjectItemCaseSensitive(o, "skipped");
    cJSON *rs = sk ? cJSON_AddObjectToObject(sk, "reasons") : NULL;
    for (int i = 0; rs && i < 6; i++)
        if (c->skip_reason[i])
            cJSON_AddNumberToObject(rs, skip_reason_name[i], (double)c->skip_reason[i]);
    cJSON_AddNumberToObject(o, "entries", (double)c->entries);
    cJSON_AddNumberToObject(o, "uncompressed_bytes", (double)c->total);
}

static cJSON *build_folders(struct ctx *c)
{
    cJSON *o = build_common(c, "folders");
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "images", (double)c->images);
    struct cls **v = malloc((c->n_cls ? c->n_cls : 1) * sizeof *v);
    if (!v) {
        cJSON_Delete(o);
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < c->cls_cap; i++)
        if (c->cls_tab[i])
            v[n++] = c->cls_tab[i];
    qsort(v, n, sizeof *v, cls_ptr_cmp);
    cJSON *classes = cJSON_AddArrayToObject(o, "classes");
    for (size_t i = 0; classes && i < n; i++) {
        cJSON *k = cJSON_CreateObject();
        if (!k)
            break;
        cJSON_AddStringToObject(k, "name", v[i]->name);
        cJSON_AddNumberToObject(k, "count", (double)v[i]->count);
        cJSON *s = cJSON_AddArrayToObject(k, "samples");
        for (int j = 0; s && j < v[i]->n_samples; j++)
            cJSON_AddItemToArray(s, cJSON_CreateString(v[i]->samples[j]));
        cJSON_AddItemToArray(classes, k);
    }
    free(v);

    const struct size_slot *best = NULL;
    for (size_t i = 0; i < c->sz_cap; i++) {
        const struct size_slot *s = &c->sz_tab[i];
        if (!s->count)
            continue;
        if (!best || s->count > best->count ||
            (s->count == best->count && (s->w < best->w || (s->w == best->w && s->h < best->h))))
            best = s;
    }
    cJSON *sizes = cJSON_AddObjectToObject(o, "sizes");
    if (sizes) {
        cJSON_AddItemToObject(sizes, "min", wh(c->min_w, c->min_h));
        cJSON_AddItemToObject(sizes, "max", wh(c->max_w, c->max_h));
        cJSON *mc = best ? wh(best->w, best->h) : wh(0, 0);
        if (mc)
            cJSON_AddNumberToObject(mc, "count", best ? (double)best->count : 0);
        cJSON_AddItemToObject(sizes, "most_common", mc);
        cJSON_AddNumberToObject(sizes, "distinct", (double)c->n_sz);
    }
    cJSON *ch = cJSON_AddObjectToObject(o, "channels");
    for (int i = 1; ch && i <= 4; i++) {
        if (c->channels[i]) {
            char key[12];
            snprintf(key, sizeof key, "%d", i);
            cJSON_AddNumberToObject(ch, key, (double)c->channels[i]);
        }
    }
    cJSON *enc = cJSON_AddObjectToObject(o, "encodings");
    if (enc) {
        if (c->enc_png)
            cJSON_AddNumberToObject(enc, "png", (double)c->enc_png);
        if (c->enc_jpeg)
            cJSON_AddNumberToObject(enc, "jpeg", (double)c->enc_jpeg);
    }
    add_tail(c, o);
    return o;
}

static cJSON *build_idx(struct ctx *c)
{
    const struct idx_file *im = &c->idx_images, *lb = &c->idx_labels;
    cJSON *o = build_common(c, "idx");
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "images", (double)im->n);
    cJSON *classes = cJSON_AddArrayToObject(o, "classes");
    for (int i = 0; classes && i < 256; i++) {
        if (!lb->hist[i])
            continue;
        cJSON *k = cJSON_CreateObject();
        if (!k)
            break;
        char name[12];
        snprintf(name, sizeof name, "%d", i);
        cJSON_AddStringToObject(k, "name", name);
        cJSON_AddNumberToObject(k, "count", (double)lb->hist[i]);
        cJSON_AddItemToArray(classes, k);
    }
    cJSON *sizes = cJSON_AddObjectToObject(o, "sizes");
    if (sizes) {
        cJSON_AddItemToObject(sizes, "min", wh((uint32_t)im->cols, (uint32_t)im->rows));
        cJSON_AddItemToObject(sizes, "max", wh((uint32_t)im->cols, (uint32_t)im->rows));
        cJSON *mc = wh((uint32_t)im->cols, (uint32_t)im->rows);
        if (mc)
            cJSON_AddNumberToObject(mc, "count", (double)im->n);
        cJSON_AddItemToObject(sizes, "most_common", mc);
        cJSON_AddNumberToObject(sizes, "distinct", im->n ? 1 : 0);
    }
    cJSON *ch = cJSON_AddObjectToObject(o, "channels");
    if (ch)
        cJSON_AddNumberToObject(ch, "1", (double)im->n);
    add_tail(c, o);
    cJSON *ix = cJSON_AddObjectToObject(o, "idx");
    if (ix) {
        cJSON_AddStringToObject(ix, "images_file", im->name);
        cJSON_AddStringToObject(ix, "labels_file", lb->name);
        cJSON_AddNumberToObject(ix, "rows", (double)im->rows);
        cJSON_AddNumberToObject(ix, "cols", (double)im->cols);
        cJSON_AddBoolToObject(ix, "gzip", im->gz || lb->gz);
    }
    return o;
}

/* After the last entry: pick the layout, check it, build the JSON. */
static int conclude(struct ctx *c, cJSON **out)
{
    int have_idx = c->idx_images.present || c->idx_labels.present;
    if (have_idx && c->folder_images_seen == 0) {
        if (!c->idx_images.present)
            return fail(c, IMAGESET_EIDX, c->idx_labels.name,
                        "%s: an IDX labels file but no IDX images file", c->idx_labels.name);
        if (!c->idx_labels.present)
            return fail(c, IMAGESET_EIDX, c->idx_images.name,
                        "%s: an IDX images file but no IDX labels file", c->idx_images.name);
        if (c->idx_images.n != c->idx_labels.n)
            return fail(c, IMAGESET_EIDX, c->idx_labels.name,
                        "%s has %llu labels but %s has %llu images", c->idx_labels.name,
                        (unsigned long long)c->idx_labels.n, c->idx_images.name,
                        (unsigned long long)c->idx_images.n);
        if (c->idx_images.n == 0)
            return fail(c, IMAGESET_ENOIMAGES, c->idx_images.name,
                        "%s: the IDX files hold no images", c->idx_images.name);
        if (c->fn) {
            const struct idx_file *im = &c->idx_images;
            struct image_pixels px = {NULL, (uint32_t)im->cols, (uint32_t)im->rows, 1};
            size_t sz = (size_t)(im->rows * im->cols);
            for (uint64_t i = 0; i < im->n; i++) {
                char name[IMAGESET_MAX_PATH + 32], cname[8];
                snprintf(name, sizeof name, "%s#%llu", im->name, (unsigned long long)i);
                snprintf(cname, sizeof cname, "%d", c->idx_labels.data[i]);
                px.data = im->data + i * sz;
                int rc = deliver(c, name, cname, &px, NULL, IMAGE_UNKNOWN);
                if (rc)
                    return rc;
            }
        }
        *out = build_idx(c);
        return *out ? 0 : oom(c);
    }
    if (c->folder_images_seen == 0) {
        if (c->root_images)
            return fail(c, IMAGESET_ELAYOUT, "",
                        "%llu images at the archive root and none in class folders: put "
                        "each class in its own folder (cat/001.png) or upload IDX files",
                        (unsigned long long)c->root_images);
        return fail(c, IMAGESET_ELAYOUT, "",
                    "no PNG or JPEG images in class folders and no IDX files among %llu "
                    "entries", (unsigned long long)c->entries);
    }
    if (c->images == 0)
        return fail(c, IMAGESET_ENOIMAGES, c->unreadable.n ? c->unreadable.names[0] : "",
                    "none of the %llu images could be decoded (first: %s: %s)",
                    (unsigned long long)c->unreadable.count,
                    c->unreadable.n ? c->unreadable.names[0] : "?",
                    c->unreadable.n ? c->unreadable.notes[0] : "?");
    int rc;
    if (c->idx_images.present && (rc = skip(c, c->idx_images.name, SK_IDX_BESIDE)) != 0)
        return rc;
    if (c->idx_labels.present && (rc = skip(c, c->idx_labels.name, SK_IDX_BESIDE)) != 0)
        return rc;
    *out = build_folders(c);
    return *out ? 0 : oom(c);
}

/* The format of an opened archive, or NULL when it is not one we take. */
static const char *format_name(struct archive *a)
{
    int gz = 0;
    int nf = archive_filter_count(a);
    for (int i = 0; i < nf; i++) {
        int code = archive_filter_code(a, i);
        if (code == ARCHIVE_FILTER_GZIP)
            gz = 1;
        else if (code != ARCHIVE_FILTER_NONE)
            return NULL;
    }
    int base = archive_format(a) & ARCHIVE_FORMAT_BASE_MASK;
    if (base == ARCHIVE_FORMAT_ZIP && !gz)
        return "zip";
    if (base == ARCHIVE_FORMAT_TAR)
        return gz ? "tar.gz" : "tar";
    return NULL;
}

static int walk(const struct imageset_source *src, const struct imageset_limits *lim,
                unsigned flags, imageset_visit_fn fn, void *fn_ctx, cJSON **out,
                struct imageset_error *err)
{
    struct imageset_error ignored_err;
    if (!err)
        err = &ignored_err;
    memset(err, 0, sizeof *err);
    if (out)
        *out = NULL;

    struct ctx c;
    memset(&c, 0, sizeof c);
    c.err = err;
    c.src = src;
    c.flags = flags;
    c.fn = fn;
    c.fn_ctx = fn_ctx;
    cJSON *discard = NULL;
    if (!src || !src->read || (!out && !fn))
        return fail(&c, IMAGESET_EARG, "", "no source or no output");
    if (!out)
        out = &discard;       /* visiting without a profile */

    struct imageset_limits L = lim ? *lim : (struct imageset_limits){0};
    c.max_entries = L.max_entries ? L.max_entries : IMAGESET_DEFAULT_MAX_ENTRIES;
    c.max_entry_bytes = L.max_entry_bytes ? L.max_entry_bytes : IMAGESET_DEFAULT_MAX_ENTRY_BYTES;
    c.max_total_bytes = L.max_total_bytes ? L.max_total_bytes : IMAGESET_DEFAULT_MAX_TOTAL_BYTES;
    c.max_ratio = L.max_ratio > 0 ? L.max_ratio : IMAGESET_DEFAULT_MAX_RATIO;
    c.max_classes = L.max_classes ? L.max_classes : IMAGESET_DEFAULT_MAX_CLASSES;
    c.compressed = L.compressed_bytes;
    c.image_lim = L.image;
    c.unreadable.cap = IMAGESET_MAX_UNREADABLE_NAMES;
    c.skipped.cap = IMAGESET_MAX_SKIPPED_NAMES;

    if (!c.compressed && src->seek) {
        int64_t end = src->seek(src->ctx, 0, SEEK_END);
        if (end >= 0 && src->seek(src->ctx, 0, SEEK_SET) != 0)
            return fail(&c, IMAGESET_ECORRUPT, "", "the source cannot seek back to its start");
        if (end > 0)
            c.compressed = (uint64_t)end;
    }

    int rc = 0;
    c.chunk = malloc(CHUNK);
    c.zout = malloc(CHUNK);
    c.a = archive_read_new();
    if (!c.chunk || !c.zout || !c.a) {
        rc = oom(&c);
        goto out;
    }
    archive_read_support_filter_gzip(c.a);
    archive_read_support_format_tar(c.a);
    if (src->seek)
        archive_read_support_format_zip(c.a);     /* seekable and streamable */
    else
        archive_read_support_format_zip_streamable(c.a);
    archive_read_set_read_callback(c.a, cb_read);
    if (src->seek)
        archive_read_set_seek_callback(c.a, cb_seek);
    archive_read_set_callback_data(c.a, &c);
    if (archive_read_open1(c.a) != ARCHIVE_OK) {
        /* No reader recognised it: not an archive of ours. Anything else
         * (a gzip stream that ends early, a read error) is damage. */
        if (c.src_failed)
            rc = fail(&c, IMAGESET_ECORRUPT, "", "reading the archive failed");
        else if (archive_errno(c.a) != IMAGESET_ERRNO_FILE_FORMAT)
            rc = fail(&c, IMAGESET_ECORRUPT, "", "the archive is truncated or damaged (%s)",
                      archive_error_string(c.a) ? archive_error_string(c.a) : "unreadable");
        else
            rc = fail(&c, IMAGESET_EFORMAT, "", "not a zip, tar or tar.gz archive (%s)",
                      archive_error_string(c.a) ? archive_error_string(c.a) : "unrecognised");
        goto out;
    }

    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(c.a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            const char *what = archive_error_string(c.a);
            if (c.src_failed)
                what = "the read callback failed";
            if (c.entries == 0 && !c.src_failed && !format_name(c.a))
                rc = fail(&c, IMAGESET_EFORMAT, "", "not a zip, tar or tar.gz archive (%s)",
                          what ? what : "unrecognised");
            else
                rc = fail(&c, IMAGESET_ECORRUPT, "",
                          "the archive is truncated or damaged after %llu entries: %s",
                          (unsigned long long)c.entries, what ? what : "bad header");
            goto out;
        }
        if (!c.format && !(c.format = format_name(c.a))) {
            rc = fail(&c, IMAGESET_EFORMAT, "", "not a zip, tar or tar.gz archive (%s)",
                      archive_format_name(c.a) ? archive_format_name(c.a) : "unknown");
            goto out;
        }
        if (++c.entries > c.max_entries) {
            rc = fail(&c, IMAGESET_ELIMIT, "", "more than %llu entries in the archive",
                      (unsigned long long)c.max_entries);
            goto out;
        }
        const char *path = archive_entry_pathname(e);
        if (!path)
            path = archive_entry_pathname_utf8(e);
        if (!path || !*path) {
            rc = fail(&c, IMAGESET_EPATH, "", "entry %llu has no readable name",
                      (unsigned long long)c.entries);
            goto out;
        }
        if ((rc = check_path(&c, path)) != 0)
            goto out;
        /* From here on the name is valid UTF-8 (invalid bytes become '?'). */
        memcpy(c.pathbuf, path, strlen(path) + 1);   /* check_path bounded it */
        utf8_sanitize(c.pathbuf);
        path = c.path = c.pathbuf;
        mode_t type = archive_entry_filetype(e);
        if (type == AE_IFDIR)
            continue;
        if (type != AE_IFREG || archive_entry_hardlink(e)) {
            if ((rc = skip(&c, path, SK_NOT_REGULAR)) != 0)
                goto out;
            continue;
        }
        if (archive_entry_is_encrypted(e)) {
            if ((rc = skip(&c, path, SK_ENCRYPTED)) != 0)
                goto out;
            continue;
        }
        rc = read_entry(&c, e);
        end_entry(&c);
        if (rc)
            goto out;
    }
    c.path = "";
    if (!c.format)
        c.format = format_name(c.a);
    if (!c.format) {
        rc = fail(&c, IMAGESET_EFORMAT, "", "not a zip, tar or tar.gz archive");
        goto out;
    }
    rc = conclude(&c, out);

out:
    end_entry(&c);
    if (c.a)
        archive_read_free(c.a);
    cls_free_all(&c);
    free(c.sz_tab);
    namelist_free(&c.unreadable);
    namelist_free(&c.skipped);
    free(c.img);
    free(c.chunk);
    free(c.zout);
    free(c.idx_images.data);
    free(c.idx_labels.data);
    if (rc && out && *out) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    cJSON_Delete(discard);
    return rc;
}

int imageset_profile(const struct imageset_source *src, const struct imageset_limits *lim,
                     cJSON **out, struct imageset_error *err)
{
    return walk(src, lim, 0, NULL, NULL, out, err);
}

int imageset_visit(const struct imageset_source *src, const struct imageset_limits *lim,
                   unsigned flags, imageset_visit_fn fn, void *ctx, cJSON **profile,
                   struct imageset_error *err)
{
    if (!fn) {
        struct imageset_error ignored;
        struct imageset_error *e = err ? err : &ignored;
        memset(e, 0, sizeof *e);
        if (profile)
            *profile = NULL;
        e->code = IMAGESET_EARG;
        snprintf(e->message, sizeof e->message, "no visitor");
        return IMAGESET_EARG;
    }
    return walk(src, lim, flags, fn, ctx, profile, err);
}

/* --- over a file ------------------------------------------------------------ */

struct file_src {
    int fd;
    unsigned char buf[CHUNK];
};

static ssize_t file_read(void *ctx, const void **buf)
{
    struct file_src *f = ctx;
    ssize_t n;
    do
        n = read(f->fd, f->buf, sizeof f->buf);
    while (n < 0 && errno == EINTR);
    *buf = f->buf;
    return n < 0 ? -1 : n;
}

static int64_t file_seek(void *ctx, int64_t offset, int whence)
{
    struct file_src *f = ctx;
    off_t r = lseek(f->fd, (off_t)offset, whence);
    return r < 0 ? -1 : (int64_t)r;
}

static int walk_file(const char *path, const struct imageset_limits *lim, unsigned flags,
                     imageset_visit_fn fn, void *fn_ctx, cJSON **out,
                     struct imageset_error *err)
{
    struct imageset_error ignored_err;
    if (!err)
        err = &ignored_err;
    memset(err, 0, sizeof *err);
    if (out)
        *out = NULL;
    if (!path || (!out && !fn)) {
        err->code = IMAGESET_EARG;
        snprintf(err->message, sizeof err->message, "no path or no output");
        return IMAGESET_EARG;
    }
    struct file_src *f = malloc(sizeof *f);
    if (!f) {
        err->code = IMAGESET_ENOMEM;
        snprintf(err->message, sizeof err->message, "out of memory");
        return IMAGESET_ENOMEM;
    }
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        err->code = IMAGESET_EARG;
        snprintf(err->message, sizeof err->message, "%s: %s", path, strerror(errno));
        free(f);
        return IMAGESET_EARG;
    }
    struct stat st;
    int seekable = fstat(f->fd, &st) == 0 && S_ISREG(st.st_mode);
    struct imageset_limits L = lim ? *lim : (struct imageset_limits){0};
    if (!L.compressed_bytes && seekable)
        L.compressed_bytes = (uint64_t)st.st_size;
    struct imageset_source src = {f, file_read, seekable ? file_seek : NULL};
    int rc = walk(&src, &L, flags, fn, fn_ctx, out, err);
    close(f->fd);
    free(f);
    return rc;
}

int imageset_profile_file(const char *path, const struct imageset_limits *lim,
                          cJSON **out, struct imageset_error *err)
{
    return walk_file(path, lim, 0, NULL, NULL, out, err);
}

int imageset_visit_file(const char *path, const struct imageset_limits *lim, unsigned flags,
                        imageset_visit_fn fn, void *ctx, cJSON **profile,
                        struct imageset_error *err)
{
    if (!fn)
        return imageset_visit(NULL, lim, flags, NULL, ctx, profile, err);
    return walk_file(path, lim, flags, fn, ctx, profile, err);
}

/* --- over memory --------------------------------------------------------------- */

struct mem_src {
    const unsigned char *p;
    size_t len, off;
};

static ssize_t mem_read(void *ctx, const void **buf)
{
    struct mem_src *m = ctx;
    size_t n = m->len - m->off;
    *buf = m->p + m->off;
    m->off = m->len;
    return (ssize_t)n;
}

static int64_t mem_seek(void *ctx, int64_t offset, int whence)
{
    struct mem_src *m = ctx;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)m->off
                 : whence == SEEK_END ? (int64_t)m->len : -1;
    if (base < 0 || offset < -base || offset > (int64_t)m->len - base)
        return -1;
    m->off = (size_t)(base + offset);
    return (int64_t)m->off;
}

int imageset_visit_buffer(const void *buf, size_t len, const struct imageset_limits *lim,
                          unsigned flags, imageset_visit_fn fn, void *ctx, cJSON **profile,
                          struct imageset_error *err)
{
    struct mem_src m = {buf, buf ? len : 0, 0};
    struct imageset_source src = {&m, mem_read, mem_seek};
    struct imageset_limits L = lim ? *lim : (struct imageset_limits){0};
    if (!L.compressed_bytes)
        L.compressed_bytes = len;
    return imageset_visit(buf ? &src : NULL, &L, flags, fn, ctx, profile, err);
}
