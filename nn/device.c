/*
 * device.c - see device.h. The only file above the backend table that
 * knows the CUDA backend exists; it calls nn/cuda.h, which a build
 * without CUDA satisfies with nn/cuda_none.c.
 */
#include "nn/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "nn/cuda.h"

/* "cuda" -> 0, "cuda:N" -> N; -1 for anything else. */
static int cuda_index(const char *device)
{
    if (strcmp(device, "cuda") == 0) return 0;
    if (strncmp(device, "cuda:", 5) != 0) return -1;
    const char *p = device + 5;
    if (*p < '0' || *p > '9') return -1;
    char *end;
    long v = strtol(p, &end, 10);
    if (*end || v < 0 || v > 1023) return -1;
    return (int)v;
}

int nn_device_check(const char *device, char *err, size_t errlen)
{
    if (!device || strcmp(device, "cpu") == 0 || strcmp(device, "auto") == 0 ||
        cuda_index(device) >= 0)
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "device must be \"cpu\", \"cuda\" (or \"cuda:N\") or \"auto\", not \"%.40s\"",
                 device);
    return -1;
}

struct nn_backend *nn_backend_for_device(const char *device, int threads, int cuda_flags,
                                         char *err, size_t errlen)
{
    if (nn_device_check(device, err, errlen) != 0) return NULL;
    if (!device || strcmp(device, "cpu") == 0) return nn_backend_cpu_new(threads, err, errlen);
    int idx = strcmp(device, "auto") == 0 ? (nn_cuda_device_count() > 0 ? 0 : -1) : cuda_index(device);
    if (idx < 0) return nn_backend_cpu_new(threads, err, errlen);
    char why[256] = "";
    struct nn_backend *be = nn_backend_cuda_new(idx, cuda_flags, why, sizeof why);
    if (!be && err && errlen) snprintf(err, errlen, "device \"%s\": %s", device, why);
    return be;
}

static void cpu_model(char *buf, size_t len)
{
    buf[0] = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        snprintf(buf, len, "%s", v);
        buf[strcspn(buf, "\n")] = 0;
        break;
    }
    fclose(f);
}

void nn_device_describe(const struct nn_backend *be, struct nn_device_info *out)
{
    memset(out, 0, sizeof *out);
    if (be && be->name && strcmp(be->name, "cuda") == 0) {
        snprintf(out->kind, sizeof out->kind, "cuda");
        nn_cuda_backend_device_name(be, out->name, sizeof out->name);
        out->peak_memory_bytes = nn_cuda_peak_bytes(be);
        return;
    }
    snprintf(out->kind, sizeof out->kind, "cpu");
    cpu_model(out->name, sizeof out->name);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) out->peak_memory_bytes = (uint64_t)ru.ru_maxrss * 1024u;
}

cJSON *nn_device_to_json(const struct nn_device_info *info)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (!cJSON_AddStringToObject(o, "kind", info->kind) ||
        !cJSON_AddStringToObject(o, "name", info->name) ||
        !cJSON_AddNumberToObject(o, "peak_memory_bytes", (double)info->peak_memory_bytes)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
