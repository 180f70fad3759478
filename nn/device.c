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
#include <sys/utsname.h>

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

int nn_device_resolve(const char *device, char *err, size_t errlen)
{
    if (nn_device_check(device, err, errlen) != 0) return -1;
    if (!device || strcmp(device, "cpu") == 0) return NN_DEVICE_CPU;
    if (strcmp(device, "auto") == 0) return nn_cuda_device_count() > 0 ? NN_DEVICE_CUDA : NN_DEVICE_CPU;
    char why[256] = "";
    if (nn_cuda_probe(cuda_index(device), why, sizeof why) != 0) {
        if (err && errlen) snprintf(err, errlen, "device \"%s\": %s", device, why);
        return -1;
    }
    return NN_DEVICE_CUDA;
}

struct nn_backend *nn_backend_for_device(const char *device, int threads, int cuda_flags,
                                         char *err, size_t errlen)
{
    int kind = nn_device_resolve(device, err, errlen);
    if (kind < 0) return NULL;
    if (kind == NN_DEVICE_CPU) return nn_backend_cpu_new(threads, err, errlen);
    int idx = strcmp(device, "auto") == 0 ? 0 : cuda_index(device);
    char why[256] = "";
    struct nn_backend *be = nn_backend_cuda_new(idx, cuda_flags, why, sizeof why);
    if (!be && err && errlen) snprintf(err, errlen, "device \"%s\": %s", device, why);
    return be;
}

/* --- the CPU's name ------------------------------------------------------------------ */

/* The value of the first line "key<spaces or tabs>: value" with a
 * non-empty value (the first processor's), trimmed, into buf; 0, or -1
 * when there is none. */
static int cpuinfo_value(const char *text, const char *key, char *buf, size_t len)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        const char *colon = memchr(line, ':', n);
        if (colon) {
            size_t k = (size_t)(colon - line);
            while (k > 0 && (line[k - 1] == ' ' || line[k - 1] == '\t')) k--;
            const char *v = colon + 1, *e = line + n;
            while (v < e && (*v == ' ' || *v == '\t')) v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
            if (k == klen && memcmp(line, key, klen) == 0 && e > v) {
                snprintf(buf, len, "%.*s", (int)(e - v), v);
                return 0;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return -1;
}

struct arm_name {
    unsigned long id;
    const char *name;
};

/* "CPU implementer" codes (MIDR_EL1's implementer field) */
static const struct arm_name arm_implementers[] = {
    {0x41, "ARM"},    {0x42, "Broadcom"}, {0x43, "Cavium"},   {0x48, "HiSilicon"},
    {0x4e, "NVIDIA"}, {0x50, "APM"},      {0x51, "Qualcomm"}, {0x61, "Apple"},
    {0xc0, "Ampere"},
};

/* Arm's own cores ("CPU part" with implementer 0x41) that GPU servers
 * and boards carry; others are named by number */
static const struct arm_name arm_parts[] = {
    {0xd03, "Cortex-A53"},  {0xd08, "Cortex-A72"},  {0xd0b, "Cortex-A76"},
    {0xd0c, "Neoverse-N1"}, {0xd40, "Neoverse-V1"}, {0xd49, "Neoverse-N2"},
    {0xd4f, "Neoverse-V2"},
};

static const char *arm_lookup(const struct arm_name *t, size_t n, unsigned long id)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].id == id) return t[i].name;
    return NULL;
}

static int arm_core(const char *text, char *buf, size_t len)
{
    char impl[32], part[32], *end;
    if (cpuinfo_value(text, "CPU implementer", impl, sizeof impl) != 0 ||
        cpuinfo_value(text, "CPU part", part, sizeof part) != 0)
        return -1;
    unsigned long iv = strtoul(impl, &end, 0);
    if (*end) return -1;
    unsigned long pv = strtoul(part, &end, 0);
    if (*end) return -1;
    const char *in = arm_lookup(arm_implementers, sizeof arm_implementers / sizeof *arm_implementers, iv);
    const char *pn = iv == 0x41 ? arm_lookup(arm_parts, sizeof arm_parts / sizeof *arm_parts, pv) : NULL;
    if (pn) snprintf(buf, len, "%s %s", in, pn);
    else if (in) snprintf(buf, len, "%s CPU part 0x%03lx", in, pv);
    else snprintf(buf, len, "CPU implementer 0x%02lx part 0x%03lx", iv, pv);
    return 0;
}

void nn_device_cpu_name(const char *cpuinfo, const char *machine, char *buf, size_t len)
{
    if (!buf || !len) return;
    buf[0] = 0;
    const char *text = cpuinfo ? cpuinfo : "";
    if (cpuinfo_value(text, "model name", buf, len) == 0 ||
        cpuinfo_value(text, "Hardware", buf, len) == 0 ||
        cpuinfo_value(text, "Model", buf, len) == 0 || arm_core(text, buf, len) == 0 ||
        cpuinfo_value(text, "cpu", buf, len) == 0)
        return;
    snprintf(buf, len, "%s CPU", machine && machine[0] ? machine : "unknown");
}

/* from /proc/cpuinfo's first 64 KiB (the first processor's block is far
 * shorter) and uname */
static void cpu_model(char *buf, size_t len)
{
    enum { CAP = 65536 };
    char *text = malloc(CAP);
    FILE *f = text ? fopen("/proc/cpuinfo", "r") : NULL;
    if (f) {
        text[fread(text, 1, CAP - 1, f)] = 0;
        fclose(f);
    } else if (text) {
        text[0] = 0;
    }
    struct utsname u;
    nn_device_cpu_name(text, uname(&u) == 0 ? u.machine : NULL, buf, len);
    free(text);
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
