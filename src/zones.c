/* zones.c — a stream's zones (see zones.h): JSON parsing with errors naming the field,
 * serialisation, even-odd point-in-polygon with boundary points inside, and zone lookup
 * by precedence. Pure; any thread, usually the loop. */
#include "vigil/zones.h"
#include "vigil/common.h"
#include "vigil/config.h" /* vg_config_valid_id */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[VG_ZONE_NKINDS] = {
    [VG_ZONE_BED] = "bed",     [VG_ZONE_CHAIR] = "chair",     [VG_ZONE_DOOR] = "door",
    [VG_ZONE_FLOOR] = "floor", [VG_ZONE_EXCLUDE] = "exclude",
};

/* Lookup rank per kind: lower wins. */
static const int kind_rank[VG_ZONE_NKINDS] = {
    [VG_ZONE_EXCLUDE] = 0, [VG_ZONE_BED] = 1,   [VG_ZONE_CHAIR] = 1,
    [VG_ZONE_DOOR] = 2,    [VG_ZONE_FLOOR] = 3,
};

/* Points closer than this to an edge count as on it. */
#define EDGE_EPS 1e-9

void vg_jerr_set(vg_jerr_t *err, const char *field, const char *fmt, ...)
{
    if (!err) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(err->field, sizeof(err->field), "%s", field);
    snprintf(err->message, sizeof(err->message), "%s: %s", field, msg);
}

const char *vg_zone_kind_name(vg_zone_kind_t kind)
{
    return (unsigned)kind < VG_ZONE_NKINDS ? kind_names[kind] : NULL;
}

int vg_zone_kind_parse(const char *name, vg_zone_kind_t *out)
{
    for (int k = 0; name && k < VG_ZONE_NKINDS; k++)
        if (strcmp(kind_names[k], name) == 0) {
            *out = (vg_zone_kind_t)k;
            return 0;
        }
    return VG_EINVAL;
}

/* ---- parsing ------------------------------------------------------------------------------ */

/* Twice the signed area of the polygon (shoelace). */
static double area2(const vg_zone_t *z)
{
    double a = 0;
    for (size_t i = 0, j = z->n_points - 1; i < z->n_points; j = i++)
        a += z->points[j].x * z->points[i].y - z->points[i].x * z->points[j].y;
    return a;
}

static int parse_point(const json_t *pt, const char *key, vg_point_t *out, vg_jerr_t *err)
{
    if (!json_is_array(pt) || json_array_size(pt) != 2) {
        vg_jerr_set(err, key, "expected a pair [x, y]");
        return VG_EINVAL;
    }
    static const char *const axis[2] = {"x", "y"};
    double v[2];
    for (size_t a = 0; a < 2; a++) {
        const json_t *n = json_array_get(pt, a);
        if (!json_is_number(n)) {
            vg_jerr_set(err, key, "%s is not a number", axis[a]);
            return VG_EINVAL;
        }
        v[a] = json_number_value(n);
        if (!(v[a] >= 0.0 && v[a] <= 1.0)) {
            vg_jerr_set(err, key, "%s out of range 0..1 (got %g)", axis[a], v[a]);
            return VG_EINVAL;
        }
    }
    out->x = v[0];
    out->y = v[1];
    return 0;
}

static int parse_points(const json_t *pts, const char *key, vg_zone_t *z, vg_jerr_t *err)
{
    char k[160];
    snprintf(k, sizeof(k), "%s.points", key);
    size_t n = json_array_size(pts);
    if (!json_is_array(pts) || n < VG_ZONE_MIN_POINTS || n > VG_ZONE_MAX_POINTS) {
        vg_jerr_set(err, k, "expected an array of %d to %d points [x, y]", VG_ZONE_MIN_POINTS,
                    VG_ZONE_MAX_POINTS);
        return VG_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char pk[176];
        snprintf(pk, sizeof(pk), "%s[%zu]", k, i);
        if (parse_point(json_array_get(pts, i), pk, &z->points[i], err) != 0) return VG_EINVAL;
    }
    z->n_points = n;
    if (fabs(area2(z)) < 1e-8) {
        vg_jerr_set(err, k, "the points enclose no area");
        return VG_EINVAL;
    }
    return 0;
}

static int parse_zone(const json_t *obj, const char *key, vg_zone_t *z, vg_jerr_t *err)
{
    static const char *const keys[] = {"zone_id", "kind", "points"};
    char k[160];
    if (!json_is_object(obj)) {
        vg_jerr_set(err, key, "expected an object {zone_id, kind, points}");
        return VG_EINVAL;
    }
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)obj, name, v)
    {
        size_t i = 0;
        while (i < VG_ARRAY_LEN(keys) && strcmp(keys[i], name) != 0)
            i++;
        if (i == VG_ARRAY_LEN(keys)) {
            snprintf(k, sizeof(k), "%s.%s", key, name);
            vg_jerr_set(err, k, "unknown key (expected zone_id, kind, points)");
            return VG_EINVAL;
        }
    }
    const char *id = json_string_value(json_object_get(obj, "zone_id"));
    snprintf(k, sizeof(k), "%s.zone_id", key);
    if (!vg_config_valid_id(id)) {
        vg_jerr_set(err, k, "expected 1 to 64 characters of [A-Za-z0-9_.-]");
        return VG_EINVAL;
    }
    snprintf(z->zone_id, sizeof(z->zone_id), "%s", id);
    const char *kind = json_string_value(json_object_get(obj, "kind"));
    snprintf(k, sizeof(k), "%s.kind", key);
    if (vg_zone_kind_parse(kind, &z->kind) != 0) {
        vg_jerr_set(err, k, "expected one of bed, chair, door, floor, exclude");
        return VG_EINVAL;
    }
    return parse_points(json_object_get(obj, "points"), key, z, err);
}

int vg_zones_from_json(const json_t *arr, const char *key, vg_zones_t *out, vg_jerr_t *err)
{
    key = key ? key : "zones";
    if (!arr || json_is_null(arr)) {
        out->n = 0;
        return 0;
    }
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n > VG_ZONES_MAX) {
        vg_jerr_set(err, key, "expected an array of at most %d zones", VG_ZONES_MAX);
        return VG_EINVAL;
    }
    vg_zones_t *tmp = vg_xcalloc(1, sizeof(*tmp)); /* 17 KB: not on the stack */
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char k[140];
        snprintf(k, sizeof(k), "%s[%zu]", key, i);
        rc = parse_zone(json_array_get(arr, i), k, &tmp->zones[i], err);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (strcmp(tmp->zones[j].zone_id, tmp->zones[i].zone_id) == 0) {
                snprintf(k, sizeof(k), "%s[%zu].zone_id", key, i);
                vg_jerr_set(err, k, "'%s' is already used by %s[%zu]", tmp->zones[i].zone_id, key,
                            j);
                rc = VG_EINVAL;
            }
    }
    if (rc == 0) {
        tmp->n = n;
        *out = *tmp;
    }
    free(tmp);
    return rc;
}

json_t *vg_zones_to_json(const vg_zones_t *z)
{
    json_t *arr = json_array();
    for (size_t i = 0; z && i < z->n; i++) {
        const vg_zone_t *zone = &z->zones[i];
        json_t *pts = json_array();
        for (size_t p = 0; p < zone->n_points; p++)
            json_array_append_new(pts, json_pack("[f, f]", zone->points[p].x, zone->points[p].y));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:o}", "zone_id", zone->zone_id, "kind",
                                             vg_zone_kind_name(zone->kind), "points", pts));
    }
    return arr;
}

/* ---- geometry ----------------------------------------------------------------------------- */

/* True if p lies on the segment a-b (within EDGE_EPS). */
static bool on_segment(vg_point_t a, vg_point_t b, double x, double y)
{
    double cross = (b.x - a.x) * (y - a.y) - (b.y - a.y) * (x - a.x);
    double len = hypot(b.x - a.x, b.y - a.y);
    if (fabs(cross) > EDGE_EPS * (len > 0 ? len : 1)) return false;
    return x >= fmin(a.x, b.x) - EDGE_EPS && x <= fmax(a.x, b.x) + EDGE_EPS &&
           y >= fmin(a.y, b.y) - EDGE_EPS && y <= fmax(a.y, b.y) + EDGE_EPS;
}

bool vg_zone_contains(const vg_zone_t *zone, double x, double y)
{
    if (!zone || zone->n_points < VG_ZONE_MIN_POINTS || !isfinite(x) || !isfinite(y)) return false;
    bool inside = false;
    const vg_point_t *p = zone->points;
    for (size_t i = 0, j = zone->n_points - 1; i < zone->n_points; j = i++) {
        if (on_segment(p[j], p[i], x, y)) return true;
        /* Half-open in y: a vertex on the ray's line is counted for one edge only, and
         * horizontal edges never cross. */
        if ((p[i].y > y) != (p[j].y > y)) {
            double xc = p[j].x + (y - p[j].y) * (p[i].x - p[j].x) / (p[i].y - p[j].y);
            if (x < xc) inside = !inside;
        }
    }
    return inside;
}

const vg_zone_t *vg_zones_locate(const vg_zones_t *z, double x, double y)
{
    const vg_zone_t *best = NULL;
    for (size_t i = 0; z && i < z->n; i++) {
        const vg_zone_t *zone = &z->zones[i];
        if ((unsigned)zone->kind >= VG_ZONE_NKINDS) continue;
        if (best && kind_rank[zone->kind] >= kind_rank[best->kind]) continue;
        if (vg_zone_contains(zone, x, y)) best = zone;
    }
    return best;
}

bool vg_zones_has_kind(const vg_zones_t *z, vg_zone_kind_t kind)
{
    for (size_t i = 0; z && i < z->n; i++)
        if (z->zones[i].kind == kind) return true;
    return false;
}

void vg_zones_ground_point(const vg_box_t *box, bool lying, double *x, double *y)
{
    *x = (double)box->x + (double)box->w / 2.0;
    *y = (double)box->y + (double)box->h * (lying ? 0.5 : 1.0);
}
