/* Unit tests for the executor pool: fairness under overload (equal and weighted fps),
 * results carry the stream's fields and a monotonic latency, a detached stream stops being served;
 * an executor serves more models than its cache holds (LRU eviction, no abort) and a model that
 * fails to load is not read again on every frame (back-off). Real detector
 * (yolo-fastest body model); run under ThreadSanitizer in CI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/infer.h"
#include "vigil/log.h"
#include "vigil/metrics.h"

#define N_STREAMS 8

static atomic_int results[N_STREAMS];
static atomic_int bad_fields, bad_latency;
static double run_seconds;

typedef struct {
    int index;
    double fps;
    vg_mailbox_t *mb;
    atomic_bool *stop;
} producer_t;

static void on_result(void *arg, vg_infer_result_t *r)
{
    (void)arg;
    int idx = atoi(r->stream_id + 1);
    json_t *msg = json_array_get(r->results, 0);
    if (!msg || strcmp(json_string_value(json_object_get(msg, "stream_id")), r->stream_id) != 0 ||
        !json_is_integer(json_object_get(msg, "person_count")))
        atomic_fetch_add(&bad_fields, 1);
    double latency_ms = json_number_value(json_object_get(msg, "latency_ms"));
    if (!msg || latency_ms < 0 || latency_ms > 60000) atomic_fetch_add(&bad_latency, 1);
    atomic_fetch_add(&results[idx], 1);
    vg_infer_result_free(r);
}

static void *producer(void *arg)
{
    producer_t *p = arg;
    uint64_t seq = 0;
    while (!atomic_load(p->stop)) {
        vg_frame_t *f = vg_frame_new();
        vg_frame_view_t *v = vg_frame_add_view(f, 320, 320);
        memset(v->data, 90, (size_t)v->stride * 320);
        v->x = v->y = 0;
        v->w = v->h = 320;
        f->src_width = f->src_height = 320;
        f->seq = ++seq;
        /* the wall clock stepped an hour forward since capture (NTP): latency is a
         * duration and must come from the monotonic clock */
        f->captured_at = vg_now_wall() - 3600;
        f->captured_mono = vg_now_mono();
        vg_mailbox_post(p->mb, f);
        usleep((useconds_t)(1e6 / p->fps));
    }
    return NULL;
}

static vg_config_t *load_cfg(void)
{
    const char *shared = getenv("VIGIL_SHARED_DIR");
    char *yaml = vg_xasprintf("instance_id: t\nmodels_dir: %s/models\nmodels:\n"
                              "  - {model_id: body, config: yolo-fastest-1.1_body.cfg, "
                              "weights: yolo-fastest-1.1_body.weights}\n",
                              shared ? shared : "../shared");
    vg_diag_t d = {0};
    vg_config_t *cfg = NULL;
    assert_int_equal(vg_config_parse(yaml, strlen(yaml), "t", ".", &cfg, &d), 0);
    vg_diag_clear(&d);
    free(yaml);
    return cfg;
}

static vg_stream_spec_t *spec_for(int i, double fps)
{
    vg_stream_spec_t *s = vg_xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->stream_id = vg_xasprintf("s%d", i);
    s->fps = fps;
    s->n_workers = 1;
    s->workers = vg_xcalloc(1, sizeof(*s->workers));
    s->workers[0].worker_id = vg_xstrdup("person_detector");
    s->workers[0].type = VG_WORKER_PERSON;
    s->workers[0].model_id = vg_xstrdup("body");
    s->workers[0].confidence_threshold = 0.5;
    s->workers[0].available = true;
    s->workers[0].view = 0;
    return s;
}

static void detached(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static int total_results(void)
{
    int total = 0;
    for (int i = 0; i < N_STREAMS; i++)
        total += atomic_load(&results[i]);
    return total;
}

/* Runs N_STREAMS producers at fps[i] against a one-thread pool until `want` results
 * arrived (so a slow sanitizer build compares enough results), or 60 s passed. */
static void run(const double *fps, int want)
{
    vg_config_t *cfg = load_cfg();
    vg_infer_t *pool = NULL;
    vg_infer_cfg_t ic = {.instance_id = "t", .threads = 1, .models = cfg, .on_result = on_result};
    assert_int_equal(vg_infer_new(&ic, &pool), 0);
    atomic_bool stop = false;
    producer_t prod[N_STREAMS];
    pthread_t th[N_STREAMS];
    vg_infer_stream_t *is[N_STREAMS];
    for (int i = 0; i < N_STREAMS; i++) {
        atomic_store(&results[i], 0);
        prod[i] = (producer_t){i, fps[i], vg_mailbox_new(), &stop};
        vg_stream_spec_t *sp = spec_for(i, fps[i]);
        is[i] = vg_infer_attach(pool, prod[i].mb, sp);
        vg_stream_spec_unref(sp);
    }
    for (int i = 0; i < N_STREAMS; i++)
        pthread_create(&th[i], NULL, producer, &prod[i]);
    double t0 = vg_now_mono();
    for (int waited = 0; waited < 240 && total_results() < want; waited++)
        usleep(250000);
    run_seconds = vg_now_mono() - t0;
    atomic_store(&stop, true);
    for (int i = 0; i < N_STREAMS; i++)
        pthread_join(th[i], NULL);
    atomic_int n_detached = 0;
    for (int i = 0; i < N_STREAMS; i++)
        vg_infer_detach(is[i], detached, &n_detached);
    vg_infer_free(pool);
    assert_int_equal(atomic_load(&n_detached), N_STREAMS);
    for (int i = 0; i < N_STREAMS; i++)
        vg_mailbox_free(prod[i].mb);
    vg_config_free(cfg);
    assert_int_equal(atomic_load(&bad_fields), 0);
    assert_int_equal(atomic_load(&bad_latency), 0);
}

static void test_fair_equal(void **state)
{
    (void)state;
    double fps[N_STREAMS];
    for (int i = 0; i < N_STREAMS; i++)
        fps[i] = 30; /* 240 frames/s offered to one thread that does far fewer */
    run(fps, 240);
    int lo = 1 << 30, hi = 0, total = 0;
    for (int i = 0; i < N_STREAMS; i++) {
        int n = atomic_load(&results[i]);
        lo = n < lo ? n : lo;
        hi = n > hi ? n : hi;
        total += n;
    }
    printf("# equal: total %d results in %.1f s, per stream %d..%d\n", total, run_seconds, lo, hi);
    assert_true(lo > 0);
    assert_true(total < run_seconds * 240 * 0.9); /* it really was overloaded */
    assert_true((double)(hi - lo) / hi < 0.20);
}

static void test_fair_weighted(void **state)
{
    (void)state;
    double fps[N_STREAMS];
    for (int i = 0; i < N_STREAMS; i++)
        fps[i] = i < N_STREAMS / 2 ? 30 : 10;
    run(fps, 240);
    double fast = 0, slow = 0;
    for (int i = 0; i < N_STREAMS; i++)
        *(i < N_STREAMS / 2 ? &fast : &slow) += atomic_load(&results[i]);
    printf("# weighted: fps-30 streams %.0f results, fps-10 streams %.0f (ratio %.2f)\n", fast,
           slow, fast / slow);
    assert_true(slow > 0);
    /* under overload each degrades in proportion to its target: about 3:1 */
    assert_true(fast / slow > 2.4 && fast / slow < 3.6);
}

/* ---- model cache ---------------------------------------------------------------------- */

#define N_MODELS (VG_INFER_MAX_CACHED_MODELS * 2 + 4)

static atomic_int cache_results;
static atomic_int cache_person_results;

static void on_cache_result(void *arg, vg_infer_result_t *r)
{
    (void)arg;
    size_t i;
    json_t *msg;
    json_array_foreach(r->results, i, msg)
    {
        if (json_object_get(msg, "person_count")) atomic_fetch_add(&cache_person_results, 1);
    }
    atomic_fetch_add(&cache_results, 1);
    vg_infer_result_free(r);
}

static double metric_value(const char *series)
{
    char *text = vg_metrics_render();
    const char *p = strstr(text, series);
    double v = p ? strtod(p + strlen(series), NULL) : -1;
    free(text);
    return v;
}

/* A person worker on `model_id` and a motion worker (which always yields a result). */
static vg_stream_spec_t *cache_spec(const char *model_id)
{
    vg_stream_spec_t *s = spec_for(0, 30);
    s->workers = vg_xrealloc(s->workers, 2 * sizeof(*s->workers));
    s->n_workers = 2;
    free(s->workers[0].model_id);
    s->workers[0].model_id = vg_xstrdup(model_id);
    memset(&s->workers[1], 0, sizeof(s->workers[1]));
    s->workers[1].worker_id = vg_xstrdup("motion");
    s->workers[1].type = VG_WORKER_MOTION;
    s->workers[1].available = true;
    s->workers[1].view = 0;
    return s;
}

/* Posts one frame and waits for its result. */
static void one_frame(vg_mailbox_t *mb, uint64_t seq)
{
    int before = atomic_load(&cache_results);
    vg_frame_t *f = vg_frame_new();
    vg_frame_view_t *v = vg_frame_add_view(f, 320, 320);
    memset(v->data, (int)(seq * 7 % 200), (size_t)v->stride * 320);
    v->w = v->h = 320;
    f->src_width = f->src_height = 320;
    f->seq = seq;
    f->captured_at = vg_now_wall();
    vg_mailbox_post(mb, f);
    for (int i = 0; i < 3000 && atomic_load(&cache_results) == before; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&cache_results), before + 1);
}

static void test_model_cache(void **state)
{
    (void)state;
    const char *shared = getenv("VIGIL_SHARED_DIR");
    char bad[] = "/tmp/vigil-bad-weights-XXXXXX";
    int fd = mkstemp(bad);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a model\n", 12), 12);
    close(fd);
    char *yaml = vg_xasprintf("instance_id: t\nmodels_dir: %s/models\nmodels:\n"
                              "  - {model_id: bad, config: yolo-fastest-1.1_body.cfg, "
                              "weights: %s}\n",
                              shared ? shared : "../shared", bad);
    for (int i = 0; i < N_MODELS; i++) {
        char *next = vg_xasprintf("%s  - {model_id: m%d, config: yolo-fastest-1.1_body.cfg, "
                                  "weights: yolo-fastest-1.1_body.weights}\n",
                                  yaml, i);
        free(yaml);
        yaml = next;
    }
    vg_diag_t d = {0};
    vg_config_t *cfg = NULL;
    assert_int_equal(vg_config_parse(yaml, strlen(yaml), "t", ".", &cfg, &d), 0);
    vg_diag_clear(&d);
    free(yaml);
    vg_infer_t *pool = NULL;
    vg_infer_cfg_t ic = {
        .instance_id = "t", .threads = 1, .models = cfg, .on_result = on_cache_result};
    assert_int_equal(vg_infer_new(&ic, &pool), 0);
    vg_mailbox_t *mb = vg_mailbox_new();
    vg_stream_spec_t *sp = cache_spec("m0");
    vg_infer_stream_t *is = vg_infer_attach(pool, mb, sp);
    vg_stream_spec_unref(sp);
    uint64_t seq = 0;
    /* every model twice, in turns: more models than the cache holds (the old fixed table
     * of 16 aborted on the 17th) */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N_MODELS; i++) {
            char id[16];
            snprintf(id, sizeof(id), "m%d", i);
            sp = cache_spec(id);
            vg_infer_set_spec(is, sp);
            vg_stream_spec_unref(sp);
            one_frame(mb, ++seq);
        }
    }
    assert_int_equal(atomic_load(&cache_person_results), 2 * N_MODELS);
    /* a model that fails to load: tried once, not on each of the next frames */
    double failed0 = metric_value("vigil_model_loads_total{result=\"error\"} ");
    sp = cache_spec("bad");
    vg_infer_set_spec(is, sp);
    vg_stream_spec_unref(sp);
    for (int i = 0; i < 10; i++)
        one_frame(mb, ++seq);
    double failed = metric_value("vigil_model_loads_total{result=\"error\"} ");
    printf("# failed loads of 'bad' over 10 frames: %.0f\n", failed - (failed0 < 0 ? 0 : failed0));
    assert_true(failed - (failed0 < 0 ? 0 : failed0) == 1);
    assert_int_equal(atomic_load(&cache_person_results), 2 * N_MODELS);
    atomic_int n_detached = 0;
    vg_infer_detach(is, detached, &n_detached);
    vg_infer_free(pool);
    vg_mailbox_free(mb);
    vg_config_free(cfg);
    unlink(bad);
}

int main(void)
{
    vg_log_set_level(VG_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fair_equal),
        cmocka_unit_test(test_fair_weighted),
        cmocka_unit_test(test_model_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
