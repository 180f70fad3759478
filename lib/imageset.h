/*
 * imageset.h - read an uploaded image archive (zip, tar, tar.gz) and
 * profile it as a data set for image classification.
 *
 * Who uses it: the server, after it has stored an upload in a PostgreSQL
 * large object; it passes read/seek callbacks over that object. The archive
 * is read in one pass (zip may seek to its central directory when a seek
 * callback is given); nothing is ever written to disk and the archive is
 * never held whole in memory. What is held: one image entry at a time (at
 * most max_entry_bytes), the per-class counts with up to 5 sample names,
 * and the first 100 unreadable / 20 skipped names. Every byte is treated as
 * hostile. One call uses one thread; calls share no state.
 *
 * Layouts:
 *  - "folders" (ImageFolder): the class of an image is the name of its
 *    immediate parent folder ("cat/001.png" and "train/cat/001.png" are
 *    both class "cat"). Images are PNG or JPEG, recognised by their magic
 *    bytes, not their extension, and each one is decoded fully
 *    (lib/image); one that fails is "unreadable", not fatal.
 *  - "idx" (MNIST): one IDX images file (magic 0x00000803: n, rows, cols,
 *    then n*rows*cols bytes) and one IDX labels file (magic 0x00000801: n,
 *    then n bytes), anywhere in the archive under any names, each raw or
 *    gzip'd (recognised by magic bytes). Both are streamed; neither is held
 *    in memory. The class of an image is its label's decimal value.
 *  The layout is "idx" when the archive holds IDX files and no image in a
 *  class folder, "folders" otherwise.
 *
 * What is skipped (counted in "skipped", the first 20 named): directories
 * are ignored silently; entries under __MACOSX/ or with a path component
 * starting with '.', files that are neither PNG/JPEG nor IDX, images at
 * the archive root (no class folder), links and other non-regular
 * entries, encrypted zip entries, and IDX files beside class folders.
 *
 * Safety rules (each fails the WHOLE archive):
 *  - IMAGESET_EPATH: a path that is absolute ("/x", "\x", "C:x"), has a
 *    ".." component ('/' and '\' both separate components), or is longer
 *    than IMAGESET_MAX_PATH bytes.
 *  - IMAGESET_ELIMIT: more than max_entries entries (directories count);
 *    an entry whose decompressed bytes pass max_entry_bytes (or whose
 *    header says so); all entries' decompressed bytes passing
 *    max_total_bytes; more than max_classes class folders; or, once more
 *    than 16 MiB are decompressed, decompressed/compressed > max_ratio.
 *    Bytes are counted as they come out of the decompressor (header sizes
 *    are never trusted), so a zip bomb stops after at most
 *    max(16 MiB, max_ratio * compressed) bytes. Every regular entry's data
 *    is read (and counted) even when it is skipped.
 *  - IMAGESET_ECORRUPT: libarchive could not read a header or an entry's
 *    data (truncated, bad CRC, ...), or the read callback failed.
 *
 * The profile (a cJSON object the caller frees with cJSON_Delete):
 *  {
 *    "kind": "images",
 *    "layout": "folders" | "idx",
 *    "format": "zip" | "tar" | "tar.gz",
 *    "images": N,                 readable images (idx: n of the files)
 *    "classes": [                 sorted by name, digit runs compared as
 *      {"name": "cat",            numbers ("2" < "10")
 *       "count": 178,             readable images of that class
 *       "samples": ["cat/1.png"]} up to 5 entry paths (folders only)
 *    ],
 *    "sizes": {
 *      "min": {"width": w, "height": h},   smallest width, smallest height
 *      "max": {"width": w, "height": h},   (each on its own)
 *      "most_common": {"width": w, "height": h, "count": c},
 *      "distinct": d              number of distinct width x height
 *    },
 *    "channels": {"1": N, "3": M},   readable images by channel count
 *    "encodings": {"png": N, "jpeg": M},   folders only
 *    "unreadable": {"count": k,
 *                   "files": [...],      first 100 entry paths
 *                   "reasons": [...]},   the decoder's message for each
 *    "skipped": {"count": s, "files": [...first 20...],
 *                "reasons": {"not an image": a, "at the archive root": b,
 *                            "hidden": c, "not a regular file": d,
 *                            "encrypted": e, "IDX beside class folders": f}},
 *                                 (only reasons that occurred)
 *    "entries": E,                archive entries, directories included
 *    "uncompressed_bytes": U,     decompressed bytes of all entries
 *    "idx": {"images_file": "...", "labels_file": "...",
 *            "rows": r, "cols": c, "gzip": true|false}     idx only
 *  }
 * For idx, sizes are rows x cols for every image and channels is {"1": n}.
 *
 * Visiting (imageset_visit*): the same single pass, with the same layout,
 * safety rules, limits and skip rules, that also decodes every image
 * (lib/image's image_decode: 8-bit grey or RGB) and hands it to a callback
 * with its class, so that a trainer reads exactly the images, classes and
 * order the profile describes:
 *  - folders: each image in a class folder, in archive order, as its entry
 *    ends, with class_name its folder's name; an image that does not
 *    decode comes with pixels NULL and error the decoder's message (it is
 *    counted as unreadable in the profile, as when profiling);
 *  - idx: after the walk (once the layout is known to be idx), image i of
 *    the IDX images file in file order, named "IMAGES_FILE#i", rows x cols
 *    grey bytes, class_name its label in decimal. Both IDX files are held
 *    in memory for this (each at most max_entry_bytes).
 * The class names a visitor sees are exactly the profile's "classes"
 * names. With IMAGESET_VISIT_FLAT, images at the archive root are not
 * skipped but handed over with class_name NULL (for prediction: a flat
 * archive of unlabelled images); they count as images (not in "classes")
 * and make the layout "folders".
 * A callback that returns non-zero stops the walk: IMAGESET_ESTOPPED. The
 * walk may still fail after images were handed over (a damaged entry
 * further on, a limit): the caller must then drop what it received.
 */
#ifndef PODIUM_LIB_IMAGESET_H
#define PODIUM_LIB_IMAGESET_H

#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "lib/image.h"

/* Where the archive's bytes come from: libarchive-style callbacks. */
struct imageset_source {
    void *ctx;
    /* Set *buf to the next bytes and return their count; 0 at the end; -1 on error.
     * The bytes must stay valid until the next call. */
    ssize_t (*read)(void *ctx, const void **buf);
    /* Like lseek: return the new offset or -1. May be NULL (then zip is read
     * in streaming mode). */
    int64_t (*seek)(void *ctx, int64_t offset, int whence);
};

#define IMAGESET_DEFAULT_MAX_ENTRIES     200000ull
#define IMAGESET_DEFAULT_MAX_ENTRY_BYTES (256ull << 20)   /* 256 MiB */
#define IMAGESET_DEFAULT_MAX_TOTAL_BYTES (8ull << 30)     /* 8 GiB */
#define IMAGESET_DEFAULT_MAX_RATIO       200.0
#define IMAGESET_DEFAULT_MAX_CLASSES     10000ull
#define IMAGESET_RATIO_FLOOR             (16ull << 20)    /* ratio checked above this */
#define IMAGESET_MAX_PATH                1024
#define IMAGESET_MAX_UNREADABLE_NAMES    100
#define IMAGESET_MAX_SKIPPED_NAMES       20
#define IMAGESET_MAX_SAMPLES             5

struct imageset_limits {           /* zero = default */
    uint64_t max_entries;          /* default 200000 */
    uint64_t max_entry_bytes;      /* uncompressed bytes of one entry, default 256 MiB */
    uint64_t max_total_bytes;      /* uncompressed bytes of all entries, default 8 GiB */
    double   max_ratio;            /* uncompressed/compressed, default 200, only checked once total > 16 MiB */
    uint64_t compressed_bytes;     /* the archive's size, for the ratio (given by the caller);
                                      0: the source's size when it can seek, else the
                                      bytes read from it so far */
    uint64_t max_classes;          /* class folders, default 10000 */
    struct image_limits image;     /* each image's decode (zero = lib/image's defaults) */
};

enum imageset_status {
    IMAGESET_OK = 0,
    IMAGESET_ENOMEM = -1,
    IMAGESET_EFORMAT = -2,         /* not a zip/tar/tar.gz */
    IMAGESET_ECORRUPT = -3,        /* truncated or damaged archive */
    IMAGESET_EPATH = -4,           /* '..' component or absolute path */
    IMAGESET_ELIMIT = -5,          /* entry count/size/total/ratio (zip bomb) */
    IMAGESET_ELAYOUT = -6,         /* neither class folders nor IDX */
    IMAGESET_ENOIMAGES = -7,       /* nothing readable */
    IMAGESET_EIDX = -8,            /* inconsistent IDX files */
    IMAGESET_EARG = -9,            /* NULL source/out, or a file that cannot be opened */
    IMAGESET_ESTOPPED = -10,       /* the visitor's callback returned non-zero */
};

struct imageset_error {
    int code;                      /* enum imageset_status, 0 when none */
    char entry[256];               /* the entry at fault ("" when none) */
    char message[512];             /* what was wrong, naming the entry */
};

/* Profile the archive; 0 with *out (caller cJSON_Deletes) or a negative
 * status with err filled (message names the entry and what was wrong).
 * lim and err may be NULL. *out is NULL on failure. */
int imageset_profile(const struct imageset_source *src, const struct imageset_limits *lim,
                     cJSON **out, struct imageset_error *err);

/* Convenience for tests and tools: the same over a file path (seekable
 * when it is a regular file; compressed_bytes defaults to its size). */
int imageset_profile_file(const char *path, const struct imageset_limits *lim,
                          cJSON **out, struct imageset_error *err);

/* A static name for a status ("path escapes the archive", ...). */
const char *imageset_strerror(int code);

/* --- visiting ----------------------------------------------------------- */

#define IMAGESET_VISIT_FLAT 1u     /* hand over images at the archive root too */

/* One image of the walk. Every pointer is valid during the callback only. */
struct imageset_item {
    const char *name;              /* entry path (UTF-8, bad bytes as '?'), or IMAGES_FILE#i */
    const char *class_name;        /* folder name or IDX label; NULL at the root (FLAT) */
    const struct image_pixels *pixels;  /* NULL when the image is unreadable */
    const char *error;             /* the decoder's message when unreadable, else NULL */
    int format;                    /* enum image_format; IMAGE_UNKNOWN for IDX */
};

/* 0 to go on; non-zero stops the walk (IMAGESET_ESTOPPED). */
typedef int (*imageset_visit_fn)(void *ctx, const struct imageset_item *item);

/* Walk the archive, calling fn for every image as described above; runs
 * on the caller's thread. *profile (when not NULL) gets the same profile
 * imageset_profile gives (caller cJSON_Deletes; NULL on failure). Returns
 * 0 or a negative status with err filled, as imageset_profile. */
int imageset_visit(const struct imageset_source *src, const struct imageset_limits *lim,
                   unsigned flags, imageset_visit_fn fn, void *ctx, cJSON **profile,
                   struct imageset_error *err);
/* The same over a file path (as imageset_profile_file) or over bytes in
 * memory (seekable; compressed_bytes defaults to len). */
int imageset_visit_file(const char *path, const struct imageset_limits *lim, unsigned flags,
                        imageset_visit_fn fn, void *ctx, cJSON **profile,
                        struct imageset_error *err);
int imageset_visit_buffer(const void *buf, size_t len, const struct imageset_limits *lim,
                          unsigned flags, imageset_visit_fn fn, void *ctx, cJSON **profile,
                          struct imageset_error *err);

#endif
