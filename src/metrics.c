/* metrics.c — the process-wide Prometheus registry and its text exposition 0.0.4.
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

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

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

static struct {
    pthread_mutex_t mu;
    vg_metric_t **families;
    size_t n_families, cap_families;
    hook_t hooks[VG_METRICS_MAX_HOOKS];
    size_t n_hooks;
} reg = {.mu = PTHREAD_MUTEX_INITIALIZER};

static _Atomic size_t last_render_len; /* sizes the next render's buffer */

const double vg_metrics_latency_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                             0.25,  0.5,    1,     2.5,  5,     10};
const size_t vg_metrics_latency_buckets_len = VG_ARRAY_LEN(vg_metrics_latency_buckets);

/* A pthread mutex cannot tell who holds it; "someone does" catches the usual slip. */
#define ASSERT_LOCKED(mu) VG_CHECK(pthread_mutex_trylock(mu) == EBUSY)

/* ---- growing text buffer ---- */

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t extra)
{
    if (b->len + extra < b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap <= b->len + extra)
        cap *= 2;
    b->p = vg_xrealloc(b->p, cap);
    b->cap = cap;
}

static void buf_put(buf_t *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_puts(buf_t *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* HELP text escapes backslash and newline; label values also the double quote. */
static void buf_escape(buf_t *b, const char *s, bool quote)
{
    for (;;) {
        size_t n = strcspn(s, quote ? "\\\n\"" : "\\\n");
        buf_put(b, s, n);
        s += n;
        if (!*s)
            return;
        buf_puts(b, *s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\");
        s++;
    }
}

/* Returns the buffer's text, "" when nothing was written. Caller frees. */
static char *buf_take(buf_t *b)
{
    buf_reserve(b, 0);
    b->p[b->len] = '\0';
    return b->p;
}

/* ---- numbers, names, UTF-8 ---- */

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof(d));
    return d;
}

static void atomic_add_double(_Atomic uint64_t *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, dbits(bitsd(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

/* Integers exactly, other values in the fewest digits that read back the same.
 * Assumes the C locale's decimal point (the daemon never calls setlocale). */
static void format_double(double v, char *out, size_t len)
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
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

static bool valid_name(const char *s, bool allow_colon)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (allow_colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* Length of the well-formed UTF-8 sequence at p, or 0 if there is none. */
static size_t utf8_seq_len(const unsigned char *p)
{
    size_t n;
    uint32_t cp;
    if (p[0] < 0x80)
        return 1;
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
    if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        return 0;
    if (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
        return 0;
    return n;
}

/* Returns NULL if s is valid UTF-8, else a copy with U+FFFD for each bad byte.
 * Caller frees. */
static char *utf8_fix(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p && utf8_seq_len(p))
        p += utf8_seq_len(p);
    if (!*p)
        return NULL;
    buf_t b = {0};
    buf_put(&b, s, (size_t)((const char *)p - s));
    while (*p) {
        size_t n = utf8_seq_len(p);
        if (n)
            buf_put(&b, (const char *)p, n);
        else
            buf_puts(&b, "\xef\xbf\xbd");
        p += n ? n : 1;
    }
    return buf_take(&b);
}

static uint64_t hash_values(const char *const *vals, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        for (const unsigned char *p = (const unsigned char *)vals[i];; p++) {
            h = (h ^ *p) * 1099511628211ull;
            if (!*p)
                break;
        }
    return h;
}

/* ---- families ---- */

/* Splits "a,b" into names[] (copies, caller frees); aborts on a malformed list. */
static size_t parse_label_names(const char *labels, kind_t kind, char **names)
{
    size_t n = 0;
    if (!labels || !*labels)
        return 0;
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
        if (!*end)
            return n;
        p = end;
    }
}

static bool same_shape(const vg_metric_t *m, kind_t kind, char *const *names, size_t n_labels,
                      const double *bounds, size_t n_bounds)
{
    if (m->kind != kind || m->n_labels != n_labels || m->n_bounds != n_bounds)
        return false;
    for (size_t i = 0; i < n_labels; i++)
        if (strcmp(m->label_names[i], names[i]) != 0)
            return false;
    for (size_t i = 0; i < n_bounds; i++)
        if (m->bounds[i] != bounds[i])
            return false;
    return true;
}

/* Takes ownership of names[0 .. n_labels). */
static vg_metric_t *family_new(kind_t kind, const char *name, const char *help, char **names,
                               size_t n_labels, const double *bounds, size_t n_bounds)
{
    vg_metric_t *m = vg_xcalloc(1, sizeof(*m));
    m->name = vg_xstrdup(name);
    buf_t b = {0};
    buf_escape(&b, help ? help : "", false);
    m->help = buf_take(&b);
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
            format_double(bounds[i], num, sizeof(num));
            m->le[i] = vg_xstrdup(num);
        }
    }
    VG_CHECK(pthread_mutex_init(&m->mu, NULL) == 0);
    return m;
}

static void series_free(vg_series_t *s)
{
    if (!s)
        return;
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
    ASSERT_LOCKED(&reg.mu);
    for (size_t i = 0; i < reg.n_families; i++)
        if (strcmp(reg.families[i]->name, name) == 0)
            return reg.families[i];
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

    pthread_mutex_lock(&reg.mu);
    vg_metric_t *m = find_family_locked(name);
    if (m) {
        VG_CHECK(same_shape(m, kind, names, n_labels, bounds, n_bounds));
        for (size_t i = 0; i < n_labels; i++)
            free(names[i]);
    } else {
        m = family_new(kind, name, help, names, n_labels, bounds, n_bounds);
        if (reg.n_families == reg.cap_families) {
            reg.cap_families = reg.cap_families ? 2 * reg.cap_families : 32;
            reg.families = vg_xrealloc(reg.families, reg.cap_families * sizeof(m));
        }
        reg.families[reg.n_families++] = m;
    }
    pthread_mutex_unlock(&reg.mu);
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
        if (i)
            buf_puts(&b, ",");
        buf_puts(&b, m->label_names[i]);
        buf_puts(&b, "=\"");
        buf_escape(&b, vals[i], true);
        buf_puts(&b, "\"");
    }
    s->labels = buf_take(&b);
    atomic_init(&s->bits, dbits(0.0));
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
        if (s->hash != hash)
            continue;
        size_t j = 0;
        while (j < m->n_labels && strcmp(s->values[j], vals[j]) == 0)
            j++;
        if (j == m->n_labels)
            return s;
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
        if (fixed[i])
            vals[i] = fixed[i];
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
    if (s->family->kind == KIND_COUNTER && !(v >= 0))
        return; /* counters never go down */
    atomic_add_double(&s->bits, v);
}

void vg_series_set(vg_series_t *s, double v)
{
    VG_CHECK(s->family->kind == KIND_GAUGE);
    atomic_store_explicit(&s->bits, dbits(v), memory_order_relaxed);
}

void vg_series_set_total(vg_series_t *s, double total)
{
    VG_CHECK(s->family->kind == KIND_COUNTER);
    if (total >= 0)
        atomic_store_explicit(&s->bits, dbits(total), memory_order_relaxed);
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
    return bitsd(atomic_load_explicit(&w->bits, memory_order_relaxed));
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
    pthread_mutex_lock(&reg.mu);
    for (size_t f = 0; f < reg.n_families; f++) {
        vg_metric_t *m = reg.families[f];
        for (size_t l = 0; l < m->n_labels; l++) {
            if (strcmp(m->label_names[l], name) != 0)
                continue;
            pthread_mutex_lock(&m->mu);
            remove_matching_locked(m, l, fixed ? fixed : value);
            pthread_mutex_unlock(&m->mu);
        }
    }
    pthread_mutex_unlock(&reg.mu);
    free(fixed);
}

/* ---- hooks and rendering ---- */

void vg_metrics_add_collect_hook(void (*fn)(void *arg), void *arg)
{
    VG_CHECK(fn != NULL);
    pthread_mutex_lock(&reg.mu);
    size_t i = 0;
    while (i < reg.n_hooks && !(reg.hooks[i].fn == fn && reg.hooks[i].arg == arg))
        i++;
    if (i == reg.n_hooks) {
        VG_CHECK(reg.n_hooks < VG_METRICS_MAX_HOOKS);
        reg.hooks[reg.n_hooks++] = (hook_t){fn, arg};
    }
    pthread_mutex_unlock(&reg.mu);
}

static void run_hooks(void)
{
    hook_t hooks[VG_METRICS_MAX_HOOKS];
    pthread_mutex_lock(&reg.mu);
    size_t n = reg.n_hooks;
    memcpy(hooks, reg.hooks, n * sizeof(hooks[0]));
    pthread_mutex_unlock(&reg.mu);
    for (size_t i = 0; i < n; i++) /* unlocked: hooks register families and series */
        hooks[i].fn(hooks[i].arg);
}

/* One line: name+suffix{labels[,le="..."]} value */
static void put_sample(buf_t *b, const vg_metric_t *m, const char *suffix,
                       const vg_series_t *s, const char *le, const char *value)
{
    buf_puts(b, m->name);
    buf_puts(b, suffix);
    if (s->labels[0] || le) {
        buf_puts(b, "{");
        buf_puts(b, s->labels);
        if (le) {
            buf_puts(b, s->labels[0] ? ",le=\"" : "le=\"");
            buf_puts(b, le);
            buf_puts(b, "\"");
        }
        buf_puts(b, "}");
    }
    buf_puts(b, " ");
    buf_puts(b, value);
    buf_puts(b, "\n");
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
    format_double(bitsd(atomic_load_explicit(&s->bits, memory_order_relaxed)), num,
                  sizeof(num));
    put_sample(b, m, "_sum", s, NULL, num);
    snprintf(num, sizeof(num), "%" PRIu64, total);
    put_sample(b, m, "_count", s, NULL, num);
}

static void put_family_locked(buf_t *b, vg_metric_t *m)
{
    ASSERT_LOCKED(&m->mu);
    buf_puts(b, "# HELP ");
    buf_puts(b, m->name);
    buf_puts(b, " ");
    buf_puts(b, m->help);
    buf_puts(b, "\n# TYPE ");
    buf_puts(b, m->name);
    buf_puts(b, " ");
    buf_puts(b, kind_names[m->kind]);
    buf_puts(b, "\n");
    for (size_t i = 0; i < m->n_series; i++) {
        vg_series_t *s = m->series[i];
        if (m->kind == KIND_HISTOGRAM) {
            put_histogram(b, m, s);
        } else {
            char num[40];
            format_double(bitsd(atomic_load_explicit(&s->bits, memory_order_relaxed)), num,
                          sizeof(num));
            put_sample(b, m, "", s, NULL, num);
        }
    }
}

char *vg_metrics_render(void)
{
    run_hooks();
    buf_t b = {0};
    buf_reserve(&b, atomic_load(&last_render_len) + 4096);
    pthread_mutex_lock(&reg.mu);
    for (size_t i = 0; i < reg.n_families; i++) {
        vg_metric_t *m = reg.families[i];
        pthread_mutex_lock(&m->mu);
        put_family_locked(&b, m);
        pthread_mutex_unlock(&m->mu);
    }
    pthread_mutex_unlock(&reg.mu);
    atomic_store(&last_render_len, b.len);
    return buf_take(&b);
}

void vg_metrics_reset_for_tests(void)
{
    pthread_mutex_lock(&reg.mu);
    for (size_t i = 0; i < reg.n_families; i++)
        family_free(reg.families[i]);
    free(reg.families);
    reg.families = NULL;
    reg.n_families = reg.cap_families = 0;
    reg.n_hooks = 0;
    pthread_mutex_unlock(&reg.mu);
    atomic_store(&last_render_len, 0);
}
