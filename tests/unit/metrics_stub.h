/* metrics_stub.h — THROWAWAY stand-in for src/metrics.c (being written in parallel) so
 * that unit tests of modules that update metrics link and can read values back.
 * Include it from exactly one test source. Every definition is weak: when the real
 * metrics.c is in vigilcore and gets linked in, its definitions win; delete this file
 * once it has landed and the tests use the real registry.
 *
 * A tiny registry: families by name, series by joined label values, values as doubles
 * under one mutex. No exposition. */
#ifndef VIGIL_TEST_METRICS_STUB_H
#define VIGIL_TEST_METRICS_STUB_H

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/common.h"
#include "vigil/metrics.h"

#define STUB_WEAK __attribute__((weak))

struct vg_series {
    char *labels; /* values joined with '\x1f' */
    double value;
    struct vg_series *next;
};

struct vg_metric {
    char *name;
    int n_labels;
    struct vg_series *series;
    struct vg_metric *next;
};

static pthread_mutex_t stub_mu = PTHREAD_MUTEX_INITIALIZER;
static struct vg_metric *stub_families;

static struct vg_metric *stub_family(const char *name, const char *labels)
{
    pthread_mutex_lock(&stub_mu);
    struct vg_metric *m = stub_families;
    while (m && strcmp(m->name, name) != 0)
        m = m->next;
    if (!m) {
        m = vg_xcalloc(1, sizeof(*m));
        m->name = vg_xstrdup(name);
        m->n_labels = labels && *labels ? 1 : 0;
        for (const char *p = labels; p && *p; p++)
            m->n_labels += *p == ',';
        m->next = stub_families;
        stub_families = m;
    }
    pthread_mutex_unlock(&stub_mu);
    return m;
}

STUB_WEAK vg_metric_t *vg_metric_counter(const char *name, const char *help, const char *labels)
{
    (void)help;
    return stub_family(name, labels);
}

STUB_WEAK vg_metric_t *vg_metric_gauge(const char *name, const char *help, const char *labels)
{
    (void)help;
    return stub_family(name, labels);
}

STUB_WEAK vg_metric_t *vg_metric_histogram(const char *name, const char *help, const char *labels,
                                           const double *bounds, size_t n_bounds)
{
    (void)help, (void)bounds, (void)n_bounds;
    return stub_family(name, labels);
}

static vg_series_t *stub_series_v(vg_metric_t *m, va_list ap)
{
    char key[512] = "";
    for (int i = 0; i < m->n_labels; i++) {
        strncat(key, va_arg(ap, const char *), sizeof(key) - strlen(key) - 2);
        strcat(key, "\x1f");
    }
    pthread_mutex_lock(&stub_mu);
    vg_series_t *s = m->series;
    while (s && strcmp(s->labels, key) != 0)
        s = s->next;
    if (!s) {
        s = vg_xcalloc(1, sizeof(*s));
        s->labels = vg_xstrdup(key);
        s->next = m->series;
        m->series = s;
    }
    pthread_mutex_unlock(&stub_mu);
    return s;
}

STUB_WEAK vg_series_t *vg_metric_series(vg_metric_t *m, ...)
{
    va_list ap;
    va_start(ap, m);
    vg_series_t *s = stub_series_v(m, ap);
    va_end(ap);
    return s;
}

STUB_WEAK void vg_series_add(vg_series_t *s, double v)
{
    pthread_mutex_lock(&stub_mu);
    s->value += v;
    pthread_mutex_unlock(&stub_mu);
}

STUB_WEAK void vg_series_inc(vg_series_t *s)
{
    vg_series_add(s, 1);
}

STUB_WEAK void vg_series_set(vg_series_t *s, double v)
{
    pthread_mutex_lock(&stub_mu);
    s->value = v;
    pthread_mutex_unlock(&stub_mu);
}

STUB_WEAK void vg_series_observe(vg_series_t *s, double v)
{
    (void)v;
    vg_series_add(s, 1); /* the stub keeps the count only */
}

STUB_WEAK double vg_series_value(const vg_series_t *s)
{
    pthread_mutex_lock(&stub_mu);
    double v = s->value;
    pthread_mutex_unlock(&stub_mu);
    return v;
}

STUB_WEAK void vg_metrics_remove_label(const char *name, const char *value)
{
    (void)name, (void)value;
}

STUB_WEAK void vg_metrics_add_collect_hook(void (*fn)(void *arg), void *arg)
{
    (void)fn, (void)arg;
}

STUB_WEAK char *vg_metrics_render(void)
{
    return vg_xstrdup("");
}

STUB_WEAK const double vg_metrics_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                       0.25,  0.5,    1,     2.5,  5,     10};
STUB_WEAK const size_t vg_metrics_latency_buckets_len = VG_ARRAY_LEN(vg_metrics_latency_buckets);

STUB_WEAK void vg_metrics_register_process(void) {}

STUB_WEAK int vg_proc_sample(vg_proc_sample_t *out)
{
    memset(out, 0, sizeof(*out));
    return VG_EIO;
}

#endif
