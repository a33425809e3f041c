/* config_json.c — config keys whose value is a JSON document for another module's
 * parser (a stream's zones and events settings): the YAML subtree is converted to
 * jansson, parsed by the care-event engine's own functions, and an error is reported
 * at the file:line:col of the exact node it names ("streams[0].zones[1].points[2]").
 * Pure; loop thread. */
#include "config_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
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

/* ---- on_event: escalation per event type ----------------------------------------------- */

static int parse_escalation(const json_t *v, const char *key, vg_escalation_t *out, vg_jerr_t *err)
{
    char f[160];
    if (!json_is_object(v)) {
        vg_jerr_set(err, key, "expected an object {fps, model_id, hold_s}");
        return VG_EINVAL;
    }
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        snprintf(f, sizeof(f), "%.100s.%.40s", key, k);
        double d = json_number_value(x);
        if (strcmp(k, "fps") == 0 && json_is_number(x) && d >= 0.01 && d <= 30) {
            out->fps = d;
        } else if (strcmp(k, "hold_s") == 0 && json_is_number(x) && d >= 1 && d <= 86400) {
            out->hold_s = d;
        } else if (strcmp(k, "model_id") == 0 && vg_config_valid_id(json_string_value(x))) {
            snprintf(out->model_id, sizeof(out->model_id), "%s", json_string_value(x));
        } else {
            bool known = !strcmp(k, "fps") || !strcmp(k, "hold_s") || !strcmp(k, "model_id");
            vg_jerr_set(err, f,
                        known ? "expected %s" : "unknown key (expected fps, model_id, hold_s)%s",
                        !strcmp(k, "fps")      ? "a number from 0.01 to 30"
                        : !strcmp(k, "hold_s") ? "a number from 1 to 86400"
                        : known                ? "a model id"
                                               : "");
            return VG_EINVAL;
        }
    }
    if (out->fps == 0 && !out->model_id[0]) {
        vg_jerr_set(err, key, "give fps, model_id or both");
        return VG_EINVAL;
    }
    out->set = true;
    return VG_OK;
}

int vg_cfg_parse_on_event(const json_t *v, const char *key, void **dst, vg_jerr_t *err)
{
    vg_escalation_t esc[VG_EV_NTYPES];
    memset(esc, 0, sizeof(esc));
    if (v && !json_is_null(v) && !json_is_object(v)) {
        vg_jerr_set(err, key, "expected an object {<event type>: {fps, model_id, hold_s}}");
        return VG_EINVAL;
    }
    const char *k;
    json_t *x;
    bool any = false;
    json_object_foreach((json_t *)v, k, x)
    {
        char f[160];
        vg_event_type_t t;
        snprintf(f, sizeof(f), "%.100s.%.40s", key, k);
        if (vg_event_type_parse(k, &t) != 0) {
            vg_jerr_set(err, f, "not an event type");
            return VG_EINVAL;
        }
        esc[t].hold_s = 300;
        if (parse_escalation(x, f, &esc[t], err) != 0) return VG_EINVAL;
        any = true;
    }
    free(*dst);
    *dst = any ? memcpy(vg_xcalloc(VG_EV_NTYPES, sizeof(*esc)), esc, sizeof(esc)) : NULL;
    return VG_OK;
}

json_t *vg_cfg_on_event_to_json(const vg_escalation_t *on_event)
{
    json_t *o = json_object();
    for (int t = 0; on_event && t < VG_EV_NTYPES; t++) {
        const vg_escalation_t *e = &on_event[t];
        if (!e->set) continue;
        json_t *j = json_pack("{s:f}", "hold_s", e->hold_s);
        if (e->fps > 0) json_object_set_new(j, "fps", json_real(e->fps));
        if (e->model_id[0]) json_object_set_new(j, "model_id", json_string(e->model_id));
        json_object_set_new(o, vg_event_type_name((vg_event_type_t)t), j);
    }
    return o;
}
