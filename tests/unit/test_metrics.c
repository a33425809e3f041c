/* Unit tests for metrics.c and procstat.c: exact exposition text, number formatting,
 * registration rules, exact totals under contention, rendering while series come and
 * go, label removal, collect hooks, process metrics, and promtool's verdict. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vigil/common.h"
#include "vigil/metrics.h"

#include "require.h"

static int reset(void **state)
{
    (void)state;
    vg_metrics_reset_for_tests();
    return 0;
}

/* Value of the sample line that starts with `prefix` (name and labels), or NAN. */
static double sample_value(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        if (strncmp(line, prefix, n) == 0 && line[n] == ' ') return strtod(line + n + 1, NULL);
        if (!strchr(line, '\n')) break;
    }
    return NAN;
}

static size_t count_lines_with_prefix(const char *text, const char *prefix)
{
    size_t count = 0, n = strlen(prefix);
    for (const char *line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n') line++;
        if (strncmp(line, prefix, n) == 0) count++;
    }
    return count;
}

static void test_exposition_exact(void **state)
{
    (void)state;
    vg_metric_t *frames =
        vg_metric_counter("vigil_test_frames_total", "Frames seen, by stream.", "stream_id, kind");
    vg_metric_t *temp =
        vg_metric_gauge("vigil_test_temperature_celsius", "Line one\\two\nthree", NULL);
    const double bounds[] = {0.1, 0.5, 1};
    vg_metric_t *lat =
        vg_metric_histogram("vigil_test_latency_seconds", "Latency.", "stream_id", bounds, 3);
    const double size_bounds[] = {1024};
    vg_metric_t *size =
        vg_metric_histogram("vigil_test_size_bytes", "Sizes.", NULL, size_bounds, 1);
    vg_metric_gauge("vigil_test_empty_bytes", "Nothing yet.", "stream_id");

    vg_series_t *cam1 = vg_metric_series(frames, "cam1", "video");
    vg_series_add(cam1, 3);
    vg_series_inc(vg_metric_series(frames, "a\"b\\c\nd", "x"));
    assert_ptr_equal(vg_metric_series(frames, "cam1", "video"), cam1);
    vg_series_set(vg_metric_series(temp), 21.5);
    vg_series_t *l = vg_metric_series(lat, "cam1");
    vg_series_observe(l, 0.0625);
    vg_series_observe(l, 0.25);
    vg_series_observe(l, 0.5); /* on a bound: counts in that bucket */
    vg_series_observe(l, 3);
    vg_series_observe(vg_metric_series(size), 10);
    assert_true(vg_series_value(l) == 4);
    assert_true(vg_series_value(cam1) == 3);

    const char *want = "# HELP vigil_test_frames_total Frames seen, by stream.\n"
                       "# TYPE vigil_test_frames_total counter\n"
                       "vigil_test_frames_total{stream_id=\"cam1\",kind=\"video\"} 3\n"
                       "vigil_test_frames_total{stream_id=\"a\\\"b\\\\c\\nd\",kind=\"x\"} 1\n"
                       "# HELP vigil_test_temperature_celsius Line one\\\\two\\nthree\n"
                       "# TYPE vigil_test_temperature_celsius gauge\n"
                       "vigil_test_temperature_celsius 21.5\n"
                       "# HELP vigil_test_latency_seconds Latency.\n"
                       "# TYPE vigil_test_latency_seconds histogram\n"
                       "vigil_test_latency_seconds_bucket{stream_id=\"cam1\",le=\"0.1\"} 1\n"
                       "vigil_test_latency_seconds_bucket{stream_id=\"cam1\",le=\"0.5\"} 3\n"
                       "vigil_test_latency_seconds_bucket{stream_id=\"cam1\",le=\"1\"} 3\n"
                       "vigil_test_latency_seconds_bucket{stream_id=\"cam1\",le=\"+Inf\"} 4\n"
                       "vigil_test_latency_seconds_sum{stream_id=\"cam1\"} 3.8125\n"
                       "vigil_test_latency_seconds_count{stream_id=\"cam1\"} 4\n"
                       "# HELP vigil_test_size_bytes Sizes.\n"
                       "# TYPE vigil_test_size_bytes histogram\n"
                       "vigil_test_size_bytes_bucket{le=\"1024\"} 1\n"
                       "vigil_test_size_bytes_bucket{le=\"+Inf\"} 1\n"
                       "vigil_test_size_bytes_sum 10\n"
                       "vigil_test_size_bytes_count 1\n"
                       "# HELP vigil_test_empty_bytes Nothing yet.\n"
                       "# TYPE vigil_test_empty_bytes gauge\n";
    char *got = vg_metrics_render();
    assert_string_equal(got, want);
    free(got);
}

static void test_number_format(void **state)
{
    (void)state;
    vg_metric_t *g = vg_metric_gauge("vigil_test_value", "Values.", "case");
    static const struct {
        const char *label;
        double v;
        const char *want;
    } cases[] = {
        {"tenth", 0.1, "0.1"},
        {"third", 1.0 / 3, "0.3333333333333333"},
        {"sum", 0.1 + 0.2, "0.30000000000000004"},
        {"big_int", 123456789012.0, "123456789012"},
        {"two53", 9007199254740992.0, "9007199254740992"},
        {"huge", 1e20, "1e+20"},
        {"tiny", 1e-7, "1e-07"},
        {"neg", -2.5, "-2.5"},
        {"neg_zero", -0.0, "0"},
        {"nan", NAN, "NaN"},
        {"inf", INFINITY, "+Inf"},
        {"ninf", -INFINITY, "-Inf"},
    };
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++)
        vg_series_set(vg_metric_series(g, cases[i].label), cases[i].v);
    char *text = vg_metrics_render();
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        char line[128];
        snprintf(line, sizeof(line), "\nvigil_test_value{case=\"%s\"} %s\n", cases[i].label,
                 cases[i].want);
        if (!strstr(text, line)) fail_msg("missing %s in:\n%s", line, text);
    }
    free(text);
}

static void test_reregister(void **state)
{
    (void)state;
    vg_metric_t *a = vg_metric_counter("vigil_test_x_total", "X.", "stream_id");
    vg_metric_t *b = vg_metric_counter("vigil_test_x_total", "Other help is ignored.", "stream_id");
    assert_ptr_equal(a, b);
    vg_metric_t *h1 =
        vg_metric_histogram("vigil_test_h_seconds", "H.", NULL, vg_metrics_latency_buckets,
                            vg_metrics_latency_buckets_len);
    vg_metric_t *h2 =
        vg_metric_histogram("vigil_test_h_seconds", "H.", NULL, vg_metrics_latency_buckets,
                            vg_metrics_latency_buckets_len);
    assert_ptr_equal(h1, h2);
    char *text = vg_metrics_render();
    assert_int_equal(count_lines_with_prefix(text, "# TYPE vigil_test_x_total"), 1);
    free(text);
}

/* ---- programming errors abort (checked in a child process) ---- */

static void bad_type(void)
{
    vg_metric_counter("vigil_test_dup", "D.", NULL);
    vg_metric_gauge("vigil_test_dup", "D.", NULL);
}
static void bad_labels(void)
{
    vg_metric_counter("vigil_test_dup_total", "D.", "a");
    vg_metric_counter("vigil_test_dup_total", "D.", "a,b");
}
static void bad_bounds(void)
{
    const double b1[] = {1, 2}, b2[] = {1, 3};
    vg_metric_histogram("vigil_test_dup_seconds", "D.", NULL, b1, 2);
    vg_metric_histogram("vigil_test_dup_seconds", "D.", NULL, b2, 2);
}
static void bad_metric_name(void)
{
    vg_metric_gauge("1vigil", "D.", NULL);
}
static void bad_metric_char(void)
{
    vg_metric_gauge("vigil-test", "D.", NULL);
}
static void bad_label_name(void)
{
    vg_metric_gauge("vigil_test_g", "D.", "stream-id");
}
static void reserved_label(void)
{
    vg_metric_gauge("vigil_test_g", "D.", "__name");
}
static void empty_label(void)
{
    vg_metric_gauge("vigil_test_g", "D.", "a,");
}
static void duplicate_label(void)
{
    vg_metric_gauge("vigil_test_g", "D.", "a,a");
}
static void le_label(void)
{
    const double b[] = {1};
    vg_metric_histogram("vigil_test_h", "D.", "le", b, 1);
}
static void unsorted_bounds(void)
{
    const double b[] = {1, 1};
    vg_metric_histogram("vigil_test_h", "D.", NULL, b, 2);
}
static void too_many_labels(void)
{
    vg_metric_gauge("vigil_test_g", "D.", "a,b,c,d,e,f,g,h,i");
}
static void set_on_counter(void)
{
    vg_series_set(vg_metric_series(vg_metric_counter("vigil_test_c_total", "C.", NULL)), 1);
}
static void observe_on_gauge(void)
{
    vg_series_observe(vg_metric_series(vg_metric_gauge("vigil_test_g", "G.", NULL)), 1);
}
static void inc_on_histogram(void)
{
    const double b[] = {1};
    vg_series_inc(vg_metric_series(vg_metric_histogram("vigil_test_h", "H.", NULL, b, 1)));
}

static void expect_abort(void (*fn)(void), const char *what)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        fn();
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) fail_msg("%s did not abort", what);
}

static void test_programming_errors_abort(void **state)
{
    (void)state;
#define EXPECT_ABORT(fn) expect_abort(fn, #fn)
    EXPECT_ABORT(bad_type);
    EXPECT_ABORT(bad_labels);
    EXPECT_ABORT(bad_bounds);
    EXPECT_ABORT(bad_metric_name);
    EXPECT_ABORT(bad_metric_char);
    EXPECT_ABORT(bad_label_name);
    EXPECT_ABORT(reserved_label);
    EXPECT_ABORT(empty_label);
    EXPECT_ABORT(duplicate_label);
    EXPECT_ABORT(le_label);
    EXPECT_ABORT(unsorted_bounds);
    EXPECT_ABORT(too_many_labels);
    EXPECT_ABORT(set_on_counter);
    EXPECT_ABORT(observe_on_gauge);
    EXPECT_ABORT(inc_on_histogram);
#undef EXPECT_ABORT
    /* names that are valid */
    vg_metric_gauge("vigil:test_ok", "Colons are allowed in metric names.", "_a, B9");
}

static void test_counter_rules(void **state)
{
    (void)state;
    vg_series_t *c = vg_metric_series(vg_metric_counter("vigil_test_c_total", "C.", NULL));
    vg_series_add(c, 2.5);
    vg_series_add(c, -1);  /* ignored */
    vg_series_add(c, NAN); /* ignored */
    assert_true(vg_series_value(c) == 2.5);
    vg_series_set_total(c, 10);
    assert_true(vg_series_value(c) == 10);
    vg_series_set_total(c, -3); /* ignored */
    assert_true(vg_series_value(c) == 10);
    vg_series_t *g = vg_metric_series(vg_metric_gauge("vigil_test_g", "G.", NULL));
    vg_series_add(g, -1.5);
    assert_true(vg_series_value(g) == -1.5);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    vg_metric_t *m = vg_metric_counter("vigil_test_u_total", "U.", "stream_id");
    vg_series_t *s = vg_metric_series(m, "caf\xc3\xa9\xff");
    vg_series_inc(s);
    assert_ptr_equal(vg_metric_series(m, "caf\xc3\xa9\xff"), s);
    assert_ptr_equal(vg_metric_series(m, "caf\xc3\xa9\xef\xbf\xbd"), s);
    vg_series_inc(vg_metric_series(m, "\xed\xa0\x80")); /* a surrogate: 3 bad bytes */
    char *text = vg_metrics_render();
    assert_non_null(strstr(text, "{stream_id=\"caf\xc3\xa9\xef\xbf\xbd\"} 1\n"));
    assert_non_null(strstr(text, "{stream_id=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 1\n"));
    free(text);
    vg_metrics_remove_label("stream_id", "caf\xc3\xa9\xff");
    text = vg_metrics_render();
    assert_null(strstr(text, "caf"));
    free(text);
}

/* ---- contention ---- */

#define N_THREADS 4
#define N_INCS 200000

typedef struct {
    vg_metric_t *counter, *halves, *gauge, *hist;
    vg_series_t *shared; /* out: the series this thread got for the shared label set */
} contend_arg_t;

static void *contend(void *p)
{
    contend_arg_t *a = p;
    vg_series_t *c = vg_metric_series(a->counter, "shared");
    vg_series_t *h = vg_metric_series(a->halves);
    vg_series_t *g = vg_metric_series(a->gauge);
    vg_series_t *hist = vg_metric_series(a->hist, "shared");
    a->shared = c;
    for (int i = 0; i < N_INCS; i++) {
        vg_series_inc(c);
        vg_series_add(h, 0.5);
        vg_series_add(g, 1);
        vg_series_observe(hist, i % 4 == 0 ? 0.25 : 2.0);
        vg_series_add(g, -1);
    }
    return NULL;
}

static void test_concurrent_updates_exact(void **state)
{
    (void)state;
    const double bounds[] = {1};
    contend_arg_t base = {
        .counter = vg_metric_counter("vigil_test_inc_total", "Incs.", "stream_id"),
        .halves = vg_metric_counter("vigil_test_halves_total", "Halves.", NULL),
        .gauge = vg_metric_gauge("vigil_test_inflight", "Up and down.", NULL),
        .hist = vg_metric_histogram("vigil_test_obs_seconds", "Obs.", "stream_id", bounds, 1),
    };
    pthread_t th[N_THREADS];
    contend_arg_t args[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        args[i] = base;
        assert_int_equal(pthread_create(&th[i], NULL, contend, &args[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 1; i < N_THREADS; i++)
        assert_ptr_equal(args[i].shared, args[0].shared);

    const double total = (double)N_THREADS * N_INCS;
    assert_true(vg_series_value(vg_metric_series(base.counter, "shared")) == total);
    assert_true(vg_series_value(vg_metric_series(base.halves)) == total / 2);
    assert_true(vg_series_value(vg_metric_series(base.gauge)) == 0);
    assert_true(vg_series_value(vg_metric_series(base.hist, "shared")) == total);
    char *text = vg_metrics_render();
    assert_true(sample_value(text, "vigil_test_inc_total{stream_id=\"shared\"}") == total);
    const char *le1 = "vigil_test_obs_seconds_bucket{stream_id=\"shared\",le=\"1\"}";
    const char *inf = "vigil_test_obs_seconds_bucket{stream_id=\"shared\",le=\"+Inf\"}";
    assert_true(sample_value(text, le1) == total / 4);
    assert_true(sample_value(text, inf) == total);
    assert_true(sample_value(text, "vigil_test_obs_seconds_count{stream_id=\"shared\"}") == total);
    assert_true(sample_value(text, "vigil_test_obs_seconds_sum{stream_id=\"shared\"}") ==
                total / 4 * 0.25 + total * 3 / 4 * 2.0);
    free(text);
}

/* ---- rendering while series are created, updated and removed ---- */

#define N_CREATORS 3
#define N_SERIES 1500

static atomic_int creators_done;

static void *create_series(void *p)
{
    int id = (int)(intptr_t)p;
    vg_metric_t *c = vg_metric_counter("vigil_test_conc_total", "Conc.", "stream_id,worker");
    vg_metric_t *h =
        vg_metric_histogram("vigil_test_conc_seconds", "Conc.", "stream_id",
                            vg_metrics_latency_buckets, vg_metrics_latency_buckets_len);
    for (int i = 0; i < N_SERIES; i++) {
        char sid[32];
        snprintf(sid, sizeof(sid), "t%d-%d", id, i);
        vg_series_inc(vg_metric_series(c, sid, "w"));
        vg_series_observe(vg_metric_series(h, sid), i * 0.001);
        if (i % 2 == 1)
            vg_metrics_remove_label("stream_id", sid); /* this thread is its only user */
        if (i % 100 == 0) {
            char name[64];
            snprintf(name, sizeof(name), "vigil_test_dyn_%d_%d", id, i);
            vg_series_set(vg_metric_series(vg_metric_gauge(name, "Dyn.", NULL)), i);
        }
    }
    atomic_fetch_add(&creators_done, 1);
    return NULL;
}

static void *render_loop(void *p)
{
    int *renders = p;
    while (atomic_load(&creators_done) < N_CREATORS) {
        char *text = vg_metrics_render();
        if (strncmp(text, "# HELP ", 7) != 0) abort();
        free(text);
        (*renders)++;
    }
    return NULL;
}

static void test_render_while_creating(void **state)
{
    (void)state;
    atomic_store(&creators_done, 0);
    vg_metric_counter("vigil_test_conc_total", "Conc.", "stream_id,worker");
    pthread_t creators[N_CREATORS], renderer;
    int renders = 0;
    assert_int_equal(pthread_create(&renderer, NULL, render_loop, &renders), 0);
    for (int i = 0; i < N_CREATORS; i++)
        assert_int_equal(pthread_create(&creators[i], NULL, create_series, (void *)(intptr_t)i), 0);
    for (int i = 0; i < N_CREATORS; i++)
        pthread_join(creators[i], NULL);
    pthread_join(renderer, NULL);
    assert_true(renders > 0);
    char *text = vg_metrics_render();
    assert_int_equal(count_lines_with_prefix(text, "vigil_test_conc_total{"),
                     N_CREATORS * N_SERIES / 2);
    assert_int_equal(count_lines_with_prefix(text, "vigil_test_conc_seconds_count{"),
                     N_CREATORS * N_SERIES / 2);
    assert_int_equal(count_lines_with_prefix(text, "# TYPE vigil_test_dyn_"),
                     N_CREATORS * N_SERIES / 100);
    assert_null(strstr(text, "\"t0-1\""));
    assert_non_null(strstr(text, "{stream_id=\"t2-1498\",worker=\"w\"} 1\n"));
    free(text);
}

/* ---- removal ---- */

static void test_remove_label(void **state)
{
    (void)state;
    vg_metric_t *c = vg_metric_counter("vigil_test_frames_total", "F.", "stream_id,worker");
    vg_metric_t *g = vg_metric_gauge("vigil_test_fps", "F.", "stream_id");
    vg_metric_t *h =
        vg_metric_histogram("vigil_test_lat_seconds", "L.", "stream_id", vg_metrics_latency_buckets,
                            vg_metrics_latency_buckets_len);
    vg_metric_t *other = vg_metric_gauge("vigil_test_camera_up", "C.", "camera");
    vg_series_inc(vg_metric_series(c, "a", "w1"));
    vg_series_inc(vg_metric_series(c, "ab", "w1"));
    vg_series_inc(vg_metric_series(c, "a", "w2"));
    vg_series_inc(vg_metric_series(c, "b", "a"));
    vg_series_set(vg_metric_series(g, "a"), 5);
    vg_series_set(vg_metric_series(g, "b"), 6);
    vg_series_observe(vg_metric_series(h, "a"), 0.1);
    vg_series_set(vg_metric_series(other, "a"), 1);

    vg_metrics_remove_label("stream_id", "a");
    vg_metrics_remove_label("no_such_label", "b");
    char *text = vg_metrics_render();
    const char *want = "# HELP vigil_test_frames_total F.\n"
                       "# TYPE vigil_test_frames_total counter\n"
                       "vigil_test_frames_total{stream_id=\"ab\",worker=\"w1\"} 1\n"
                       "vigil_test_frames_total{stream_id=\"b\",worker=\"a\"} 1\n"
                       "# HELP vigil_test_fps F.\n"
                       "# TYPE vigil_test_fps gauge\n"
                       "vigil_test_fps{stream_id=\"b\"} 6\n"
                       "# HELP vigil_test_lat_seconds L.\n"
                       "# TYPE vigil_test_lat_seconds histogram\n"
                       "# HELP vigil_test_camera_up C.\n"
                       "# TYPE vigil_test_camera_up gauge\n"
                       "vigil_test_camera_up{camera=\"a\"} 1\n";
    assert_string_equal(text, want);
    free(text);

    vg_series_t *again = vg_metric_series(g, "a"); /* a new, zeroed series at the end */
    assert_true(vg_series_value(again) == 0);
    text = vg_metrics_render();
    assert_non_null(strstr(text, "vigil_test_fps{stream_id=\"b\"} 6\n"
                                 "vigil_test_fps{stream_id=\"a\"} 0\n"));
    free(text);
}

/* ---- hooks ---- */

static int hook_runs;

static void count_hook(void *arg)
{
    hook_runs++;
    vg_series_set(vg_metric_series(vg_metric_gauge("vigil_test_hook_runs", "Runs.", NULL)),
                  hook_runs + *(int *)arg);
}

static void test_collect_hook(void **state)
{
    (void)state;
    static int offset = 100;
    hook_runs = 0;
    vg_metrics_add_collect_hook(count_hook, &offset);
    vg_metrics_add_collect_hook(count_hook, &offset); /* no-op */
    char *text = vg_metrics_render();
    free(text);
    text = vg_metrics_render();
    assert_int_equal(hook_runs, 2);
    assert_true(sample_value(text, "vigil_test_hook_runs") == 102);
    free(text);
}

/* ---- process metrics ---- */

static void test_proc_sample(void **state)
{
    (void)state;
    vg_proc_sample_t a, b;
    assert_int_equal(vg_proc_sample(&a), 0);
    assert_true(a.resident_bytes > 0);
    assert_true(a.virtual_bytes >= a.resident_bytes);
    assert_true(a.cpu_seconds >= 0);
    assert_true(a.open_fds >= 1);
    assert_true(a.max_fds >= a.open_fds);
    assert_true(a.threads >= 1);
    double now = vg_now_wall();
    assert_true(a.start_time_seconds > now - 3600 && a.start_time_seconds <= now + 2);

    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(vg_proc_sample(&b), 0);
    close(fd);
    assert_int_equal(b.open_fds, a.open_fds + 1);
    assert_true(b.start_time_seconds == a.start_time_seconds);
}

static void test_process_metrics(void **state)
{
    (void)state;
    vg_metrics_register_process();
    vg_metrics_register_process(); /* idempotent */
    char *text = vg_metrics_render();
    static const char *const names[] = {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
        "process_max_fds",
        "process_threads",
    };
    for (size_t i = 0; i < VG_ARRAY_LEN(names); i++) {
        char type[96];
        snprintf(type, sizeof(type), "# TYPE %s ", names[i]);
        assert_int_equal(count_lines_with_prefix(text, type), 1);
        assert_false(isnan(sample_value(text, names[i])));
    }
    assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(text, "\nvigil_build_info{version=\"" VG_VERSION "\"} 1\n"));
    assert_true(sample_value(text, "process_resident_memory_bytes") > 0);
    assert_true(sample_value(text, "process_open_fds") > 0);
    assert_true(sample_value(text, "process_max_fds") >= sample_value(text, "process_open_fds"));
    assert_true(sample_value(text, "process_threads") >= 1);
    assert_true(sample_value(text, "process_cpu_seconds_total") >= 0);
    double start = sample_value(text, "process_start_time_seconds");
    assert_true(start > vg_now_wall() - 3600 && start <= vg_now_wall() + 2);
    free(text);
}

/* ---- promtool ---- */

static void test_promtool_accepts(void **state)
{
    (void)state;
    VG_TEST_REQUIRE(system("command -v promtool >/dev/null 2>&1") == 0,
                    "promtool (Debian prometheus)");
    vg_metrics_register_process();
    vg_metric_t *frames = vg_metric_counter("vigil_frames_total", "Frames decoded.", "stream_id");
    vg_metric_t *lat =
        vg_metric_histogram("vigil_inference_seconds", "Inference latency.", "stream_id,model",
                            vg_metrics_latency_buckets, vg_metrics_latency_buckets_len);
    vg_metric_t *fps =
        vg_metric_gauge("vigil_stream_fps", "Sampled frames per second.", "stream_id");
    vg_metric_gauge("vigil_streams_pending", "Streams waiting, none yet.", "stream_id");
    vg_metric_t *up = vg_metric_gauge("vigil_up", "Whether the gateway runs.", NULL);
    const char *ids[] = {"cam-1", "ward \"B\"\\2\nnight", "caf\xc3\xa9", "bad\xff"};
    for (size_t i = 0; i < VG_ARRAY_LEN(ids); i++) {
        vg_series_add(vg_metric_series(frames, ids[i]), 1000.0 * (double)i);
        vg_series_observe(vg_metric_series(lat, ids[i], "yolo"), 0.042 * (double)i);
        vg_series_set(vg_metric_series(fps, ids[i]), i == 1 ? NAN : i == 2 ? INFINITY : 2.5);
    }
    vg_series_set(vg_metric_series(up), 1);

    char *text = vg_metrics_render();
    char path[] = "/tmp/vigil-metrics-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    free(text);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
    int rc = system(cmd);
    unlink(path);
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_exposition_exact, reset),
        cmocka_unit_test_setup(test_number_format, reset),
        cmocka_unit_test_setup(test_reregister, reset),
        cmocka_unit_test_setup(test_programming_errors_abort, reset),
        cmocka_unit_test_setup(test_counter_rules, reset),
        cmocka_unit_test_setup(test_invalid_utf8, reset),
        cmocka_unit_test_setup(test_concurrent_updates_exact, reset),
        cmocka_unit_test_setup(test_render_while_creating, reset),
        cmocka_unit_test_setup(test_remove_label, reset),
        cmocka_unit_test_setup(test_collect_hook, reset),
        cmocka_unit_test_setup(test_proc_sample, reset),
        cmocka_unit_test_setup(test_process_metrics, reset),
        cmocka_unit_test_setup(test_promtool_accepts, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
