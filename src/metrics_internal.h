/* metrics_internal.h — the Prometheus registry's insides, shared by metrics.c (the
 * registry: families, series, updates) and metrics_text.c (the growing text buffer and
 * the exposition). Any thread; the locking rules are metrics.c's (reg.mu, then one
 * family's mu). */
#ifndef VIGIL_METRICS_INTERNAL_H
#define VIGIL_METRICS_INTERNAL_H

#include "vigil/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

extern const char *const vg_metrics_kind_names[]; /* metrics_text.c, by kind_t */

struct vg_series {
    vg_metric_t *family;
    uint64_t hash;              /* of the label values, to skip most string compares */
    char **values;              /* one per label name, valid UTF-8 */
    char *labels;               /* `a="x",b="y"` escaped; "" without labels */
    _Atomic uint64_t bits;      /* counter/gauge value or histogram sum, as double bits */
    _Atomic uint64_t count;     /* histogram: observations */
    _Atomic uint64_t buckets[]; /* histogram: n_bounds + 1, the last above every bound */
};

struct vg_metric {
    char *name;
    char *help; /* escaped for the HELP line */
    kind_t kind;
    size_t n_labels;
    char *label_names[VG_METRICS_MAX_LABELS];
    size_t n_bounds;
    double *bounds;
    char **le;          /* bounds formatted for the le label */
    pthread_mutex_t mu; /* guards series, n_series, cap_series */
    vg_series_t **series;
    size_t n_series, cap_series;
};

typedef struct {
    void (*fn)(void *arg);
    void *arg;
} hook_t;

typedef struct {
    pthread_mutex_t mu;
    vg_metric_t **families;
    size_t n_families, cap_families;
    hook_t hooks[VG_METRICS_MAX_HOOKS];
    size_t n_hooks;
} vg_metrics_reg_t;

extern vg_metrics_reg_t vg_metrics_reg;           /* metrics.c */
extern _Atomic size_t vg_metrics_last_render_len; /* metrics_text.c: sizes the next render */

/* A pthread mutex cannot tell who holds it; "someone does" catches the usual slip. */
#define ASSERT_LOCKED(mu) VG_CHECK(pthread_mutex_trylock(mu) == EBUSY)

static inline uint64_t vg_metrics_dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static inline double vg_metrics_bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

/* metrics_text.c: a growing text buffer */
typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

void vg_metrics_buf_reserve(buf_t *b, size_t extra);
void vg_metrics_buf_put(buf_t *b, const char *s, size_t n);
void vg_metrics_buf_puts(buf_t *b, const char *s);
/* HELP text escapes backslash and newline; label values (quote) also the double quote. */
void vg_metrics_buf_escape(buf_t *b, const char *s, bool quote);
char *vg_metrics_buf_take(buf_t *b); /* the text, "" when empty; caller frees */
/* Integers exactly, other values in the fewest digits that read back the same. */
void vg_metrics_format_double(double v, char *out, size_t len);

#endif
