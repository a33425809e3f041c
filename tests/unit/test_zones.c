/* Unit tests for zones.c: parsing accepts good zones and names the field of every bad
 * one; JSON round-trips; point-in-polygon on squares, concave and self-intersecting
 * polygons, boundaries and vertices; lookup precedence; ground points. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "vigil/common.h"
#include "vigil/zones.h"

static int parse(const char *text, vg_zones_t *z, vg_jerr_t *err)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    int rc = vg_zones_from_json(j, "zones", z, err);
    json_decref(j);
    return rc;
}

static void expect_error(const char *text, const char *field, const char *needle)
{
    vg_zones_t z = {0};
    vg_jerr_t err = {0};
    assert_int_equal(parse(text, &z, &err), VG_EINVAL);
    assert_string_equal(err.field, field);
    if (!strstr(err.message, needle)) fail_msg("message '%s' lacks '%s'", err.message, needle);
    assert_int_equal(strncmp(err.message, field, strlen(field)), 0);
}

#define SQUARE "[[0.1,0.1],[0.5,0.1],[0.5,0.5],[0.1,0.5]]"

static void test_parse_ok(void **state)
{
    (void)state;
    vg_zones_t z;
    vg_jerr_t err;
    assert_int_equal(parse("[{\"zone_id\":\"bed-1\",\"kind\":\"bed\",\"points\":" SQUARE "},"
                           "{\"zone_id\":\"door\",\"kind\":\"door\",\"points\":"
                           "[[0,0],[1,0],[1,1]]}]",
                           &z, &err),
                     0);
    assert_int_equal(z.n, 2);
    assert_string_equal(z.zones[0].zone_id, "bed-1");
    assert_int_equal(z.zones[0].kind, VG_ZONE_BED);
    assert_int_equal(z.zones[0].n_points, 4);
    assert_true(z.zones[0].points[2].x == 0.5);
    assert_int_equal(z.zones[1].kind, VG_ZONE_DOOR);
    assert_true(vg_zones_has_kind(&z, VG_ZONE_DOOR));
    assert_false(vg_zones_has_kind(&z, VG_ZONE_EXCLUDE));
    assert_int_equal(parse("[]", &z, &err), 0);
    assert_int_equal(z.n, 0);
    assert_int_equal(vg_zones_from_json(NULL, NULL, &z, &err), 0);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("{}", "zones", "array");
    expect_error("[3]", "zones[0]", "object");
    expect_error("[{\"zone_id\":\"a\",\"kind\":\"bed\",\"points\":" SQUARE ",\"colour\":1}]",
                 "zones[0].colour", "unknown key");
    expect_error("[{\"kind\":\"bed\",\"points\":" SQUARE "}]", "zones[0].zone_id", "64");
    expect_error("[{\"zone_id\":\"a b\",\"kind\":\"bed\",\"points\":" SQUARE "}]",
                 "zones[0].zone_id", "[A-Za-z0-9_.-]");
    expect_error("[{\"zone_id\":\"a\",\"kind\":\"sofa\",\"points\":" SQUARE "}]", "zones[0].kind",
                 "bed, chair");
    expect_error("[{\"zone_id\":\"a\",\"kind\":\"bed\",\"points\":[[0,0],[1,1]]}]",
                 "zones[0].points", "3 to 32");
    expect_error("[{\"zone_id\":\"a\",\"kind\":\"bed\",\"points\":" SQUARE "},"
                 "{\"zone_id\":\"b\",\"kind\":\"bed\",\"points\":" SQUARE "},"
                 "{\"zone_id\":\"c\",\"kind\":\"floor\",\"points\":"
                 "[[0,0],[1,0],[1,1],[0.5,1],[0.2,1],[1.5,0.5]]}]",
                 "zones[2].points[5]", "x out of range 0..1");
    expect_error("[{\"zone_id\":\"a\",\"kind\":\"bed\",\"points\":[[0,0],[1,0],[1,\"1\"]]}]",
                 "zones[0].points[2]", "y is not a number");
    expect_error("[{\"zone_id\":\"a\",\"kind\":\"bed\",\"points\":[[0,0],[1,0],[1]]}]",
                 "zones[0].points[2]", "pair");
    expect_error("[{\"zone_id\":\"a\",\"kind\":\"bed\",\"points\":[[0,0],[0.5,0.5],[1,1]]}]",
                 "zones[0].points", "no area");
    expect_error("[{\"zone_id\":\"a\",\"kind\":\"bed\",\"points\":" SQUARE "},"
                 "{\"zone_id\":\"a\",\"kind\":\"chair\",\"points\":" SQUARE "}]",
                 "zones[1].zone_id", "already used by zones[0]");
    /* 33 points */
    char big[2048] = "[{\"zone_id\":\"a\",\"kind\":\"bed\",\"points\":[";
    for (int i = 0; i < 33; i++) {
        char p[48];
        snprintf(p, sizeof(p), "%s[%f,%f]", i ? "," : "", 0.5 + 0.4 * cos(i * 0.19),
                 0.5 + 0.4 * sin(i * 0.19));
        strcat(big, p);
    }
    strcat(big, "]}]");
    expect_error(big, "zones[0].points", "3 to 32");
    /* an error leaves the output untouched */
    vg_zones_t z = {.n = 7};
    vg_jerr_t err;
    assert_int_equal(parse("[{\"zone_id\":\"a\"}]", &z, &err), VG_EINVAL);
    assert_int_equal(z.n, 7);
}

static void test_roundtrip(void **state)
{
    (void)state;
    vg_zones_t z, back;
    vg_jerr_t err;
    assert_int_equal(parse("[{\"zone_id\":\"bed\",\"kind\":\"bed\",\"points\":" SQUARE "},"
                           "{\"zone_id\":\"tv\",\"kind\":\"exclude\",\"points\":"
                           "[[0.9,0],[1,0],[1,0.1]]}]",
                           &z, &err),
                     0);
    json_t *j = vg_zones_to_json(&z);
    assert_int_equal(vg_zones_from_json(j, NULL, &back, &err), 0);
    json_decref(j);
    assert_int_equal(back.n, z.n);
    for (size_t i = 0; i < z.n; i++) {
        assert_string_equal(back.zones[i].zone_id, z.zones[i].zone_id);
        assert_int_equal(back.zones[i].kind, z.zones[i].kind);
        assert_int_equal(back.zones[i].n_points, z.zones[i].n_points);
        assert_memory_equal(back.zones[i].points, z.zones[i].points,
                            z.zones[i].n_points * sizeof(vg_point_t));
    }
}

static vg_zone_t poly(vg_zone_kind_t kind, const char *id, const double *xy, size_t n)
{
    vg_zone_t z = {.kind = kind, .n_points = n};
    snprintf(z.zone_id, sizeof(z.zone_id), "%s", id);
    for (size_t i = 0; i < n; i++)
        z.points[i] = (vg_point_t){xy[2 * i], xy[2 * i + 1]};
    return z;
}

static void test_contains(void **state)
{
    (void)state;
    static const double sq[] = {0.1, 0.1, 0.5, 0.1, 0.5, 0.5, 0.1, 0.5};
    vg_zone_t s = poly(VG_ZONE_BED, "s", sq, 4);
    assert_true(vg_zone_contains(&s, 0.3, 0.3));
    assert_false(vg_zone_contains(&s, 0.6, 0.3));
    assert_false(vg_zone_contains(&s, 0.3, 0.05));
    /* boundary and vertices count as inside, just outside does not */
    assert_true(vg_zone_contains(&s, 0.5, 0.3));
    assert_true(vg_zone_contains(&s, 0.1, 0.1));
    assert_true(vg_zone_contains(&s, 0.3, 0.5));
    assert_false(vg_zone_contains(&s, 0.5 + 1e-6, 0.3));
    /* a ray through a vertex (y of a vertex) counts once */
    static const double diamond[] = {0.5, 0.1, 0.9, 0.5, 0.5, 0.9, 0.1, 0.5};
    vg_zone_t d = poly(VG_ZONE_BED, "d", diamond, 4);
    assert_true(vg_zone_contains(&d, 0.3, 0.5));
    assert_false(vg_zone_contains(&d, 0.05, 0.5));
    assert_false(vg_zone_contains(&d, 0.95, 0.5));
    /* concave: a U shape, the notch is outside */
    static const double u[] = {0.1, 0.1, 0.3, 0.1, 0.3, 0.6, 0.7, 0.6,
                               0.7, 0.1, 0.9, 0.1, 0.9, 0.9, 0.1, 0.9};
    vg_zone_t uz = poly(VG_ZONE_FLOOR, "u", u, 8);
    assert_false(vg_zone_contains(&uz, 0.5, 0.3));
    assert_true(vg_zone_contains(&uz, 0.2, 0.3));
    assert_true(vg_zone_contains(&uz, 0.8, 0.3));
    assert_true(vg_zone_contains(&uz, 0.5, 0.8));
    /* self-intersecting bow tie: both lobes inside, even-odd */
    static const double bow[] = {0.1, 0.1, 0.9, 0.9, 0.9, 0.1, 0.1, 0.9};
    vg_zone_t b = poly(VG_ZONE_FLOOR, "b", bow, 4);
    assert_true(vg_zone_contains(&b, 0.8, 0.5));
    assert_true(vg_zone_contains(&b, 0.2, 0.5));
    assert_false(vg_zone_contains(&b, 0.5, 0.2));
    /* a pentagram: the centre pentagon is covered twice, so even-odd leaves it out */
    double star[10];
    for (int i = 0; i < 5; i++) {
        double a = -M_PI / 2 + i * 4 * M_PI / 5;
        star[2 * i] = 0.5 + 0.4 * cos(a);
        star[2 * i + 1] = 0.5 + 0.4 * sin(a);
    }
    vg_zone_t st = poly(VG_ZONE_FLOOR, "star", star, 5);
    assert_false(vg_zone_contains(&st, 0.5, 0.5));
    assert_true(vg_zone_contains(&st, 0.5, 0.15));
    assert_false(vg_zone_contains(&s, NAN, 0.3));
}

static void test_locate_precedence(void **state)
{
    (void)state;
    static const double all[] = {0, 0, 1, 0, 1, 1, 0, 1};
    static const double left[] = {0, 0, 0.5, 0, 0.5, 1, 0, 1};
    static const double corner[] = {0, 0, 0.2, 0, 0.2, 0.2, 0, 0.2};
    static const double right[] = {0.6, 0, 1, 0, 1, 1, 0.6, 1};
    vg_zones_t z = {.n = 5};
    z.zones[0] = poly(VG_ZONE_FLOOR, "floor", all, 4);
    z.zones[1] = poly(VG_ZONE_DOOR, "door", right, 4);
    z.zones[2] = poly(VG_ZONE_CHAIR, "chair", right, 4);
    z.zones[3] = poly(VG_ZONE_BED, "bed", left, 4);
    z.zones[4] = poly(VG_ZONE_EXCLUDE, "tv", corner, 4);
    assert_string_equal(vg_zones_locate(&z, 0.1, 0.1)->zone_id, "tv");
    assert_string_equal(vg_zones_locate(&z, 0.3, 0.5)->zone_id, "bed");
    assert_string_equal(vg_zones_locate(&z, 0.8, 0.5)->zone_id, "chair");
    assert_string_equal(vg_zones_locate(&z, 0.55, 0.5)->zone_id, "floor");
    z.zones[2].kind = VG_ZONE_FLOOR;
    assert_string_equal(vg_zones_locate(&z, 0.8, 0.5)->zone_id, "door");
    z.n = 0;
    assert_null(vg_zones_locate(&z, 0.5, 0.5));
    assert_null(vg_zones_locate(NULL, 0.5, 0.5));
}

static void test_ground_point(void **state)
{
    (void)state;
    vg_box_t b = {0.2f, 0.2f, 0.2f, 0.6f};
    double x, y;
    vg_zones_ground_point(&b, false, &x, &y);
    assert_true(fabs(x - 0.3) < 1e-6 && fabs(y - 0.8) < 1e-6);
    vg_zones_ground_point(&b, true, &x, &y);
    assert_true(fabs(x - 0.3) < 1e-6 && fabs(y - 0.5) < 1e-6);
    vg_zone_kind_t k;
    assert_int_equal(vg_zone_kind_parse("exclude", &k), 0);
    assert_int_equal(k, VG_ZONE_EXCLUDE);
    assert_int_equal(vg_zone_kind_parse("Bed", &k), VG_EINVAL);
    assert_string_equal(vg_zone_kind_name(VG_ZONE_CHAIR), "chair");
    assert_null(vg_zone_kind_name(VG_ZONE_NKINDS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),          cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_roundtrip),         cmocka_unit_test(test_contains),
        cmocka_unit_test(test_locate_precedence), cmocka_unit_test(test_ground_point),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
