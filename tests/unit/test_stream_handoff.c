/* Unit tests for stream.c's generations (issue 13, defect 8): DELETE X, POST X, DELETE X
 * leaves two X's dying; when the first one's reap completes, X's metric series must stay
 * while the second X (whose capture thread caches pointers to them) is not reaped yet,
 * and go once it is. The reap lane is held by a job of the test, so the order is not
 * left to timing. Real capture threads on a camera that refuses connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/jobs.h"
#include "vigil/log.h"
#include "vigil/metrics.h"
#include "vigil/stream.h"

static bool has_series(const char *needle)
{
    char *text = vg_metrics_render();
    bool found = strstr(text, needle) != NULL;
    free(text);
    return found;
}

static void hold_run(void *job)
{
    atomic_bool *gate = job;
    while (!atomic_load(gate))
        usleep(1000);
}

static void hold_done(void *ctx, void *job, bool ran)
{
    (void)ctx;
    (void)job;
    (void)ran;
}

static void wait_reaps(vg_jobs_t *js, int n)
{
    for (int i = 0; i < 5000 && vg_jobs_pending(js, VG_JOB_REAP) > n; i++)
        usleep(1000);
    assert_int_equal(vg_jobs_pending(js, VG_JOB_REAP), n);
}

static void test_series_outlive_a_dying_stream(void **state)
{
    (void)state;
    static const char yaml[] =
        "instance_id: t\nmqtt: {enabled: false}\n"
        "streams:\n  - {stream_id: x, rtsp_url: \"rtsp://127.0.0.1:1/x\", fps: 1, workers: []}\n";
    vg_diag_t d = {0};
    vg_config_t *cfg = NULL;
    assert_int_equal(vg_config_parse(yaml, sizeof(yaml) - 1, "t", ".", &cfg, &d), 0);
    vg_diag_clear(&d);
    struct event_base *base = event_base_new();
    vg_loopq_t *q = vg_loopq_new(base);
    vg_jobs_t *js = vg_jobs_new(q);
    vg_infer_t *pool = NULL;
    vg_infer_cfg_t ic = {.instance_id = "t", .threads = 1, .models = cfg, .jobs = js};
    assert_int_equal(vg_infer_new(&ic, &pool), 0);
    vg_streams_opts_t so = {.cfg = cfg, .q = q, .pool = pool, .jobs = js};
    vg_streams_t *ss = vg_streams_new(&so);
    const char *series = "vigil_stream_state{stream_id=\"x\"";

    assert_int_equal(vg_streams_add(ss, &cfg->streams[0], true), 0); /* X, generation 1 */
    uint64_t gen1 = vg_stream_gen(vg_streams_find(ss, "x"));
    assert_int_equal(vg_streams_remove(ss, "x"), 0);
    wait_reaps(js, 0); /* its completion waits in the loop queue */
    atomic_bool gate = false;
    vg_job_ops_t hold = {hold_run, hold_done, NULL};
    vg_jobs_submit(js, VG_JOB_REAP, &hold, &gate); /* the next reap waits behind this */
    assert_int_equal(vg_streams_add(ss, &cfg->streams[0], true), 0); /* X, generation 2 */
    vg_stream_t *s2 = vg_streams_find(ss, "x");
    assert_true(vg_stream_gen(s2) != gen1);
    assert_null(vg_streams_find_gen(ss, "x", gen1));
    assert_ptr_equal(vg_streams_find_gen(ss, "x", vg_stream_gen(s2)), s2);
    assert_int_equal(vg_streams_remove(ss, "x"), 0); /* dying, capture not joined yet */
    vg_loopq_drain(q);                               /* the first X's reap completes */
    assert_true(has_series(series)); /* the old code freed them here: X was not live */
    atomic_store(&gate, true);
    wait_reaps(js, 0);
    vg_loopq_drain(q); /* the second X's reap completes */
    assert_false(has_series(series));

    vg_streams_shutdown(ss);
    vg_jobs_stop(js);
    vg_loopq_drain(q);
    vg_infer_free(pool);
    vg_streams_free(ss);
    vg_jobs_free(js);
    vg_loopq_free(q);
    event_base_free(base);
    vg_config_free(cfg);
}

int main(void)
{
    evthread_use_pthreads();
    vg_log_set_level(VG_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series_outlive_a_dying_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
