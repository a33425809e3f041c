/* config_json.c — config keys whose value is a JSON document for another module's
 * parser (a stream's zones and events settings): the YAML subtree is converted to
 * jansson, parsed by the care-event engine's own functions, and an error is reported
 * at the file:line:col of the exact node it names ("streams[0].zones[1].points[2]").
 * Pure; loop thread. */
#include "config_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

vg_mark_t vg_cfg_node_mark(const yaml_node_t *n)
{
    return (vg_mark_t){(int)n->start_mark.line + 1, (int)n->start_mark.column + 1};
}

/* K_JSON parsers: the care-event engine's own (errors name the field inside). */
int vg_cfg_parse_zones(const json_t *v, const char *key, void **dst, vg_jerr_t *err)
{
    vg_zones_t z;
    if (vg_zones_from_json(v, key, &z, err) != 0) return VG_EINVAL;
    free(*dst);
    *dst = NULL;
    if (z.n) {
        *dst = vg_xcalloc(1, sizeof(z));
        memcpy(*dst, &z, sizeof(z));
    }
    return VG_OK;
}

int vg_cfg_parse_events(const json_t *v, const char *key, void **dst, vg_jerr_t *err)
{
    vg_events_cfg_t e;
    if (vg_events_cfg_from_json(v, key, &e, err) != 0) return VG_EINVAL;
    free(*dst);
    *dst = vg_xcalloc(1, sizeof(e));
    memcpy(*dst, &e, sizeof(e));
    return VG_OK;
}

/* ---- K_JSON: a YAML subtree handed to a JSON parser ---------------------------------- */

static json_t *yaml_scalar_json(const yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return json_string(s);
    if (!*s || strcmp(s, "null") == 0 || strcmp(s, "~") == 0) return json_null();
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) return json_boolean(*s == 't');
    char *end;
    errno = 0;
    long long i = strtoll(s, &end, 10);
    if (!*end && !errno) return json_integer(i);
    double d;
    d = strtod(s, &end);
    if (end != s && !*end && isfinite(d)) return json_real(d);
    return json_string(s);
}

static json_t *yaml_to_json(yaml_document_t *doc, yaml_node_t *n, int depth)
{
    if (!n || depth > 32) return json_null();
    if (n->type == YAML_SCALAR_NODE) return yaml_scalar_json(n);
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++)
            json_array_append_new(a,
                                  yaml_to_json(doc, yaml_document_get_node(doc, *it), depth + 1));
        return a;
    }
    json_t *o = json_object();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k->type == YAML_SCALAR_NODE)
            json_object_set_new(
                o, (const char *)k->data.scalar.value,
                yaml_to_json(doc, yaml_document_get_node(doc, p->value), depth + 1));
    }
    return o;
}

/* The node a parser's error field points at ("zones[1].points[2]" under "zones"): the
 * deepest one that exists, so the message carries the right line and column. */
static yaml_node_t *yaml_follow(yaml_document_t *doc, yaml_node_t *n, const char *path)
{
    while (n && *path) {
        if (*path == '.') path++;
        if (*path == '[') {
            size_t i = strtoul(path + 1, (char **)&path, 10);
            path += *path == ']';
            if (n->type != YAML_SEQUENCE_NODE ||
                i >= (size_t)(n->data.sequence.items.top - n->data.sequence.items.start))
                return n;
            n = yaml_document_get_node(doc, n->data.sequence.items.start[i]);
            continue;
        }
        size_t len = strcspn(path, ".[");
        if (n->type != YAML_MAPPING_NODE) return n;
        yaml_node_t *next = NULL;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            if (k->type == YAML_SCALAR_NODE && strlen((char *)k->data.scalar.value) == len &&
                strncmp((char *)k->data.scalar.value, path, len) == 0)
                next = yaml_document_get_node(doc, p->value);
        }
        if (!next) return n;
        n = next;
        path += len;
    }
    return n;
}

void vg_cfg_walk_json(ctx_t *c, const field_t *f, void *base, yaml_node_t *v, const char *key)
{
    json_t *j = yaml_to_json(c->doc, v, 0);
    vg_jerr_t err = {{0}, {0}};
    if (f->parse(j, key, (void **)((char *)base + f->off), &err) != 0) {
        size_t kl = strlen(key);
        const char *rest = strncmp(err.field, key, kl) == 0 ? err.field + kl : "";
        const char *msg = err.message;
        size_t fl = strlen(err.field);
        if (fl && strncmp(msg, err.field, fl) == 0 && strncmp(msg + fl, ": ", 2) == 0)
            msg += fl + 2;
        vg_cfg_report(c, false, vg_cfg_node_mark(yaml_follow(c->doc, v, rest)), "key '%s': %s",
                      *err.field ? err.field : key, msg);
    }
    json_decref(j);
}
