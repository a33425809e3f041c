/* Unit tests for gateway_events.c on a real gateway object (config parsed from YAML, HTTP
 * on a loopback port, MQTT off, a stream whose capture fails): synthetic samples through
 * vg_gw_events_observe raise a fall that reaches the history, the metrics (total, active,
 * delay) and, through the journal job, events_file; an ack is journalled; a second
 * gateway on the same journal restores the open fall with its ack; zones and room_id
 * reach the engine when the stream changes (vg_gw_events_sync). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../src/gateway_internal.h"
#include "vigil/common.h"
#include "vigil/metrics.h"

#include <event2/event.h>

#define DT 0.5

static char dir[64], yaml[2048];
static const char *stream_extra = ""; /* more keys of the stream cam1 */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vigil-gwev-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(yaml, sizeof(yaml),
             "instance_id: gwev\n"
             "mqtt: {enabled: false}\n"
             "http: {listen: '127.0.0.1:%d'}\n"
             "capture: {allow_files: true}\n"
             "events_file: %s/events.jsonl\n"
             "streams:\n"
             "  - {stream_id: cam1, url: %s/missing.mp4, fps: 2, room_id: r1,\n"
             "     workers: [{type: motion_detector}]%s}\n",
             free_port(), dir, dir, stream_extra);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static vg_gateway_t *gateway(void)
{
    vg_config_t *cfg = NULL;
    vg_diag_t d = {0};
    int rc = vg_config_parse(yaml, strlen(yaml), "t.yaml", dir, &cfg, &d);
    if (rc != 0) fprintf(stderr, "%s\n", d.n_errors ? d.errors[0] : "?");
    vg_diag_clear(&d);
    assert_int_equal(rc, 0);
    vg_gateway_t *gw = NULL;
    assert_int_equal(vg_gateway_new(cfg, NULL, &gw), 0);
    return gw;
}

static void feed(vg_gateway_t *gw, double t0, double from, double to, vg_posture_t posture)
{
    static const vg_box_t up = {0.45f, 0.3f, 0.1f, 0.5f}, down = {0.35f, 0.65f, 0.35f, 0.15f};
    for (double t = from; t < to - 1e-9; t += DT) {
        vg_obs_person_t p = {.track_id = 7,
                             .box = posture == VG_POSTURE_LYING ? down : up,
                             .posture = posture,
                             .posture_conf = 0.8f,
                             .movement = -1};
        vg_obs_t obs = {
            .mono = t0 + t, .wall = vg_now_wall() - 30 + t, .people = &p, .n_people = 1};
        vg_gw_events_observe(gw, "cam1", &obs);
    }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_fall_to_history_metrics_journal_restore(void **state)
{
    (void)state;
    vg_gateway_t *gw = gateway();
    double t0 = vg_now_mono() - 30; /* samples from the past: the delay is measurable */
    feed(gw, t0, 0, 5, VG_POSTURE_UPRIGHT);
    feed(gw, t0, 5, 12, VG_POSTURE_LYING);
    vg_event_list_t open = {0};
    vg_events_list_open(vg_gw_events_engine(gw), &open);
    assert_int_equal(open.n, 1);
    assert_int_equal(open.v[0].type, VG_EV_FALL);
    assert_string_equal(open.v[0].room_id, "r1");
    char id[VG_EVENT_ID_MAX];
    snprintf(id, sizeof(id), "%s", open.v[0].event_id);
    vg_event_list_free(&open);

    char *m = vg_metrics_render();
    assert_non_null(strstr(m, "vigil_events_total{stream_id=\"cam1\",type=\"fall\"} 1"));
    assert_non_null(strstr(m, "vigil_events_active{type=\"fall\",severity=\"critical\"} 1"));
    assert_non_null(strstr(m, "vigil_event_delay_seconds_count 1"));
    free(m);

    assert_int_equal(vg_gw_events_ack(gw, id, "nurse"), 0);
    assert_int_equal(vg_gw_events_ack(gw, "nope", "nurse"), VG_ENOTFOUND);
    vg_gateway_free(gw); /* pending journal jobs run at stop */

    char path[128];
    snprintf(path, sizeof(path), "%s/events.jsonl", dir);
    const char *text = slurp(path);
    assert_non_null(strstr(text, "\"phase\":\"start\""));
    assert_non_null(strstr(text, "\"acked_by\":\"nurse\""));
    assert_non_null(strstr(text, id));

    gw = gateway(); /* the same journal: the fall is open again, with its ack */
    vg_event_t e;
    assert_int_equal(vg_events_get(vg_gw_events_engine(gw), id, &e), 0);
    assert_int_equal(e.ended_at, 0);
    assert_string_equal(e.acked_by, "nurse");
    assert_string_equal(e.reason, "restored");
    vg_gateway_free(gw);
}

static void test_sync_follows_the_stream(void **state)
{
    (void)state;
    vg_gateway_t *gw = gateway();
    vg_stream_t *s = vg_streams_find(gw->streams, "cam1");
    assert_non_null(s);
    /* a bed zone under the lying person: lying there is no fall */
    vg_stream_cfg_t *n = vg_stream_cfg_dup(vg_stream_cfg(s));
    json_t *z = json_loads("[{\"zone_id\":\"bed\",\"kind\":\"bed\",\"points\":"
                           "[[0.2,0.5],[0.9,0.5],[0.9,0.95],[0.2,0.95]]}]",
                           0, NULL);
    vg_zones_t zones;
    vg_jerr_t err;
    assert_int_equal(vg_zones_from_json(z, "zones", &zones, &err), 0);
    json_decref(z);
    n->zones = memcpy(vg_xcalloc(1, sizeof(zones)), &zones, sizeof(zones));
    free(n->room_id);
    n->room_id = vg_xstrdup("r2");
    vg_stream_apply(s, n);
    vg_stream_cfg_free(n);
    vg_gw_events_sync(gw);
    double t0 = vg_now_mono() - 30;
    feed(gw, t0, 0, 5, VG_POSTURE_UPRIGHT);
    feed(gw, t0, 5, 20, VG_POSTURE_LYING);
    vg_event_list_t open = {0};
    vg_events_list_open(vg_gw_events_engine(gw), &open);
    assert_int_equal(open.n, 0);
    vg_event_list_free(&open);
    vg_gateway_free(gw);
}

/* on_event: a fall raises the stream's fps through the command path at once, and the
 * fps it had comes back after hold_s; a raise that is rejected changes nothing and
 * restores nothing. */
static double cam1_fps(vg_gateway_t *gw)
{
    return vg_stream_cfg(vg_streams_find(gw->streams, "cam1"))->fps;
}

static void run_loop(vg_gateway_t *gw, double s)
{
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (time_t)s) * 1e6)};
    event_base_loopexit(gw->base, &tv);
    event_base_dispatch(gw->base);
}

static void test_escalation(void **state)
{
    (void)state;
    stream_extra = ", on_event: {fall: {fps: 5, hold_s: 1}}";
    setup(NULL);
    stream_extra = "";
    vg_gateway_t *gw = gateway();
    assert_true(cam1_fps(gw) == 2);
    double t0 = vg_now_mono() - 30;
    feed(gw, t0, 0, 5, VG_POSTURE_UPRIGHT);
    feed(gw, t0, 5, 12, VG_POSTURE_LYING);
    assert_true(cam1_fps(gw) == 5);
    /* the stream's change does not disturb the engine: the same fall stays open */
    vg_event_list_t open = {0};
    vg_events_list_open(vg_gw_events_engine(gw), &open);
    assert_int_equal(open.n, 1);
    char id[VG_EVENT_ID_MAX];
    snprintf(id, sizeof(id), "%s", open.v[0].event_id);
    vg_event_list_clear(&open);
    feed(gw, t0, 12, 16, VG_POSTURE_LYING);
    vg_events_list_open(vg_gw_events_engine(gw), &open);
    assert_int_equal(open.n, 1);
    assert_string_equal(open.v[0].event_id, id);
    vg_event_list_free(&open);
    run_loop(gw, 1.6);
    assert_true(cam1_fps(gw) == 2);
    vg_gateway_free(gw);
}

static void test_escalation_rejected(void **state)
{
    (void)state;
    stream_extra = ", on_event: {fall: {fps: 5, model_id: nope, hold_s: 1}}";
    setup(NULL);
    stream_extra = "";
    vg_gateway_t *gw = gateway();
    double t0 = vg_now_mono() - 30;
    feed(gw, t0, 0, 5, VG_POSTURE_UPRIGHT);
    feed(gw, t0, 5, 12, VG_POSTURE_LYING);
    assert_true(cam1_fps(gw) == 2); /* all or nothing: the unknown model refused the fps too */
    assert_null(gw->holds);         /* nothing to restore */
    vg_gateway_free(gw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fall_to_history_metrics_journal_restore, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sync_follows_the_stream, setup, teardown),
        cmocka_unit_test_teardown(test_escalation, teardown),
        cmocka_unit_test_teardown(test_escalation_rejected, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
