/* zones.h — a stream's zones: polygons in normalised image coordinates (0..1, x to the
 * right, y down) of kind bed, chair, door, floor or exclude, parsed and validated from
 * JSON (`zones: [{zone_id, kind, points: [[x, y], ...]}]`), serialised back, and the
 * question the event rules ask: which zone holds this person's ground point.
 *
 * Pure and reentrant: no globals, no locks. A vg_zones_t is a plain value (no pointers
 * inside), so a copy is a snapshot: the loop owns the stream's copy and hands others
 * their own. */
#ifndef VIGIL_ZONES_H
#define VIGIL_ZONES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vigil/detector.h" /* vg_box_t */

#define VG_ZONE_ID_MAX 65 /* 64 characters of [A-Za-z0-9_.-] and the NUL */
#define VG_ZONE_MIN_POINTS 3
#define VG_ZONE_MAX_POINTS 32
#define VG_ZONES_MAX 32 /* zones per stream */

typedef enum {
    VG_ZONE_BED,
    VG_ZONE_CHAIR,
    VG_ZONE_DOOR,
    VG_ZONE_FLOOR,
    VG_ZONE_EXCLUDE,
    VG_ZONE_NKINDS,
} vg_zone_kind_t;

typedef struct {
    double x, y;
} vg_point_t;

typedef struct {
    char zone_id[VG_ZONE_ID_MAX];
    vg_zone_kind_t kind;
    size_t n_points;
    vg_point_t points[VG_ZONE_MAX_POINTS];
} vg_zone_t;

typedef struct {
    size_t n;
    vg_zone_t zones[VG_ZONES_MAX];
} vg_zones_t;

/* A user-facing error from a JSON parser: the offending field ("zones[2].points[5]")
 * and a message that starts with it ("zones[2].points[5]: x out of range 0..1"). */
typedef struct {
    char field[128];
    char message[320];
} vg_jerr_t;

/* Fills err (NULL ok) with `field` and "field: <fmt>". */
void vg_jerr_set(vg_jerr_t *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "bed", "chair", ...; NULL for an unknown kind. */
const char *vg_zone_kind_name(vg_zone_kind_t kind);
/* 0 and *out, or VG_EINVAL for a name that is not a kind. */
int vg_zone_kind_parse(const char *name, vg_zone_kind_t *out);

/* Parses a zones array (borrowed; JSON null or an empty array mean no zones) into *out.
 * `key` names the array in errors ("zones", "streams[1].zones"; NULL: "zones"). Checks:
 * an array of at most VG_ZONES_MAX objects with exactly the keys zone_id (an id like
 * every id in vigil, unique in the stream), kind (one of the kinds) and points (3 to 32
 * pairs [x, y] of numbers in 0..1, enclosing an area). Returns 0, or VG_EINVAL with err
 * filled and *out untouched. */
int vg_zones_from_json(const json_t *arr, const char *key, vg_zones_t *out, vg_jerr_t *err);
/* The zones as a JSON array (caller owns the reference); parses back to the same zones. */
json_t *vg_zones_to_json(const vg_zones_t *z);

/* True if (x, y) lies inside the polygon by the even-odd rule (self-intersecting
 * polygons have holes where they overlap), or on its boundary. */
bool vg_zone_contains(const vg_zone_t *zone, double x, double y);

/* The zone that holds the point, by precedence: exclude first, then bed and chair,
 * then door, then floor; among zones of one rank, the first listed. NULL when no zone
 * holds it. The result points into z (borrowed). */
const vg_zone_t *vg_zones_locate(const vg_zones_t *z, double x, double y);
/* True if the stream has a zone of this kind. */
bool vg_zones_has_kind(const vg_zones_t *z, vg_zone_kind_t kind);

/* A person's ground point: the bottom centre of their box, or the box centre when they
 * are lying (the feet are then anywhere along the body). */
void vg_zones_ground_point(const vg_box_t *box, bool lying, double *x, double *y);

#endif
