/* metrics_text.c — the Prometheus text exposition 0.0.4 of the registry (metrics.c):
 * the collect hooks, then every family and series written into one growing buffer.
 * Any thread; rendering takes reg.mu, then each family's mu in turn (the order
 * metrics.c keeps). vg_metrics_render() returns a string the caller frees. */
#include "metrics_internal.h"
#include "vigil/common.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

const char *const vg_metrics_kind_names[] = {"counter", "gauge", "histogram"};

_Atomic size_t vg_metrics_last_render_len;

/* ---- growing text buffer ---- */

void vg_metrics_buf_reserve(buf_t *b, size_t extra)
{
    if (b->len + extra < b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap <= b->len + extra)
        cap *= 2;
    b->p = vg_xrealloc(b->p, cap);
    b->cap = cap;
}

void vg_metrics_buf_put(buf_t *b, const char *s, size_t n)
{
    vg_metrics_buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void vg_metrics_buf_puts(buf_t *b, const char *s)
{
    vg_metrics_buf_put(b, s, strlen(s));
}

/* HELP text escapes backslash and newline; label values also the double quote. */
void vg_metrics_buf_escape(buf_t *b, const char *s, bool quote)
{
    for (;;) {
        size_t n = strcspn(s, quote ? "\\\n\"" : "\\\n");
        vg_metrics_buf_put(b, s, n);
        s += n;
        if (!*s) return;
        vg_metrics_buf_puts(b, *s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\");
        s++;
    }
}

/* Returns the buffer's text, "" when nothing was written. Caller frees. */
char *vg_metrics_buf_take(buf_t *b)
{
    vg_metrics_buf_reserve(b, 0);
    b->p[b->len] = '\0';
    return b->p;
}

/* ---- numbers, names, UTF-8 ---- */
/* Integers exactly, other values in the fewest digits that read back the same.
 * Assumes the C locale's decimal point (the daemon never calls setlocale). */
void vg_metrics_format_double(double v, char *out, size_t len)
{
    if (isnan(v)) {
        snprintf(out, len, "%s", "NaN");
    } else if (isinf(v)) {
        snprintf(out, len, "%s", v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) <= 9007199254740992.0) { /* 2^53 */
        snprintf(out, len, "%lld", (long long)v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, len, "%.*g", prec, v);
            if (strtod(out, NULL) == v) break;
        }
    }
}

/* ---- hooks and rendering ---- */

void vg_metrics_add_collect_hook(void (*fn)(void *arg), void *arg)
{
    VG_CHECK(fn != NULL);
    pthread_mutex_lock(&vg_metrics_reg.mu);
    size_t i = 0;
    while (i < vg_metrics_reg.n_hooks &&
           !(vg_metrics_reg.hooks[i].fn == fn && vg_metrics_reg.hooks[i].arg == arg))
        i++;
    if (i == vg_metrics_reg.n_hooks) {
        VG_CHECK(vg_metrics_reg.n_hooks < VG_METRICS_MAX_HOOKS);
        vg_metrics_reg.hooks[vg_metrics_reg.n_hooks++] = (hook_t){fn, arg};
    }
    pthread_mutex_unlock(&vg_metrics_reg.mu);
}

static void run_hooks(void)
{
    hook_t hooks[VG_METRICS_MAX_HOOKS];
    pthread_mutex_lock(&vg_metrics_reg.mu);
    size_t n = vg_metrics_reg.n_hooks;
    memcpy(hooks, vg_metrics_reg.hooks, n * sizeof(hooks[0]));
    pthread_mutex_unlock(&vg_metrics_reg.mu);
    for (size_t i = 0; i < n; i++) /* unlocked: hooks register families and series */
        hooks[i].fn(hooks[i].arg);
}

/* One line: name+suffix{labels[,le="..."]} value */
static void put_sample(buf_t *b, const vg_metric_t *m, const char *suffix, const vg_series_t *s,
                       const char *le, const char *value)
{
    vg_metrics_buf_puts(b, m->name);
    vg_metrics_buf_puts(b, suffix);
    if (s->labels[0] || le) {
        vg_metrics_buf_puts(b, "{");
        vg_metrics_buf_puts(b, s->labels);
        if (le) {
            vg_metrics_buf_puts(b, s->labels[0] ? ",le=\"" : "le=\"");
            vg_metrics_buf_puts(b, le);
            vg_metrics_buf_puts(b, "\"");
        }
        vg_metrics_buf_puts(b, "}");
    }
    vg_metrics_buf_puts(b, " ");
    vg_metrics_buf_puts(b, value);
    vg_metrics_buf_puts(b, "\n");
}

/* _count is the cumulative bucket total read here, so it always equals +Inf even
 * while observations land; _sum may be a few observations ahead or behind. */
static void put_histogram(buf_t *b, const vg_metric_t *m, vg_series_t *s)
{
    char num[40];
    uint64_t total = 0;
    for (size_t i = 0; i <= m->n_bounds; i++) {
        total += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        snprintf(num, sizeof(num), "%" PRIu64, total);
        put_sample(b, m, "_bucket", s, i < m->n_bounds ? m->le[i] : "+Inf", num);
    }
    vg_metrics_format_double(vg_metrics_bitsd(atomic_load_explicit(&s->bits, memory_order_relaxed)),
                             num, sizeof(num));
    put_sample(b, m, "_sum", s, NULL, num);
    snprintf(num, sizeof(num), "%" PRIu64, total);
    put_sample(b, m, "_count", s, NULL, num);
}

static void put_family_locked(buf_t *b, vg_metric_t *m)
{
    ASSERT_LOCKED(&m->mu);
    vg_metrics_buf_puts(b, "# HELP ");
    vg_metrics_buf_puts(b, m->name);
    vg_metrics_buf_puts(b, " ");
    vg_metrics_buf_puts(b, m->help);
    vg_metrics_buf_puts(b, "\n# TYPE ");
    vg_metrics_buf_puts(b, m->name);
    vg_metrics_buf_puts(b, " ");
    vg_metrics_buf_puts(b, vg_metrics_kind_names[m->kind]);
    vg_metrics_buf_puts(b, "\n");
    for (size_t i = 0; i < m->n_series; i++) {
        vg_series_t *s = m->series[i];
        if (m->kind == KIND_HISTOGRAM) {
            put_histogram(b, m, s);
        } else {
            char num[40];
            vg_metrics_format_double(
                vg_metrics_bitsd(atomic_load_explicit(&s->bits, memory_order_relaxed)), num,
                sizeof(num));
            put_sample(b, m, "", s, NULL, num);
        }
    }
}

char *vg_metrics_render(void)
{
    run_hooks();
    buf_t b = {0};
    vg_metrics_buf_reserve(&b, atomic_load(&vg_metrics_last_render_len) + 4096);
    pthread_mutex_lock(&vg_metrics_reg.mu);
    for (size_t i = 0; i < vg_metrics_reg.n_families; i++) {
        vg_metric_t *m = vg_metrics_reg.families[i];
        pthread_mutex_lock(&m->mu);
        put_family_locked(&b, m);
        pthread_mutex_unlock(&m->mu);
    }
    pthread_mutex_unlock(&vg_metrics_reg.mu);
    atomic_store(&vg_metrics_last_render_len, b.len);
    return vg_metrics_buf_take(&b);
}
