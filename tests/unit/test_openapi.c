/* test_openapi.c - the server's route table and api/openapi.yaml describe
 * the same API: every route is in the spec with the same method, every
 * operation in the spec has a route, and public routes are exactly the
 * operations with `security: []`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include <yaml.h>

#include "server/router.h"

struct op { char method[8]; char path[128]; int public_; };

static struct op ops[256];
static size_t n_ops;

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(doc, p->value);
    }
    return NULL;
}

static int load_spec(void **state)
{
    const char *dir = getenv("PODIUM_SOURCE_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/api/openapi.yaml", dir ? dir : ".");
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        fprintf(stderr, "%s: YAML error at line %zu: %s\n", path,
                parser.problem_mark.line + 1, parser.problem);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_node_t *paths = map_get(&doc, root, "paths");
    static const char *const methods[] = {"get", "post", "put", "patch", "delete", NULL};
    for (yaml_node_pair_t *p = paths ? paths->data.mapping.pairs.start : NULL;
         p && p < paths->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        yaml_node_t *item = yaml_document_get_node(&doc, p->value);
        for (int m = 0; methods[m]; m++) {
            yaml_node_t *op = map_get(&doc, item, methods[m]);
            if (op == NULL || n_ops == 256) continue;
            struct op *o = &ops[n_ops++];
            for (int i = 0; methods[m][i]; i++) o->method[i] = (char)(methods[m][i] - 32);
            snprintf(o->path, sizeof o->path, "%s", (char *)k->data.scalar.value);
            yaml_node_t *sec = map_get(&doc, op, "security");
            o->public_ = sec && sec->type == YAML_SEQUENCE_NODE &&
                         sec->data.sequence.items.start == sec->data.sequence.items.top;
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return n_ops > 0 ? 0 : -1;
}

static void every_route_is_in_the_spec(void **state)
{
    int missing = 0;
    for (size_t i = 0; i < server_routes_count; i++) {
        const struct route *r = &server_routes[i];
        size_t j = 0;
        while (j < n_ops && !(strcmp(ops[j].method, r->method) == 0 && strcmp(ops[j].path, r->pattern) == 0)) j++;
        if (j == n_ops) {
            fprintf(stderr, "route %s %s is not in api/openapi.yaml\n", r->method, r->pattern);
            missing++;
        } else if (ops[j].public_ != (r->auth == ROUTE_PUBLIC)) {
            fprintf(stderr, "route %s %s: the spec says %s, the table says %s\n", r->method,
                    r->pattern, ops[j].public_ ? "public" : "authenticated",
                    r->auth == ROUTE_PUBLIC ? "public" : "authenticated");
            missing++;
        }
    }
    assert_int_equal(missing, 0);
}

static void every_spec_operation_has_a_route(void **state)
{
    int extra = 0;
    for (size_t j = 0; j < n_ops; j++) {
        size_t i = 0;
        while (i < server_routes_count &&
               !(strcmp(ops[j].method, server_routes[i].method) == 0 &&
                 strcmp(ops[j].path, server_routes[i].pattern) == 0)) i++;
        if (i == server_routes_count) {
            fprintf(stderr, "api/openapi.yaml has %s %s, which the server does not route\n",
                    ops[j].method, ops[j].path);
            extra++;
        }
    }
    assert_int_equal(extra, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_route_is_in_the_spec),
        cmocka_unit_test(every_spec_operation_has_a_route),
    };
    return cmocka_run_group_tests(tests, load_spec, NULL);
}
