/* metrics.h — the process-wide Prometheus registry: counter, gauge and histogram
 * families with label sets, and the text exposition format 0.0.4.
 *
 * Families are registered once (any thread; registering the same name again returns
 * the existing family). A series (one label set) is looked up or created under the
 * family's lock; callers cache the returned pointer, and updating it is lock-free
 * (C11 atomics), safe from any thread. A series pointer stays valid until the series
 * is removed with vg_metrics_remove_label(); remove only after every thread that
 * cached it has stopped using it (for a stream: after its threads are joined).
 *
 * Programming errors abort through VG_CHECK: a metric or label name outside the
 * Prometheus grammar, more than VG_METRICS_MAX_LABELS labels, re-registering a name
 * with another type, label list or bucket list, and an update that does not fit the
 * family's type (vg_series_set on a counter, vg_series_observe on a gauge, ...). */
#ifndef VIGIL_METRICS_H
#define VIGIL_METRICS_H

#include <stddef.h>

typedef struct vg_metric vg_metric_t; /* a family; owned by the registry, never freed */
typedef struct vg_series vg_series_t; /* one label set; owned by its family */

#define VG_METRICS_MAX_LABELS 8
#define VG_METRICS_MAX_HOOKS 8

/* `labels` is a comma-separated list of label names ("stream_id,worker") or NULL.
 * Names: metric [a-zA-Z_:][a-zA-Z0-9_:]*, label [a-zA-Z_][a-zA-Z0-9_]* not starting
 * with "__" ("le" is reserved in histograms). Strings are copied. Follow the naming
 * conventions (counters end in _total, base units) so `promtool check metrics` passes. */
vg_metric_t *vg_metric_counter(const char *name, const char *help, const char *labels);
vg_metric_t *vg_metric_gauge(const char *name, const char *help, const char *labels);
/* vigil_stream_cpu_seconds_total{stream_id,stage}: thread CPU time spent on a stream,
 * by stage ("capture", or "worker:<worker_id>" on the executors); the capacity
 * estimate (GET /api/v1/capacity) reads it. Get-or-create. */
vg_metric_t *vg_metrics_stream_cpu(void);
/* `bounds` are the upper bounds of the buckets, ascending, finite, without +Inf; copied.
 * A value equal to a bound counts in that bound's bucket (le = "less or equal"). */
vg_metric_t *vg_metric_histogram(const char *name, const char *help, const char *labels,
                                 const double *bounds, size_t n_bounds);

/* Get or create the series for the given label values, one const char * per label name
 * of the family, in order (none for a family without labels). Never NULL. Values are
 * copied; bytes that are not valid UTF-8 are replaced by U+FFFD so that one bad value
 * cannot break the whole exposition. Lookup is a linear scan: cache the pointer. */
vg_series_t *vg_metric_series(vg_metric_t *m, ...);

void vg_series_inc(vg_series_t *s); /* counter/gauge += 1 */
/* counter/gauge += v. Counters never go down: a negative or NaN v is ignored for them. */
void vg_series_add(vg_series_t *s, double v);
void vg_series_set(vg_series_t *s, double v); /* gauge = v */
/* counter = total, for a counter that mirrors a total sampled elsewhere (CPU seconds
 * from /proc, a library's packet count). A negative or NaN total is ignored. */
void vg_series_set_total(vg_series_t *s, double total);
void vg_series_observe(vg_series_t *s, double v); /* histogram */
double vg_series_value(const vg_series_t *s);     /* counter/gauge value; histogram count */

/* Removes, from every family, each series whose label `name` has the value `value`
 * (for example every series of a removed stream). Frees them. */
void vg_metrics_remove_label(const char *name, const char *value);

/* Registers a function run at the start of every vg_metrics_render() on the rendering
 * thread, to refresh sampled values (process CPU, RSS, open fds). At most
 * VG_METRICS_MAX_HOOKS hooks; adding the same fn and arg again is a no-op. Two renders
 * on two threads may run a hook concurrently. A hook may register families and create
 * series. */
void vg_metrics_add_collect_hook(void (*fn)(void *arg), void *arg);

/* Renders every family in Prometheus text format 0.0.4: families in registration
 * order, each with # HELP and # TYPE, series in creation order. Safe while other
 * threads update, create and remove series. Caller frees. */
char *vg_metrics_render(void);

/* Default latency buckets in seconds (0.001 .. 10). */
extern const double vg_metrics_latency_buckets[];
extern const size_t vg_metrics_latency_buckets_len;

/* Registers the standard process metrics (process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes, process_start_time_seconds,
 * process_open_fds, process_max_fds, process_threads) and vigil_build_info{version},
 * refreshed from vg_proc_sample() by a collect hook. Idempotent. */
void vg_metrics_register_process(void);

/* Samples this process from /proc: CPU seconds (user+system), resident and virtual
 * bytes, start time, open and maximum fds, threads. Returns 0 or VG_EIO (then `out` is
 * unchanged). Any thread. */
typedef struct {
    double cpu_seconds;
    double resident_bytes;
    double virtual_bytes;
    double start_time_seconds; /* epoch */
    int open_fds;
    int max_fds; /* RLIMIT_NOFILE soft limit; INT_MAX when unlimited */
    int threads;
} vg_proc_sample_t;
int vg_proc_sample(vg_proc_sample_t *out);

/* Tests only: frees every family and series and forgets the collect hooks, as if the
 * process had just started. No other thread may touch metrics meanwhile, and every
 * vg_metric_t / vg_series_t pointer obtained before is invalid afterwards. */
void vg_metrics_reset_for_tests(void);

#endif
