/* events_cfg.c — the `events:` settings of a stream (see events.h): one table of rules
 * and one of top-level numbers, walked by the parser and the serialiser; schedules and
 * their time zone; the names of types, phases and severities. Pure; loop thread. */
#include "vigil/common.h"
#include "vigil/events.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *name;
    bool enabled;
    vg_severity_t severity;
    const char *threshold_key; /* NULL: the rule has no threshold */
    double def, min, max;
} rule_def_t;

static const rule_def_t rule_defs[VG_EV_NTYPES] = {
    [VG_EV_FALL] = {"fall", true, VG_SEV_CRITICAL, "confirm_s", 3, 0, 600},
    [VG_EV_PERSON_DOWN] = {"person_down", true, VG_SEV_CRITICAL, "down_s", 10, 0, 3600},
    [VG_EV_BED_EXIT] = {"bed_exit", false, VG_SEV_WARNING, "confirm_s", 2, 0, 600},
    [VG_EV_BED_EDGE] = {"bed_edge", false, VG_SEV_WARNING, "confirm_s", 3, 0, 600},
    [VG_EV_INACTIVITY] = {"inactivity", false, VG_SEV_WARNING, "inactivity_s", 1800, 10, 86400},
    [VG_EV_ROOM_ENTRY] = {"room_entry", false, VG_SEV_INFO, NULL, 0, 0, 0},
    [VG_EV_ROOM_EXIT] = {"room_exit", false, VG_SEV_INFO, NULL, 0, 0, 0},
};

typedef struct {
    const char *name;
    size_t off;
    double def, min, max;
} num_def_t;

#define NUM(field, d, lo, hi)                                                                      \
    {                                                                                              \
#field, offsetof(vg_events_cfg_t, field), d, lo, hi                                        \
    }
static const num_def_t num_defs[] = {
    NUM(min_confidence, 0.15, 0, 1), NUM(clear_s, 3, 0, 600), NUM(update_s, 60, 0, 86400),
    NUM(lost_s, 300, 0, 86400),      NUM(merge_s, 5, 0, 600), NUM(move_eps, 0.03, 0.001, 1),
};

static const char *const phase_names[] = {"start", "update", "end"};
static const char *const severity_names[] = {"info", "warning", "critical"};

const char *vg_event_type_name(vg_event_type_t t)
{
    return (unsigned)t < VG_EV_NTYPES ? rule_defs[t].name : "unknown";
}

int vg_event_type_parse(const char *name, vg_event_type_t *out)
{
    for (int t = 0; name && t < VG_EV_NTYPES; t++)
        if (strcmp(rule_defs[t].name, name) == 0) {
            *out = (vg_event_type_t)t;
            return 0;
        }
    return VG_EINVAL;
}

const char *vg_event_phase_name(vg_event_phase_t p)
{
    return (unsigned)p < VG_ARRAY_LEN(phase_names) ? phase_names[p] : "unknown";
}

const char *vg_severity_name(vg_severity_t s)
{
    return (unsigned)s < VG_ARRAY_LEN(severity_names) ? severity_names[s] : "unknown";
}

int vg_severity_parse(const char *name, vg_severity_t *out)
{
    for (size_t i = 0; name && i < VG_ARRAY_LEN(severity_names); i++)
        if (strcmp(severity_names[i], name) == 0) {
            *out = (vg_severity_t)i;
            return 0;
        }
    return VG_EINVAL;
}

void vg_events_cfg_default(vg_events_cfg_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (int t = 0; t < VG_EV_NTYPES; t++) {
        cfg->rules[t].enabled = rule_defs[t].enabled;
        cfg->rules[t].severity = rule_defs[t].severity;
        cfg->rules[t].threshold_s = rule_defs[t].def;
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(num_defs); i++)
        *(double *)((char *)cfg + num_defs[i].off) = num_defs[i].def;
    snprintf(cfg->timezone, sizeof(cfg->timezone), "local");
    cfg->tz_local = true;
}

/* ---- schedules and time zones -------------------------------------------------------------- */

/* "HH:MM" at s (exactly 5 characters) into minutes of the day; -1 if malformed.
 * 24:00 is allowed as an end. */
static int parse_hhmm(const char *s, bool end)
{
    if (!(s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] == ':' && s[3] >= '0' &&
          s[3] <= '5' && s[4] >= '0' && s[4] <= '9'))
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || (h == 24 && (m != 0 || !end))) return -1;
    return h * 60 + m;
}

static int parse_window(const char *s, int *start, int *end)
{
    if (!s || strlen(s) != 11 || s[5] != '-') return VG_EINVAL;
    *start = parse_hhmm(s, false);
    *end = parse_hhmm(s + 6, true);
    if (*start < 0 || *end < 0 || *start == *end) return VG_EINVAL;
    return 0;
}

static int parse_schedule(const json_t *v, const char *key, vg_schedule_t *out, vg_jerr_t *err)
{
    vg_schedule_t sc = {0};
    if (json_is_string(v)) {
        if (parse_window(json_string_value(v), &sc.w[0].start_min, &sc.w[0].end_min) != 0) goto bad;
        sc.n = 1;
    } else if (json_is_array(v) && json_array_size(v) <= VG_EVENTS_MAX_WINDOWS) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (parse_window(json_string_value(json_array_get(v, i)), &sc.w[i].start_min,
                             &sc.w[i].end_min) != 0) {
                char k[224];
                snprintf(k, sizeof(k), "%s[%zu]", key, i);
                vg_jerr_set(err, k, "expected a window \"HH:MM-HH:MM\" such as \"21:00-07:00\"");
                return VG_EINVAL;
            }
        sc.n = json_array_size(v);
    } else if (!json_is_null(v)) {
        goto bad;
    }
    *out = sc;
    return 0;
bad:
    vg_jerr_set(err, key,
                "expected \"HH:MM-HH:MM\" (such as \"21:00-07:00\") or an array of "
                "up to %d of them",
                VG_EVENTS_MAX_WINDOWS);
    return VG_EINVAL;
}

static int parse_timezone(const char *s, vg_events_cfg_t *cfg)
{
    if (!s) return VG_EINVAL;
    cfg->tz_local = strcmp(s, "local") == 0;
    cfg->tz_offset_min = 0;
    if (cfg->tz_local || strcmp(s, "UTC") == 0) {
        snprintf(cfg->timezone, sizeof(cfg->timezone), "%s", s);
        return 0;
    }
    int m = strlen(s) == 6 && (s[0] == '+' || s[0] == '-') ? parse_hhmm(s + 1, false) : -1;
    if (m < 0 || m > 14 * 60) return VG_EINVAL;
    cfg->tz_offset_min = s[0] == '-' ? -m : m;
    snprintf(cfg->timezone, sizeof(cfg->timezone), "%s", s);
    return 0;
}

static int minute_of_day(const vg_events_cfg_t *cfg, double wall)
{
    struct tm tm;
    time_t t = (time_t)floor(wall);
    if (cfg->tz_local) {
        localtime_r(&t, &tm);
    } else {
        t += (time_t)cfg->tz_offset_min * 60;
        gmtime_r(&t, &tm);
    }
    return tm.tm_hour * 60 + tm.tm_min;
}

bool vg_events_cfg_active(const vg_events_cfg_t *cfg, vg_event_type_t type, double wall)
{
    const vg_schedule_t *sc = &cfg->rules[type].schedule;
    if (sc->n == 0) return true;
    int m = minute_of_day(cfg, wall);
    for (size_t i = 0; i < sc->n; i++) {
        int a = sc->w[i].start_min, b = sc->w[i].end_min;
        if (a < b ? (m >= a && m < b) : (m >= a || m < b)) return true;
    }
    return false;
}

/* ---- parsing ------------------------------------------------------------------------------- */

static int parse_number(const json_t *v, const char *key, double lo, double hi, double *out,
                        vg_jerr_t *err)
{
    double d = json_number_value(v);
    if (!json_is_number(v) || !(d >= lo && d <= hi)) {
        vg_jerr_set(err, key, "expected a number from %g to %g", lo, hi);
        return VG_EINVAL;
    }
    *out = d;
    return 0;
}

static int parse_rule_key(vg_rule_cfg_t *r, const rule_def_t *d, const char *name, const json_t *v,
                          const char *k, vg_jerr_t *err)
{
    if (strcmp(name, "enabled") == 0) {
        if (!json_is_boolean(v)) {
            vg_jerr_set(err, k, "expected true or false");
            return VG_EINVAL;
        }
        r->enabled = json_is_true(v);
        return 0;
    }
    if (strcmp(name, "severity") == 0) {
        if (vg_severity_parse(json_string_value(v), &r->severity) != 0) {
            vg_jerr_set(err, k, "expected info, warning or critical");
            return VG_EINVAL;
        }
        return 0;
    }
    if (strcmp(name, "schedule") == 0) return parse_schedule(v, k, &r->schedule, err);
    if (d->threshold_key && strcmp(name, d->threshold_key) == 0)
        return parse_number(v, k, d->min, d->max, &r->threshold_s, err);
    vg_jerr_set(err, k, "unknown key (expected enabled, severity, schedule%s%s)",
                d->threshold_key ? ", " : "", d->threshold_key ? d->threshold_key : "");
    return VG_EINVAL;
}

/* Calls fn for every member of the object obj, with its path "key.name" for errors. */
typedef int (*key_fn)(void *ctx, const char *name, const json_t *v, const char *k, vg_jerr_t *err);

static int each_key(const json_t *obj, const char *key, key_fn fn, void *ctx, vg_jerr_t *err)
{
    if (!json_is_object(obj)) {
        vg_jerr_set(err, key, "expected an object");
        return VG_EINVAL;
    }
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)obj, name, v)
    {
        char k[200];
        snprintf(k, sizeof(k), "%s.%s", key, name);
        if (fn(ctx, name, v, k, err) != 0) return VG_EINVAL;
    }
    return 0;
}

typedef struct {
    vg_rule_cfg_t *r;
    const rule_def_t *d;
} rule_ctx_t;

static int rule_key(void *ctx, const char *name, const json_t *v, const char *k, vg_jerr_t *err)
{
    rule_ctx_t *rc = ctx;
    return parse_rule_key(rc->r, rc->d, name, v, k, err);
}

static int parse_rule(const json_t *obj, const char *key, vg_event_type_t t, vg_rule_cfg_t *r,
                      vg_jerr_t *err)
{
    rule_ctx_t rc = {r, &rule_defs[t]};
    return each_key(obj, key, rule_key, &rc, err);
}

static int parse_key(void *ctx, const char *name, const json_t *v, const char *k, vg_jerr_t *err)
{
    vg_events_cfg_t *c = ctx;
    vg_event_type_t t;
    if (vg_event_type_parse(name, &t) == 0) return parse_rule(v, k, t, &c->rules[t], err);
    if (strcmp(name, "timezone") == 0) {
        if (parse_timezone(json_string_value(v), c) != 0) {
            vg_jerr_set(err, k, "expected \"local\", \"UTC\" or an offset such as \"+01:00\"");
            return VG_EINVAL;
        }
        return 0;
    }
    for (size_t i = 0; i < VG_ARRAY_LEN(num_defs); i++)
        if (strcmp(num_defs[i].name, name) == 0)
            return parse_number(v, k, num_defs[i].min, num_defs[i].max,
                                (double *)((char *)c + num_defs[i].off), err);
    vg_jerr_set(err, k,
                "unknown key (expected a rule such as fall or bed_exit, timezone, "
                "min_confidence, clear_s, update_s, lost_s, merge_s or move_eps)");
    return VG_EINVAL;
}

int vg_events_cfg_from_json(const json_t *obj, const char *key, vg_events_cfg_t *out,
                            vg_jerr_t *err)
{
    key = key ? key : "events";
    vg_events_cfg_t c;
    vg_events_cfg_default(&c);
    if (obj && !json_is_null(obj) && each_key(obj, key, parse_key, &c, err) != 0) return VG_EINVAL;
    *out = c;
    return 0;
}

/* ---- serialising --------------------------------------------------------------------------- */

static json_t *schedule_json(const vg_schedule_t *sc)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < sc->n; i++) {
        char w[48];
        int a = sc->w[i].start_min, b = sc->w[i].end_min;
        snprintf(w, sizeof(w), "%02d:%02d-%02d:%02d", a / 60, a % 60, b / 60, b % 60);
        json_array_append_new(arr, json_string(w));
    }
    return arr;
}

json_t *vg_events_cfg_to_json(const vg_events_cfg_t *cfg)
{
    json_t *j = json_pack("{s:s}", "timezone", cfg->timezone);
    for (size_t i = 0; i < VG_ARRAY_LEN(num_defs); i++)
        json_object_set_new(j, num_defs[i].name,
                            json_real(*(const double *)((const char *)cfg + num_defs[i].off)));
    for (int t = 0; t < VG_EV_NTYPES; t++) {
        const vg_rule_cfg_t *r = &cfg->rules[t];
        json_t *rj =
            json_pack("{s:b, s:s, s:o}", "enabled", r->enabled, "severity",
                      vg_severity_name(r->severity), "schedule", schedule_json(&r->schedule));
        if (rule_defs[t].threshold_key)
            json_object_set_new(rj, rule_defs[t].threshold_key, json_real(r->threshold_s));
        json_object_set_new(j, rule_defs[t].name, rj);
    }
    return j;
}
