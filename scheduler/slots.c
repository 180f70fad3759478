/*
 * slots.c - CPU and GPU trial slots (slots.h).
 */
#include "scheduler/slots.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Split a comma list of device ids into ids; -1 on a bad entry. */
static int parse_list(const char *list, char ids[][16], int max, char *err, size_t errlen)
{
    int n = 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len >= 16) {
            snprintf(err, errlen, "--gpus: bad device id near '%.20s'", p);
            return -1;
        }
        for (size_t i = 0; i < len; i++)
            if (!isalnum((unsigned char)p[i]) && p[i] != '-') {
                snprintf(err, errlen, "--gpus: bad device id near '%.20s'", p);
                return -1;
            }
        if (n == max) {
            snprintf(err, errlen, "--gpus: more than %d devices", max);
            return -1;
        }
        for (int i = 0; i < n; i++)
            if (strlen(ids[i]) == len && memcmp(ids[i], p, len) == 0) {
                snprintf(err, errlen, "--gpus: device '%s' named twice", ids[i]);
                return -1;
            }
        memcpy(ids[n], p, len);
        ids[n][len] = '\0';
        n++;
        p += len;
        if (*p == ',') p++;
    }
    return n;
}

int slots_detect_gpus(char ids[][16], int max)
{
    char err[128];
    const char *env = getenv("CUDA_VISIBLE_DEVICES");
    if (env) {
        if (*env == '\0' || strcmp(env, "-1") == 0) return 0;
        int n = parse_list(env, ids, max, err, sizeof err);
        return n < 0 ? 0 : n;
    }
    DIR *d = opendir("/proc/driver/nvidia/gpus");
    if (d == NULL) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    for (int i = 0; i < n; i++) snprintf(ids[i], 16, "%d", i);
    return n;
}

int slots_init(struct slots *s, int n_cpu, const char *gpus, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->n_cpu = n_cpu;
    if (gpus == NULL || strcmp(gpus, "auto") == 0) {
        s->n_gpu = slots_detect_gpus(s->gpu_ids, SLOTS_MAX_GPUS);
        return 0;
    }
    if (strcmp(gpus, "none") == 0 || *gpus == '\0') return 0;
    int n = parse_list(gpus, s->gpu_ids, SLOTS_MAX_GPUS, err, errlen);
    if (n < 0) return -1;
    s->n_gpu = n;
    return 0;
}

static int free_gpu(const struct slots *s)
{
    for (int i = 0; i < s->n_gpu; i++)
        if (!s->gpu_busy[i]) return i;
    return -1;
}

unsigned slots_claim_mask(const struct slots *s)
{
    unsigned m = 0;
    if (s->cpu_used < s->n_cpu) m |= SLOTS_CPU;
    if (free_gpu(s) >= 0) m |= SLOTS_GPU;
    return m;
}

int slots_take(struct slots *s, int wants_gpu, struct slot *out)
{
    int g = wants_gpu ? free_gpu(s) : -1;
    if (g >= 0) {
        s->gpu_busy[g] = 1;
        out->gpu = g;
        return 0;
    }
    if (s->cpu_used < s->n_cpu) {
        s->cpu_used++;
        out->gpu = -1;
        return 0;
    }
    return -1;
}

void slots_put(struct slots *s, const struct slot *sl)
{
    if (sl->gpu >= 0 && sl->gpu < s->n_gpu) s->gpu_busy[sl->gpu] = 0;
    else if (sl->gpu < 0 && s->cpu_used > 0) s->cpu_used--;
}

const char *slots_visible_devices(const struct slots *s, const struct slot *sl)
{
    return sl->gpu >= 0 && sl->gpu < s->n_gpu ? s->gpu_ids[sl->gpu] : "";
}
