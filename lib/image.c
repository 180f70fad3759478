/*
 * image.c - decode one PNG (libpng, classic API) or JPEG (libjpeg) from
 * memory, to check it (image_probe) or to keep its pixels (image_decode);
 * see image.h for what is checked and reported. Both go through the same
 * code, so an image that probes fine decodes fine and the other way round.
 *
 * Both libraries report fatal errors through a callback that must not
 * return; ours copy the message and longjmp back to the setjmp in
 * probe_png/probe_jpeg, which then release everything they allocated.
 * Everything those functions change after setjmp lives in a struct reached
 * through a pointer (or is volatile), so a longjmp cannot clobber it.
 * A probe holds only one decoded row at a time; a decode writes every row
 * straight into the output image (one temporary row for CMYK JPEGs).
 *
 * Thumbnails (image_resize_area, image_encode_png) are at the end: a box
 * filter over 8-bit pixels and libpng's writer into a growing buffer, with
 * the same longjmp discipline as the readers.
 */
#include "lib/image.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

/* A progressive JPEG can hold any number of scans, each of which makes
 * libjpeg redo work; real files have a dozen or so. */
#define IMAGE_JPEG_MAX_SCANS 500

static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};

int image_sniff(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (!p)
        return IMAGE_UNKNOWN;
    if (len >= 8 && memcmp(p, png_magic, 8) == 0)
        return IMAGE_PNG;
    if (len >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return IMAGE_JPEG;
    return IMAGE_UNKNOWN;
}

const char *image_format_name(int format)
{
    switch (format) {
    case IMAGE_PNG: return "png";
    case IMAGE_JPEG: return "jpeg";
    default: return "unknown";
    }
}

/* State shared between a probe and its callbacks. */
struct probe {
    const unsigned char *data;
    size_t len, off;
    uint64_t max_pixels;
    uint32_t max_side;
    uint64_t max_decoder_bytes;
    struct image_info *info;
    char *msg;
    size_t msg_size;
    int status;               /* set with the message */
    unsigned char *row;       /* one decoded row */
    struct image_pixels *px;  /* image_decode's output; NULL when probing */
    jmp_buf jb;
};

static void probe_fail(struct probe *p, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void probe_fail(struct probe *p, int status, const char *fmt, ...)
{
    if (p->status != 0)
        return;               /* keep the first message */
    p->status = status;
    if (p->msg && p->msg_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->msg, p->msg_size, fmt, ap);
        va_end(ap);
    }
}

static int check_dims(struct probe *p, uint64_t w, uint64_t h)
{
    if (w == 0 || h == 0) {
        probe_fail(p, IMAGE_ECORRUPT, "image has zero width or height");
        return -1;
    }
    if (w > p->max_side || h > p->max_side || w * h > p->max_pixels) {
        probe_fail(p, IMAGE_ETOOBIG, "image is %llux%llu, over the limit (%llu pixels, side %u)",
                   (unsigned long long)w, (unsigned long long)h,
                   (unsigned long long)p->max_pixels, (unsigned)p->max_side);
        return -1;
    }
    return 0;
}

/* The output image of a decode, w x h x ch bytes (check_dims bounded w*h). */
static int pixels_alloc(struct probe *p, uint32_t w, uint32_t h, int ch)
{
    size_t bytes = (size_t)w * (size_t)h * (size_t)ch;
    p->px->data = malloc(bytes ? bytes : 1);
    if (!p->px->data) {
        probe_fail(p, IMAGE_ENOMEM, "out of memory for a %ux%u image", (unsigned)w, (unsigned)h);
        return -1;
    }
    p->px->width = w;
    p->px->height = h;
    p->px->channels = ch;
    return 0;
}

/* --- PNG ------------------------------------------------------------------ */

static void png_on_error(png_structp png, png_const_charp text)
{
    struct probe *p = png_get_error_ptr(png);
    probe_fail(p, IMAGE_ECORRUPT, "png: %s", text ? text : "error");
    longjmp(p->jb, 1);        /* to probe_png's setjmp; libpng's own is unused */
}

static void png_on_warning(png_structp png, png_const_charp text)
{
    (void)png;
    (void)text;               /* benign: ancillary chunk problems and the like */
}

static void png_on_read(png_structp png, png_bytep out, size_t n)
{
    struct probe *p = png_get_io_ptr(png);
    if (n > p->len - p->off)
        png_error(png, "file is truncated");
    memcpy(out, p->data + p->off, n);
    p->off += n;
}

static int probe_png(struct probe *p)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, p, png_on_error,
                                             png_on_warning);
    if (!png) {
        probe_fail(p, IMAGE_ENOMEM, "out of memory");
        return p->status;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        probe_fail(p, IMAGE_ENOMEM, "out of memory");
        return p->status;
    }
    if (setjmp(p->jb)) {
        /* status and message were set by png_on_error or below */
        goto done;
    }
    png_set_read_fn(png, p, png_on_read);
    png_set_user_limits(png, p->max_side, p->max_side);
    png_set_chunk_cache_max(png, 1000);
    png_set_chunk_malloc_max(png, 8u << 20);

    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info);
    png_uint_32 h = png_get_image_height(png, info);
    int color = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    p->info->width = w;
    p->info->height = h;
    p->info->bit_depth = depth;
    switch (color) {
    case PNG_COLOR_TYPE_GRAY: p->info->channels = 1; break;
    case PNG_COLOR_TYPE_GRAY_ALPHA: p->info->channels = 2; break;
    case PNG_COLOR_TYPE_RGB: p->info->channels = 3; break;
    case PNG_COLOR_TYPE_RGB_ALPHA: p->info->channels = 4; break;
    case PNG_COLOR_TYPE_PALETTE:
        p->info->channels = png_get_valid(png, info, PNG_INFO_tRNS) ? 4 : 3;
        break;
    default:
        probe_fail(p, IMAGE_ECORRUPT, "png: unknown colour type %d", color);
        goto done;
    }
    if (check_dims(p, w, h) != 0)
        goto done;

    int out_ch = 0;
    if (p->px) {
        /* To 8-bit grey or RGB: 16-bit samples scaled (rounded), low-depth
         * grey expanded to 0..255, a palette looked up, alpha (and a tRNS
         * transparency) dropped, as PIL's convert("L"/"RGB") does. */
        if (depth == 16)
            png_set_scale_16(png);
        if (color == PNG_COLOR_TYPE_PALETTE)
            png_set_palette_to_rgb(png);
        if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
            png_set_expand_gray_1_2_4_to_8(png);
        /* (palette expansion turns a tRNS chunk into an alpha channel) */
        if ((color & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS))
            png_set_strip_alpha(png);
        out_ch = color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA ? 1 : 3;
    }
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes == 0) {
        probe_fail(p, IMAGE_ECORRUPT, "png: bad row size");
        goto done;
    }
    if (p->px) {
        if (png_get_channels(png, info) != out_ch || png_get_bit_depth(png, info) != 8 ||
            rowbytes != (size_t)w * (size_t)out_ch) {
            probe_fail(p, IMAGE_ECORRUPT, "png: cannot convert colour type %d, depth %d to 8 bits"
                       " (%d channels, depth %d, %zu bytes a row)", color, depth,
                       png_get_channels(png, info), png_get_bit_depth(png, info), rowbytes);
            goto done;
        }
        if (pixels_alloc(p, w, h, out_ch) != 0)
            goto done;
        /* libpng puts each interlace pass's pixels into the full rows */
        for (int pass = 0; pass < passes; pass++)
            for (png_uint_32 y = 0; y < h; y++)
                png_read_row(png, p->px->data + (size_t)y * rowbytes, NULL);
        png_read_end(png, NULL);
        goto done;
    }
    p->row = malloc(rowbytes);
    if (!p->row) {
        probe_fail(p, IMAGE_ENOMEM, "out of memory for a %zu byte row", rowbytes);
        goto done;
    }
    /* Interlaced images are read pass by pass into the same row: we only
     * want every byte of the image data decoded, not the picture. */
    for (int pass = 0; pass < passes; pass++)
        for (png_uint_32 y = 0; y < h; y++)
            png_read_row(png, p->row, NULL);
    png_read_end(png, NULL);   /* the rest of the IDAT data, CRCs and IEND */

done:
    png_destroy_read_struct(&png, &info, NULL);
    free(p->row);
    p->row = NULL;
    return p->status;
}

/* --- JPEG ----------------------------------------------------------------- */

struct jpeg_probe_err {
    struct jpeg_error_mgr pub;    /* first, so that cinfo->err casts to this */
    struct probe *p;
};

static void jpeg_on_error_exit(j_common_ptr cinfo)
{
    struct jpeg_probe_err *e = (struct jpeg_probe_err *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    probe_fail(e->p, IMAGE_ECORRUPT, "jpeg: %s", text);
    longjmp(e->p->jb, 1);
}

static void jpeg_on_emit_message(j_common_ptr cinfo, int level)
{
    struct jpeg_probe_err *e = (struct jpeg_probe_err *)cinfo->err;
    if (level >= 0)
        return;               /* trace messages */
    /* A warning: libjpeg found corrupt data and goes on with grey pixels.
     * Remember the first; image_probe fails the image at the end. */
    if (cinfo->err->num_warnings++ == 0) {
        char text[JMSG_LENGTH_MAX];
        (*cinfo->err->format_message)(cinfo, text);
        probe_fail(e->p, IMAGE_ECORRUPT, "jpeg: %s", text);
    }
}

static void jpeg_on_output_message(j_common_ptr cinfo)
{
    (void)cinfo;              /* never print */
}

static void jpeg_on_progress(j_common_ptr cinfo)
{
    if (cinfo->is_decompressor) {
        j_decompress_ptr d = (j_decompress_ptr)cinfo;
        if (d->input_scan_number > IMAGE_JPEG_MAX_SCANS) {
            struct jpeg_probe_err *e = (struct jpeg_probe_err *)cinfo->err;
            probe_fail(e->p, IMAGE_ECORRUPT, "jpeg: more than %d scans",
                       IMAGE_JPEG_MAX_SCANS);
            longjmp(e->p->jb, 1);
        }
    }
}

/* Both structs live in the caller's frame, so longjmp leaves them intact. */
struct jpeg_probe_ctx {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_probe_err err;
    struct jpeg_progress_mgr progress;
};

static int probe_jpeg(struct probe *p, struct jpeg_probe_ctx *c)
{
    struct jpeg_decompress_struct *cinfo = &c->cinfo;
    cinfo->err = jpeg_std_error(&c->err.pub);
    c->err.pub.error_exit = jpeg_on_error_exit;
    c->err.pub.emit_message = jpeg_on_emit_message;
    c->err.pub.output_message = jpeg_on_output_message;
    c->err.p = p;
    if (setjmp(p->jb))
        goto done;
    jpeg_create_decompress(cinfo);
    cinfo->mem->max_memory_to_use = (long)p->max_decoder_bytes;
    c->progress.progress_monitor = jpeg_on_progress;
    cinfo->progress = &c->progress;
    jpeg_mem_src(cinfo, p->data, (unsigned long)p->len);
    if (jpeg_read_header(cinfo, TRUE) != JPEG_HEADER_OK) {
        probe_fail(p, IMAGE_ECORRUPT, "jpeg: no image in the file (tables only)");
        goto done;
    }
    p->info->width = cinfo->image_width;
    p->info->height = cinfo->image_height;
    p->info->bit_depth = cinfo->data_precision;
    if (check_dims(p, cinfo->image_width, cinfo->image_height) != 0)
        goto done;
    /* The channels of the stored image (libjpeg's default output: grey 1,
     * YCbCr/RGB 3, CMYK/YCCK 4), the same for a probe and a decode. */
    jpeg_calc_output_dimensions(cinfo);
    p->info->channels = cinfo->output_components;
    if (cinfo->output_components < 1 || cinfo->output_components > 4) {
        probe_fail(p, IMAGE_ECORRUPT, "jpeg: %d components", cinfo->output_components);
        goto done;
    }
    int out_ch = 0, cmyk = 0;
    if (p->px) {
        switch (cinfo->jpeg_color_space) {
        case JCS_GRAYSCALE: cinfo->out_color_space = JCS_GRAYSCALE; out_ch = 1; break;
        case JCS_YCbCr: case JCS_RGB: cinfo->out_color_space = JCS_RGB; out_ch = 3; break;
        case JCS_CMYK: case JCS_YCCK:
            cinfo->out_color_space = JCS_CMYK;  /* converted to RGB below */
            out_ch = 3;
            cmyk = 1;
            break;
        default:
            probe_fail(p, IMAGE_ECORRUPT, "jpeg: unsupported colour space (%d components)",
                       cinfo->num_components);
            goto done;
        }
    }
    jpeg_start_decompress(cinfo);
    if (p->px && cinfo->output_components != (cmyk ? 4 : out_ch)) {
        probe_fail(p, IMAGE_ECORRUPT, "jpeg: %d output components", cinfo->output_components);
        goto done;
    }
    size_t rowbytes = (size_t)cinfo->output_width * (size_t)cinfo->output_components;
    if (p->px && pixels_alloc(p, cinfo->output_width, cinfo->output_height, out_ch) != 0)
        goto done;
    if (!p->px || cmyk) {
        p->row = malloc(rowbytes);
        if (!p->row) {
            probe_fail(p, IMAGE_ENOMEM, "out of memory for a %zu byte row", rowbytes);
            goto done;
        }
    }
    /* Adobe's CMYK JPEGs store inverted samples (saw_Adobe_marker). */
    int inverted = cmyk && cinfo->saw_Adobe_marker;
    while (cinfo->output_scanline < cinfo->output_height) {
        size_t y = cinfo->output_scanline;
        unsigned char *dst = p->px ? p->px->data + y * (size_t)cinfo->output_width * (size_t)out_ch
                                   : NULL;
        JSAMPROW rows[1] = {p->px && !cmyk ? dst : p->row};
        if (jpeg_read_scanlines(cinfo, rows, 1) != 1) {
            probe_fail(p, IMAGE_ECORRUPT, "jpeg: decoder stopped early");
            goto done;
        }
        if (cmyk) {
            for (size_t x = 0; x < cinfo->output_width; x++) {
                const unsigned char *s = p->row + 4 * x;
                unsigned k = inverted ? s[3] : 255u - s[3];
                for (int ch = 0; ch < 3; ch++) {
                    unsigned v = inverted ? s[ch] : 255u - s[ch];
                    dst[3 * x + (size_t)ch] = (unsigned char)((v * k + 127) / 255);
                }
            }
        }
    }
    jpeg_finish_decompress(cinfo);

done:
    /* jpeg_destroy is safe on a struct that jpeg_create_decompress never
     * reached only if mem is NULL: it checks that. */
    jpeg_destroy_decompress(cinfo);
    free(p->row);
    p->row = NULL;
    return p->status;
}

static int run(const void *buf, size_t len, const struct image_limits *lim,
               struct image_info *info, struct image_pixels *px, char *msg, size_t msg_size)
{
    struct image_info ignored;
    if (!info)
        info = &ignored;
    memset(info, 0, sizeof *info);
    if (msg && msg_size)
        msg[0] = '\0';

    struct probe p;
    memset(&p, 0, sizeof p);
    p.data = buf;
    p.len = buf ? len : 0;
    p.info = info;
    p.msg = msg;
    p.msg_size = msg_size;
    p.px = px;
    p.max_pixels = lim && lim->max_pixels ? lim->max_pixels : IMAGE_DEFAULT_MAX_PIXELS;
    p.max_side = lim && lim->max_side ? lim->max_side : IMAGE_DEFAULT_MAX_SIDE;
    p.max_decoder_bytes = lim && lim->max_decoder_bytes ? lim->max_decoder_bytes
                                                        : IMAGE_DEFAULT_MAX_DECODER_BYTES;
    if (p.max_decoder_bytes > (uint64_t)(long)(~0ul >> 1))
        p.max_decoder_bytes = (uint64_t)(~0ul >> 1);

    info->format = image_sniff(p.data, p.len);
    switch (info->format) {
    case IMAGE_PNG:
        return probe_png(&p);
    case IMAGE_JPEG: {
        struct jpeg_probe_ctx c;
        memset(&c, 0, sizeof c);
        return probe_jpeg(&p, &c);
    }
    default:
        probe_fail(&p, IMAGE_EFORMAT, "not a PNG or JPEG file");
        return p.status;
    }
}

int image_probe(const void *buf, size_t len, const struct image_limits *lim,
                struct image_info *info, char *msg, size_t msg_size)
{
    return run(buf, len, lim, info, NULL, msg, msg_size);
}

int image_decode(const void *buf, size_t len, const struct image_limits *lim,
                 struct image_info *info, struct image_pixels *out, char *msg, size_t msg_size)
{
    if (!out)   /* nowhere to put the pixels: a probe */
        return run(buf, len, lim, info, NULL, msg, msg_size);
    memset(out, 0, sizeof *out);
    int rc = run(buf, len, lim, info, out, msg, msg_size);
    if (rc != 0)
        image_pixels_free(out);
    return rc;
}

void image_pixels_free(struct image_pixels *px)
{
    if (!px)
        return;
    free(px->data);
    memset(px, 0, sizeof *px);
}

/* --- thumbnails ----------------------------------------------------------- */

static int pixels_ok(const struct image_pixels *px)
{
    return px && px->data && px->width > 0 && px->height > 0 &&
           (px->channels == 1 || px->channels == 3);
}

int image_resize_area(const struct image_pixels *in, uint32_t max_side, struct image_pixels *out)
{
    memset(out, 0, sizeof *out);
    if (!pixels_ok(in))
        return IMAGE_ECORRUPT;
    uint32_t w = in->width, h = in->height, ow = w, oh = h;
    uint32_t longest = w > h ? w : h;
    if (max_side && longest > max_side) {
        /* the longer side becomes max_side, the other one is rounded */
        if (w >= h) {
            ow = max_side;
            oh = (uint32_t)(((uint64_t)h * max_side + w / 2) / w);
        } else {
            oh = max_side;
            ow = (uint32_t)(((uint64_t)w * max_side + h / 2) / h);
        }
        if (ow == 0) ow = 1;
        if (oh == 0) oh = 1;
    }
    size_t ch = (size_t)in->channels;
    out->data = malloc((size_t)ow * oh * ch);
    if (!out->data)
        return IMAGE_ENOMEM;
    out->width = ow;
    out->height = oh;
    out->channels = in->channels;
    if (ow == w && oh == h) {
        memcpy(out->data, in->data, (size_t)w * h * ch);
        return 0;
    }
    /* Output pixel (ox, oy) is the mean of input columns
     * [ox*w/ow, (ox+1)*w/ow) and rows [oy*h/oh, (oy+1)*h/oh): ow <= w and
     * oh <= h, so each block holds at least one pixel. */
    for (uint32_t oy = 0; oy < oh; oy++) {
        size_t y0 = (size_t)((uint64_t)oy * h / oh), y1 = (size_t)((uint64_t)(oy + 1) * h / oh);
        for (uint32_t ox = 0; ox < ow; ox++) {
            size_t x0 = (size_t)((uint64_t)ox * w / ow), x1 = (size_t)((uint64_t)(ox + 1) * w / ow);
            uint64_t n = (uint64_t)(x1 - x0) * (y1 - y0);
            for (size_t c = 0; c < ch; c++) {
                uint64_t sum = 0;
                for (size_t y = y0; y < y1; y++) {
                    const uint8_t *row = in->data + y * w * ch;
                    for (size_t x = x0; x < x1; x++)
                        sum += row[x * ch + c];
                }
                out->data[((size_t)oy * ow + ox) * ch + c] = (uint8_t)((sum + n / 2) / n);
            }
        }
    }
    return 0;
}

/* The PNG being written; reached through a pointer so that libpng's
 * longjmp cannot clobber it. */
struct png_out {
    unsigned char *buf;
    size_t len, cap;
    char *msg;
    size_t msg_size;
    int status;
    jmp_buf jb;
};

static void png_out_error(png_structp png, png_const_charp text)
{
    struct png_out *o = png_get_error_ptr(png);
    if (o->status == 0) {
        o->status = IMAGE_ECORRUPT;
        if (o->msg && o->msg_size)
            snprintf(o->msg, o->msg_size, "png: %s", text ? text : "error");
    }
    longjmp(o->jb, 1);
}

static void png_out_write(png_structp png, png_bytep data, size_t n)
{
    struct png_out *o = png_get_io_ptr(png);
    if (n > o->cap - o->len) {
        size_t cap = o->cap ? o->cap : 4096;
        while (n > cap - o->len) {
            if (cap > SIZE_MAX / 2) {
                cap = 0;
                break;
            }
            cap *= 2;
        }
        unsigned char *grown = cap ? realloc(o->buf, cap) : NULL;
        if (!grown) {
            o->status = IMAGE_ENOMEM;
            if (o->msg && o->msg_size)
                snprintf(o->msg, o->msg_size, "out of memory for a PNG");
            png_error(png, "out of memory");
        }
        o->buf = grown;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, data, n);
    o->len += n;
}

static void png_out_flush(png_structp png)
{
    (void)png;
}

/* The write itself; o lives in the caller's frame, so a longjmp leaves
 * what it holds intact. */
static int encode_png(struct png_out *o, const struct image_pixels *px)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, o, png_out_error,
                                              png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        if (o->msg && o->msg_size)
            snprintf(o->msg, o->msg_size, "out of memory");
        return IMAGE_ENOMEM;
    }
    if (setjmp(o->jb)) {
        png_destroy_write_struct(&png, &info);
        return o->status ? o->status : IMAGE_ECORRUPT;
    }
    png_set_write_fn(png, o, png_out_write, png_out_flush);
    png_set_IHDR(png, info, px->width, px->height, 8,
                 px->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t rowbytes = (size_t)px->width * (size_t)px->channels;
    for (uint32_t y = 0; y < px->height; y++)
        png_write_row(png, px->data + (size_t)y * rowbytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int image_encode_png(const struct image_pixels *px, unsigned char **out, size_t *out_len,
                     char *msg, size_t msg_size)
{
    *out = NULL;
    *out_len = 0;
    if (msg && msg_size)
        msg[0] = '\0';
    if (!pixels_ok(px) || px->width > PNG_USER_WIDTH_MAX || px->height > PNG_USER_HEIGHT_MAX) {
        if (msg && msg_size)
            snprintf(msg, msg_size, "cannot encode a %ux%u image of %d channels as PNG",
                     px ? (unsigned)px->width : 0u, px ? (unsigned)px->height : 0u,
                     px ? px->channels : 0);
        return IMAGE_ECORRUPT;
    }
    struct png_out o;
    memset(&o, 0, sizeof o);
    o.msg = msg;
    o.msg_size = msg_size;
    int rc = encode_png(&o, px);
    if (rc != 0) {
        free(o.buf);
        return rc;
    }
    *out = o.buf;
    *out_len = o.len;
    return 0;
}
