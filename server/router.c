/*
 * router.c - see router.h. A linear scan: the table has tens of routes and
 * each comparison stops at the first differing segment, which costs less
 * than building a trie would save.
 */
#include "server/router.h"

#include <stdio.h>
#include <string.h>

/* Match one pattern against a path; params filled on success. */
static enum route_match_result match_path(const char *pattern, const char *path,
                                          struct route_params *params)
{
    params->n = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/') return ROUTE_NOT_FOUND;
        p++;
        s++;
        const char *pend = strchr(p, '/');
        const char *send = strchr(s, '/');
        size_t plen = pend ? (size_t)(pend - p) : strlen(p);
        size_t slen = send ? (size_t)(send - s) : strlen(s);
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (slen == 0) return ROUTE_NOT_FOUND;
            if (params->n == ROUTER_MAX_PARAMS) return ROUTE_NOT_FOUND;
            if (slen > ROUTER_MAX_PARAM_LEN) return ROUTE_BAD_PARAM;
            size_t i = params->n++;
            params->name[i] = p + 1;
            params->name_len[i] = plen - 2;
            memcpy(params->value[i], s, slen);
            params->value[i][slen] = '\0';
        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            return ROUTE_NOT_FOUND;
        }
        p += plen;
        s += slen;
    }
    return (*p == '\0' && *s == '\0') ? ROUTE_FOUND : ROUTE_NOT_FOUND;
}

enum route_match_result router_match(const struct route *table, size_t n,
                                     const char *method, const char *path,
                                     const struct route **out,
                                     struct route_params *params,
                                     char *allow, size_t allow_len)
{
    struct route_params scratch;
    int path_matched = 0, bad_param = 0;
    size_t used = 0;
    if (allow && allow_len) allow[0] = '\0';
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        enum route_match_result m = match_path(table[i].pattern, path, &scratch);
        if (m == ROUTE_BAD_PARAM) bad_param = 1;
        if (m != ROUTE_FOUND) continue;
        if (strcmp(table[i].method, method) == 0) {
            *out = &table[i];
            *params = scratch;
            return ROUTE_FOUND;
        }
        path_matched = 1;
        if (allow && used < allow_len) {
            int w = snprintf(allow + used, allow_len - used, "%s%s",
                             used ? ", " : "", table[i].method);
            if (w > 0) used += (size_t)w;
        }
    }
    if (path_matched) return ROUTE_BAD_METHOD;
    return bad_param ? ROUTE_BAD_PARAM : ROUTE_NOT_FOUND;
}

const char *route_param(const struct route_params *p, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < p->n; i++)
        if (p->name_len[i] == len && memcmp(p->name[i], name, len) == 0)
            return p->value[i];
    return NULL;
}
