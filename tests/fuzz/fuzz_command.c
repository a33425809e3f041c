/* libFuzzer target: the control module's command parser and validator, fed raw MQTT
 * payloads. Every input must produce exactly one final ack with a known status and
 * never crash; streams an input adds are removed again before the next input. */
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/common.h"
#include "vigil/control.h"
#include "vigil/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    struct event_base *base;
    vg_config_t *cfg;
    vg_loopq_t *q;
    vg_jobs_t *jobs;
    vg_infer_t *pool;
    vg_streams_t *streams;
    vg_control_t *control;
    int finals;
} env;

static void on_ack(void *arg, const json_t *ack, bool final)
{
    (void)arg;
    const char *st = json_string_value(json_object_get(ack, "status"));
    VG_CHECK(st != NULL);
    if (final) {
        VG_CHECK(strcmp(st, "completed") == 0 || strcmp(st, "rejected") == 0 ||
                 strcmp(st, "failed") == 0);
        env.finals++;
    }
}

static void on_result(void *arg, vg_infer_result_t *r)
{
    (void)arg;
    vg_infer_result_free(r);
}

static void setup(void)
{
    static const char yaml[] = "instance_id: fuzz\nmqtt: {enabled: false}\n"
                               "capture: {allow_files: true}\n"
                               "stream_url_template: \"/nonexistent/{source_id}\"\n"
                               "streams:\n  - {stream_id: s1, url: /nonexistent/a.mp4}\n";
    vg_diag_t d = {0};
    evthread_use_pthreads();
    vg_log_set_level(VG_LOG_ERROR);
    env.base = event_base_new();
    VG_CHECK(vg_config_parse(yaml, sizeof(yaml) - 1, "fuzz", ".", &env.cfg, &d) == 0);
    vg_diag_clear(&d);
    env.q = vg_loopq_new(env.base);
    env.jobs = vg_jobs_new(env.q);
    vg_infer_cfg_t ic = {.instance_id = "fuzz",
                         .threads = 1,
                         .models = env.cfg,
                         .jobs = env.jobs,
                         .on_result = on_result};
    VG_CHECK(vg_infer_new(&ic, &env.pool) == 0);
    vg_streams_opts_t so = {.cfg = env.cfg, .q = env.q, .pool = env.pool, .jobs = env.jobs};
    env.streams = vg_streams_new(&so);
    vg_streams_add(env.streams, &env.cfg->streams[0], true);
    vg_control_opts_t co = {.cfg = env.cfg, .streams = env.streams, .pool = env.pool, .q = env.q};
    env.control = vg_control_new(&co);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!env.base) setup();
    vg_origin_t o = {.source = "fuzz", .who = "fuzz", .stream_id = size % 2 ? "s1" : NULL};
    int before = env.finals;
    vg_control_submit(env.control, (const char *)data, size, &o, on_ack, NULL);
    /* model loads answer through the loop queue */
    for (int i = 0; i < 200 && env.finals == before; i++) {
        event_base_loop(env.base, EVLOOP_NONBLOCK);
        if (env.finals == before) vg_loopq_drain(env.q);
    }
    VG_CHECK(env.finals == before + 1 || env.finals == before); /* repeats ack "received" */
    while (vg_streams_count(env.streams) > 1)
        vg_streams_remove(env.streams, vg_stream_id(vg_streams_at(env.streams, 1)));
    return 0;
}
