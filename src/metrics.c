/* metrics.c — the process-wide Prometheus registry (its text exposition is metrics_text.c).
 *
 * Any thread registers families, creates series, updates them and renders. Locking:
 * reg.mu guards the family list and the collect hooks; each family's mu guards its
 * series array. The order is always reg.mu, then one family's mu. Updates take no
 * lock: a counter or gauge value, and a histogram's sum, is a double kept as its
 * IEEE-754 bit pattern in an atomic uint64 (compare-and-swap loop to add); histogram
 * bucket counts and the observation count are atomic integers.
 *
 * The registry owns families (never freed, except by the test reset) and each family
 * owns its series until vg_metrics_remove_label() frees them. A series keeps its
 * label pairs pre-escaped, so rendering is mostly memcpy into one growing buffer. */
#include "metrics_internal.h"
#include "vigil/metrics.h"
#include "vigil/common.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

vg_metrics_reg_t vg_metrics_reg = {.mu = PTHREAD_MUTEX_INITIALIZER};

const double vg_metrics_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10};
const size_t vg_metrics_latency_buckets_len = VG_ARRAY_LEN(vg_metrics_latency_buckets);

/* ---- numbers, names, UTF-8 ---- */

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old,
                                                  vg_metrics_dbits(vg_metrics_bitsd(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static bool valid_name(const char *s, bool allow_colon)
{
    if (!s || !*s) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (allow_colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

/* Length of the well-formed UTF-8 sequence at p, or 0 if there is none. */
static size_t utf8_seq_len(const unsigned char *p)
{
    size_t n;
    uint32_t cp;
    if (p[0] < 0x80) return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
        cp = p[0] & 0x1fu;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = p[0] & 0x0fu;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return 0;
    if (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) return 0;
    return n;
}

/* Returns NULL if s is valid UTF-8, else a copy with U+FFFD for each bad byte.
 * Caller frees. */
static char *utf8_fix(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p && utf8_seq_len(p))
        p += utf8_seq_len(p);
    if (!*p) return NULL;
    buf_t b = {0};
    vg_metrics_buf_put(&b, s, (size_t)((const char *)p - s));
    while (*p) {
        size_t n = utf8_seq_len(p);
        if (n)
            vg_metrics_buf_put(&b, (const char *)p, n);
        else
            vg_metrics_buf_puts(&b, "\xef\xbf\xbd");
        p += n ? n : 1;
    }
    return vg_metrics_buf_take(&b);
}

static uint64_t hash_values(const char *const *vals, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        for (const unsigned char *p = (const unsigned char *)vals[i];; p++) {
            h = (h ^ *p) * 1099511628211ull;
            if (!*p) break;
        }
    return h;
}

/* ---- families ---- */

/* Splits "a,b" into names[] (copies, caller frees); aborts on a malformed list. */
static size_t parse_label_names(const char *labels, kind_t kind, char **names)
{
    size_t n = 0;
    if (!labels || !*labels) return 0;
    for (const char *p = labels;; p++) {
        size_t len = strcspn(p, ",");
        const char *end = p + len;
        while (*p == ' ')
            p++;
        size_t trimmed = (size_t)(end - p);
        while (trimmed > 0 && p[trimmed - 1] == ' ')
            trimmed--;
        VG_CHECK(n < VG_METRICS_MAX_LABELS);
        names[n] = vg_xmalloc(trimmed + 1);
        memcpy(names[n], p, trimmed);
        names[n][trimmed] = '\0';
        VG_CHECK(valid_name(names[n], false) && strncmp(names[n], "__", 2) != 0);
        VG_CHECK(kind != KIND_HISTOGRAM || strcmp(names[n], "le") != 0);
        for (size_t j = 0; j < n; j++)
            VG_CHECK(strcmp(names[j], names[n]) != 0);
        n++;
        if (!*end) return n;
        p = end;
    }
}

static bool same_shape(const vg_metric_t *m, kind_t kind, char *const *names, size_t n_labels,
                       const double *bounds, size_t n_bounds)
{
    if (m->kind != kind || m->n_labels != n_labels || m->n_bounds != n_bounds) return false;
    for (size_t i = 0; i < n_labels; i++)
        if (strcmp(m->label_names[i], names[i]) != 0) return false;
    for (size_t i = 0; i < n_bounds; i++)
        if (m->bounds[i] != bounds[i]) return false;
    return true;
}

/* Takes ownership of names[0 .. n_labels). */
static vg_metric_t *family_new(kind_t kind, const char *name, const char *help, char **names,
                               size_t n_labels, const double *bounds, size_t n_bounds)
{
    vg_metric_t *m = vg_xcalloc(1, sizeof(*m));
    m->name = vg_xstrdup(name);
    buf_t b = {0};
    vg_metrics_buf_escape(&b, help ? help : "", false);
    m->help = vg_metrics_buf_take(&b);
    m->kind = kind;
    m->n_labels = n_labels;
    memcpy(m->label_names, names, n_labels * sizeof(names[0]));
    m->n_bounds = n_bounds;
    if (n_bounds) {
        m->bounds = vg_xmalloc(n_bounds * sizeof(double));
        memcpy(m->bounds, bounds, n_bounds * sizeof(double));
        m->le = vg_xcalloc(n_bounds, sizeof(char *));
        for (size_t i = 0; i < n_bounds; i++) {
            char num[40];
            vg_metrics_format_double(bounds[i], num, sizeof(num));
            m->le[i] = vg_xstrdup(num);
        }
    }
    VG_CHECK(pthread_mutex_init(&m->mu, NULL) == 0);
    return m;
}

static void series_free(vg_series_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->family->n_labels; i++)
        free(s->values[i]);
    free(s->values);
    free(s->labels);
    free(s);
}

static void family_free(vg_metric_t *m)
{
    for (size_t i = 0; i < m->n_series; i++)
        series_free(m->series[i]);
    free(m->series);
    for (size_t i = 0; i < m->n_labels; i++)
        free(m->label_names[i]);
    for (size_t i = 0; i < m->n_bounds; i++)
        free(m->le[i]);
    free(m->le);
    free(m->bounds);
    pthread_mutex_destroy(&m->mu);
    free(m->name);
    free(m->help);
    free(m);
}

static vg_metric_t *find_family_locked(const char *name)
{
    ASSERT_LOCKED(&vg_metrics_reg.mu);
    for (size_t i = 0; i < vg_metrics_reg.n_families; i++)
        if (strcmp(vg_metrics_reg.families[i]->name, name) == 0) return vg_metrics_reg.families[i];
    return NULL;
}

static vg_metric_t *family_register(kind_t kind, const char *name, const char *help,
                                    const char *labels, const double *bounds, size_t n_bounds)
{
    VG_CHECK(valid_name(name, true));
    VG_CHECK(n_bounds == 0 || bounds != NULL);
    for (size_t i = 0; i < n_bounds; i++)
        VG_CHECK(isfinite(bounds[i]) && (i == 0 || bounds[i] > bounds[i - 1]));
    char *names[VG_METRICS_MAX_LABELS];
    size_t n_labels = parse_label_names(labels, kind, names);

    pthread_mutex_lock(&vg_metrics_reg.mu);
    vg_metric_t *m = find_family_locked(name);
    if (m) {
        VG_CHECK(same_shape(m, kind, names, n_labels, bounds, n_bounds));
        for (size_t i = 0; i < n_labels; i++)
            free(names[i]);
    } else {
        m = family_new(kind, name, help, names, n_labels, bounds, n_bounds);
        vg_metrics_reg_t *r = &vg_metrics_reg;
        if (r->n_families == r->cap_families) {
            r->cap_families = r->cap_families ? 2 * r->cap_families : 32;
            r->families = vg_xrealloc(r->families, r->cap_families * sizeof(m));
        }
        vg_metrics_reg.families[vg_metrics_reg.n_families++] = m;
    }
    pthread_mutex_unlock(&vg_metrics_reg.mu);
    return m;
}

vg_metric_t *vg_metric_counter(const char *name, const char *help, const char *labels)
{
    return family_register(KIND_COUNTER, name, help, labels, NULL, 0);
}

vg_metric_t *vg_metrics_stream_cpu(void)
{
    return vg_metric_counter("vigil_stream_cpu_seconds_total",
                             "Thread CPU time spent on a stream, by stage (capture, worker:ID)",
                             "stream_id,stage");
}

vg_metric_t *vg_metric_gauge(const char *name, const char *help, const char *labels)
{
    return family_register(KIND_GAUGE, name, help, labels, NULL, 0);
}

vg_metric_t *vg_metric_histogram(const char *name, const char *help, const char *labels,
                                 const double *bounds, size_t n_bounds)
{
    return family_register(KIND_HISTOGRAM, name, help, labels, bounds, n_bounds);
}

/* ---- series ---- */

static vg_series_t *series_new(vg_metric_t *m, uint64_t hash, const char *const *vals)
{
    size_t n_buckets = m->kind == KIND_HISTOGRAM ? m->n_bounds + 1 : 0;
    vg_series_t *s = vg_xcalloc(1, sizeof(*s) + n_buckets * sizeof(s->buckets[0]));
    s->family = m;
    s->hash = hash;
    s->values = vg_xcalloc(m->n_labels, sizeof(char *));
    buf_t b = {0};
    for (size_t i = 0; i < m->n_labels; i++) {
        s->values[i] = vg_xstrdup(vals[i]);
        if (i) vg_metrics_buf_puts(&b, ",");
        vg_metrics_buf_puts(&b, m->label_names[i]);
        vg_metrics_buf_puts(&b, "=\"");
        vg_metrics_buf_escape(&b, vals[i], true);
        vg_metrics_buf_puts(&b, "\"");
    }
    s->labels = vg_metrics_buf_take(&b);
    atomic_init(&s->bits, vg_metrics_dbits(0.0));
    atomic_init(&s->count, 0);
    for (size_t i = 0; i < n_buckets; i++)
        atomic_init(&s->buckets[i], 0);
    return s;
}

static vg_series_t *find_series_locked(vg_metric_t *m, uint64_t hash, const char *const *vals)
{
    ASSERT_LOCKED(&m->mu);
    for (size_t i = 0; i < m->n_series; i++) {
        vg_series_t *s = m->series[i];
        if (s->hash != hash) continue;
        size_t j = 0;
        while (j < m->n_labels && strcmp(s->values[j], vals[j]) == 0)
            j++;
        if (j == m->n_labels) return s;
    }
    return NULL;
}

vg_series_t *vg_metric_series(vg_metric_t *m, ...)
{
    VG_CHECK(m != NULL);
    const char *vals[VG_METRICS_MAX_LABELS];
    char *fixed[VG_METRICS_MAX_LABELS] = {0};
    va_list ap;
    va_start(ap, m);
    for (size_t i = 0; i < m->n_labels; i++) {
        vals[i] = va_arg(ap, const char *);
        VG_CHECK(vals[i] != NULL);
        fixed[i] = utf8_fix(vals[i]);
        if (fixed[i]) vals[i] = fixed[i];
    }
    va_end(ap);
    uint64_t hash = hash_values(vals, m->n_labels);

    pthread_mutex_lock(&m->mu);
    vg_series_t *s = find_series_locked(m, hash, vals);
    if (!s) {
        s = series_new(m, hash, vals);
        if (m->n_series == m->cap_series) {
            m->cap_series = m->cap_series ? 2 * m->cap_series : 8;
            m->series = vg_xrealloc(m->series, m->cap_series * sizeof(s));
        }
        m->series[m->n_series++] = s;
    }
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < m->n_labels; i++)
        free(fixed[i]);
    return s;
}

void vg_series_inc(vg_series_t *s)
{
    vg_series_add(s, 1.0);
}

void vg_series_add(vg_series_t *s, double v)
{
    VG_CHECK(s->family->kind != KIND_HISTOGRAM);
    if (s->family->kind == KIND_COUNTER && !(v >= 0)) return; /* counters never go down */
    atomic_add_double(&s->bits, v);
}

void vg_series_set(vg_series_t *s, double v)
{
    VG_CHECK(s->family->kind == KIND_GAUGE);
    atomic_store_explicit(&s->bits, vg_metrics_dbits(v), memory_order_relaxed);
}

void vg_series_set_total(vg_series_t *s, double total)
{
    VG_CHECK(s->family->kind == KIND_COUNTER);
    if (total >= 0) atomic_store_explicit(&s->bits, vg_metrics_dbits(total), memory_order_relaxed);
}

void vg_series_observe(vg_series_t *s, double v)
{
    const vg_metric_t *m = s->family;
    VG_CHECK(m->kind == KIND_HISTOGRAM);
    size_t i = 0;
    while (i < m->n_bounds && !(v <= m->bounds[i]))
        i++; /* NaN lands in +Inf only, like any value above every bound */
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    atomic_add_double(&s->bits, v);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

double vg_series_value(const vg_series_t *s)
{
    vg_series_t *w = (vg_series_t *)s; /* atomic loads want a non-const object in C11 */
    if (s->family->kind == KIND_HISTOGRAM)
        return (double)atomic_load_explicit(&w->count, memory_order_relaxed);
    return vg_metrics_bitsd(atomic_load_explicit(&w->bits, memory_order_relaxed));
}

/* ---- removal ---- */

static void remove_matching_locked(vg_metric_t *m, size_t label, const char *value)
{
    ASSERT_LOCKED(&m->mu);
    size_t keep = 0;
    for (size_t i = 0; i < m->n_series; i++) {
        vg_series_t *s = m->series[i];
        if (strcmp(s->values[label], value) == 0)
            series_free(s);
        else
            m->series[keep++] = s;
    }
    m->n_series = keep;
}

void vg_metrics_remove_label(const char *name, const char *value)
{
    VG_CHECK(name != NULL && value != NULL);
    char *fixed = utf8_fix(value); /* series store fixed values: match them */
    pthread_mutex_lock(&vg_metrics_reg.mu);
    for (size_t f = 0; f < vg_metrics_reg.n_families; f++) {
        vg_metric_t *m = vg_metrics_reg.families[f];
        for (size_t l = 0; l < m->n_labels; l++) {
            if (strcmp(m->label_names[l], name) != 0) continue;
            pthread_mutex_lock(&m->mu);
            remove_matching_locked(m, l, fixed ? fixed : value);
            pthread_mutex_unlock(&m->mu);
        }
    }
    pthread_mutex_unlock(&vg_metrics_reg.mu);
    free(fixed);
}

void vg_metrics_reset_for_tests(void)
{
    pthread_mutex_lock(&vg_metrics_reg.mu);
    for (size_t i = 0; i < vg_metrics_reg.n_families; i++)
        family_free(vg_metrics_reg.families[i]);
    free(vg_metrics_reg.families);
    vg_metrics_reg.families = NULL;
    vg_metrics_reg.n_families = vg_metrics_reg.cap_families = 0;
    vg_metrics_reg.n_hooks = 0;
    pthread_mutex_unlock(&vg_metrics_reg.mu);
    atomic_store(&vg_metrics_last_render_len, 0);
}
