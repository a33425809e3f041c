/* Unit tests for mqtt.c without a broker (the port is closed): argument checks, QoS 0
 * dropped while offline, QoS 1 queued in the outbox with retained replacement and the
 * drop policy, the metrics that count it, reconnect attempts, host names resolved off
 * the loop and connected by address, a stop that times out, and free without a stop.
 * The integration tests cover the connected paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/metrics.h"
#include "vigil/mqtt.h"

static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s); /* nothing listens there now: connects are refused */
    return ntohs(a.sin_port);
}

static double gauge(const char *name)
{
    return vg_series_value(vg_metric_series(vg_metric_gauge(name, "", NULL)));
}

static double dropped(const char *reason)
{
    vg_metric_t *f = vg_metric_counter("vigil_mqtt_outbox_dropped_total", "", "reason");
    return vg_series_value(vg_metric_series(f, reason));
}

typedef struct {
    struct event_base *base;
    vg_mqtt_t *m;
    int stopped;
} fixture_t;

static void on_stopped(void *arg)
{
    fixture_t *f = arg;
    f->stopped++;
    event_base_loopbreak(f->base);
}

static void make_at(fixture_t *f, int outbox_limit, const char *host, int port)
{
    memset(f, 0, sizeof(*f));
    f->base = event_base_new();
    vg_mqtt_cfg_t cfg = {.host = (char *)host,
                         .port = port,
                         .client_id = "unit",
                         .keepalive_s = 5,
                         .outbox_limit = outbox_limit};
    vg_mqtt_hooks_t hooks = {
        .on_stopped = on_stopped, .arg = f, .will_topic = "unit/status", .will_payload = "offline"};
    assert_int_equal(vg_mqtt_new(f->base, &cfg, &hooks, &f->m), 0);
    vg_mqtt_set_backoff(f->m, 0.01, 0.02, 0.02);
}

static void make(fixture_t *f, int outbox_limit, const char *host)
{
    make_at(f, outbox_limit, host, closed_port());
}

static void run_for(fixture_t *f, double s)
{
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (time_t)s) * 1e6)};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

static void destroy(fixture_t *f)
{
    vg_mqtt_free(f->m);
    event_base_free(f->base);
}

static int setup(void **state)
{
    (void)state;
    evthread_use_pthreads();
    vg_log_set_level(VG_LOG_ERROR);
    return 0;
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    vg_mqtt_t *m = NULL;
    vg_mqtt_hooks_t hooks = {0};
    vg_mqtt_cfg_t cfg = {.host = "127.0.0.1", .port = 1883, .client_id = "", .keepalive_s = 30};
    assert_int_equal(vg_mqtt_new(base, &cfg, &hooks, &m), VG_EINVAL); /* no client id */
    cfg.client_id = "x";
    cfg.password_file = "/nonexistent/password";
    assert_int_equal(vg_mqtt_new(base, &cfg, &hooks, &m), VG_EINVAL); /* no username */
    cfg.username = "u";
    assert_int_equal(vg_mqtt_new(base, &cfg, &hooks, &m), VG_EIO);
    cfg.password_file = NULL;
    cfg.tls.cert_file = "/etc/hostname";
    assert_int_equal(vg_mqtt_new(base, &cfg, &hooks, &m), VG_EINVAL); /* cert without key */
    assert_null(m);
    event_base_free(base);

    fixture_t f;
    make(&f, 10, "127.0.0.1");
    assert_int_equal(vg_mqtt_publish(f.m, "a/+/b", "x", 1, 1, false, VG_MQTT_CONTROL), VG_EINVAL);
    assert_int_equal(vg_mqtt_publish(f.m, "", "x", 1, 1, false, VG_MQTT_CONTROL), VG_EINVAL);
    assert_int_equal(vg_mqtt_publish(f.m, "a", "x", 1, 3, false, VG_MQTT_CONTROL), VG_EINVAL);
    assert_int_equal(vg_mqtt_publish(f.m, "a", NULL, 1, 1, false, VG_MQTT_CONTROL), VG_EINVAL);
    assert_int_equal(vg_mqtt_publish(f.m, "a", NULL, 0, 1, false, VG_MQTT_CONTROL), 0);
    assert_int_equal(vg_mqtt_subscribe(f.m, "a/#/b", 1), VG_EINVAL);
    assert_int_equal(vg_mqtt_subscribe(f.m, "a/+/b", 3), VG_EINVAL);
    assert_int_equal(vg_mqtt_subscribe(f.m, "a/+/b", 1), 0);
    assert_int_equal(vg_mqtt_subscribe(f.m, "a/+/b", 0), 0); /* same pattern: new QoS */
    assert_int_equal(vg_mqtt_unsubscribe(f.m, "a/+/b"), 0);
    assert_int_equal(vg_mqtt_unsubscribe(f.m, "a/+/b"), VG_ENOTFOUND);
    destroy(&f);
}

static void test_offline_queueing(void **state)
{
    (void)state;
    fixture_t f;
    make(&f, 3, "127.0.0.1");
    double qos0 = dropped("offline_qos0"), over = dropped("overflow");
    double cover = dropped("control_overflow"), sup = dropped("superseded");
    assert_false(vg_mqtt_connected(f.m));
    assert_int_equal(vg_mqtt_publish(f.m, "i", "0", 1, 0, false, VG_MQTT_INFERENCE), 0);
    assert_int_equal(dropped("offline_qos0"), qos0 + 1);
    assert_int_equal(vg_mqtt_outbox_len(f.m), 0);

    vg_mqtt_publish(f.m, "st", "online", 6, 1, true, VG_MQTT_CONTROL);
    vg_mqtt_publish(f.m, "i", "1", 1, 1, false, VG_MQTT_INFERENCE);
    vg_mqtt_publish(f.m, "st", "busy", 4, 1, true, VG_MQTT_CONTROL); /* replaces "online" */
    assert_int_equal(dropped("superseded"), sup + 1);
    assert_int_equal(vg_mqtt_outbox_len(f.m), 2);
    assert_int_equal(gauge("vigil_mqtt_outbox_messages"), 2);
    vg_mqtt_publish(f.m, "ack", "a1", 2, 1, false, VG_MQTT_CONTROL);
    vg_mqtt_publish(f.m, "ack", "a2", 2, 1, false, VG_MQTT_CONTROL); /* drops "1" */
    assert_int_equal(dropped("overflow"), over + 1);
    vg_mqtt_publish(f.m, "i", "2", 1, 1, false, VG_MQTT_INFERENCE); /* full of control: itself */
    assert_int_equal(dropped("overflow"), over + 2);
    vg_mqtt_publish(f.m, "ack", "a3", 2, 1, false, VG_MQTT_CONTROL); /* drops "busy" */
    assert_int_equal(dropped("control_overflow"), cover + 1);
    assert_int_equal(vg_mqtt_outbox_len(f.m), 3);

    /* the loop tries to connect, is refused, and keeps retrying with backoff */
    run_for(&f, 0.3);
    assert_false(vg_mqtt_connected(f.m));
    assert_int_equal(vg_mqtt_outbox_len(f.m), 3);
    assert_int_equal(gauge("vigil_mqtt_connected"), 0);
    destroy(&f);
}

static double class_dropped(const char *cls)
{
    vg_metric_t *f = vg_metric_counter("vigil_mqtt_outbox_dropped_by_class_total", "", "class");
    return vg_series_value(vg_metric_series(f, cls));
}

/* Care events offline: refused without an instance or with a bad payload; queued ahead
 * of everything, never displaced by inference or control; the alarms keep one queued
 * value, the newest; an event is dropped only by events (counted by class). */
static void test_events_offline(void **state)
{
    (void)state;
    fixture_t f;
    make(&f, 2, "127.0.0.1");
    vg_mqtt_set_event_reserve(f.m, 2);
    assert_int_equal(vg_mqtt_publish_event(f.m, "s1", "{\"event_id\":\"e0\"}"), VG_EINVAL);
    assert_int_equal(vg_mqtt_set_instance(f.m, "care", "a/b"), VG_EINVAL);
    assert_int_equal(vg_mqtt_set_instance(f.m, "care/#", "i1"), VG_EINVAL);
    assert_int_equal(vg_mqtt_set_instance(f.m, "site/care", "i1"), 0);
    assert_int_equal(vg_mqtt_publish_event(f.m, "s/1", "{}"), VG_EINVAL);
    assert_int_equal(vg_mqtt_publish_event(f.m, "s1", "[1]"), VG_EINVAL);
    assert_int_equal(vg_mqtt_publish_event(f.m, "s1", "{bad"), VG_EINVAL);
    assert_int_equal(vg_mqtt_set_alarms(f.m, "{}"), VG_EINVAL);
    double ev0 = class_dropped("event"), inf0 = class_dropped("inference");
    double ctl0 = class_dropped("control");

    assert_int_equal(vg_mqtt_publish_event(f.m, "s1", "{\"event_id\":\"e1\"}"), 0);
    assert_int_equal(vg_mqtt_set_alarms(f.m, "[\"e1\"]"), 0);
    assert_int_equal(vg_mqtt_set_alarms(f.m, "[]"), 0); /* replaces the queued one */
    assert_int_equal(vg_mqtt_events_pending(f.m), 2);
    for (int i = 0; i < 5; i++) /* an inference flood takes only the shared room */
        vg_mqtt_publish(f.m, "i", "x", 1, 1, false, VG_MQTT_INFERENCE);
    vg_mqtt_publish(f.m, "c", "c", 1, 1, false, VG_MQTT_CONTROL);
    assert_int_equal(vg_mqtt_outbox_len(f.m), 4);
    assert_int_equal(class_dropped("inference"), inf0 + 4);
    /* events displace the rest, then each other */
    assert_int_equal(vg_mqtt_publish_event(f.m, "s1", "{\"event_id\":\"e2\"}"), 0);
    assert_int_equal(vg_mqtt_publish_event(f.m, "s2", "{\"event_id\":\"e3\"}"), 0);
    assert_int_equal(class_dropped("control"), ctl0 + 1);
    assert_int_equal(class_dropped("event"), ev0);
    assert_int_equal(vg_mqtt_publish_event(f.m, "s2", "{\"event_id\":\"e4\"}"), 0);
    assert_int_equal(class_dropped("event"), ev0 + 1);
    assert_int_equal(dropped("event_overflow") >= 1, 1);
    assert_int_equal(vg_mqtt_events_pending(f.m), 4);
    assert_int_equal(gauge("vigil_mqtt_events_pending"), 4);
    vg_mqtt_stop(f.m, 0.1);
    assert_int_equal(vg_mqtt_publish_event(f.m, "s1", "{}"), VG_EBUSY);
    assert_int_equal(vg_mqtt_set_alarms(f.m, "[]"), VG_EBUSY);
    run_for(&f, 1);
    assert_int_equal(class_dropped("event"), ev0 + 5); /* shutdown counts them too */
    assert_int_equal(vg_mqtt_events_pending(f.m), 0);
    destroy(&f);
}

static void test_stop_times_out(void **state)
{
    (void)state;
    fixture_t f;
    make(&f, 10, "127.0.0.1");
    double shut = dropped("shutdown");
    vg_mqtt_publish(f.m, "st", "offline", 7, 1, true, VG_MQTT_CONTROL);
    vg_mqtt_stop(f.m, 0.2);
    assert_int_equal(vg_mqtt_publish(f.m, "x", "y", 1, 1, false, VG_MQTT_CONTROL), VG_EBUSY);
    vg_mqtt_stop(f.m, 0.2); /* again: no effect */
    run_for(&f, 2);
    assert_int_equal(f.stopped, 1);
    assert_int_equal(dropped("shutdown"), shut + 1);
    assert_int_equal(vg_mqtt_outbox_len(f.m), 0);
    destroy(&f);
}

static void test_stop_with_nothing_pending(void **state)
{
    (void)state;
    fixture_t f;
    make(&f, 10, "127.0.0.1");
    vg_mqtt_stop(f.m, 5);
    run_for(&f, 1);
    assert_int_equal(f.stopped, 1); /* immediately: nothing to deliver */
    destroy(&f);
}

/* A loopback listener: connections queue in its backlog, nothing answers them. */
static int listener(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s, 8), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return s;
}

/* Runs the loop in short slices until `needle` shows in the log file or `max_s` pass. */
static bool run_until_logged(fixture_t *f, int log_fd, const char *needle, double max_s)
{
    char buf[16384];
    for (double t = 0; t < max_s; t += 0.05) {
        run_for(f, 0.05);
        ssize_t n = pread(log_fd, buf, sizeof(buf) - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
        if (strstr(buf, needle)) return true;
    }
    return false;
}

static void test_name_resolution(void **state)
{
    (void)state;
    /* "localhost" is resolved off the loop and connected to by address: the listener
     * sees the connection (an address that refuses moves on to the next one) */
    int port, ls = listener(&port);
    fixture_t f;
    make_at(&f, 10, "localhost", port);
    int c = -1;
    for (int i = 0; i < 40 && c < 0; i++) {
        run_for(&f, 0.05);
        c = accept(ls, NULL, NULL);
    }
    assert_true(c >= 0);
    assert_false(vg_mqtt_connected(f.m)); /* no CONNACK from a bare listener */
    close(c);
    close(ls);
    destroy(&f);

    /* a name that does not resolve: the failure is logged with the lookup's reason and
     * retried, and the loop keeps running meanwhile */
    char path[] = "/tmp/vigil-test-mqtt-log.XXXXXX";
    int log_fd = mkstemp(path);
    assert_true(log_fd >= 0);
    unlink(path);
    vg_log_set_level(VG_LOG_INFO);
    vg_log_set_fd(log_fd);
    make(&f, 10, "no-such-host.invalid");
    double t0 = vg_now_mono();
    bool failed = run_until_logged(
        &f, log_fd, "\"event\":\"connect_failed\",\"host\":\"no-such-host.invalid\"", 12);
    bool retried = run_until_logged(&f, log_fd, "\"event\":\"reconnect_scheduled\"", 2);
    vg_log_set_fd(2);
    vg_log_set_level(VG_LOG_ERROR);
    close(log_fd);
    assert_true(failed);
    assert_true(retried);
    assert_true(vg_now_mono() - t0 < 14);
    destroy(&f); /* with a lookup possibly still running */
}

static void test_free_without_stop(void **state)
{
    (void)state;
    fixture_t f;
    make(&f, 10, "127.0.0.1");
    double shut = dropped("shutdown");
    vg_mqtt_publish(f.m, "a", "1", 1, 1, false, VG_MQTT_INFERENCE);
    vg_mqtt_publish(f.m, "a", "2", 1, 2, false, VG_MQTT_INFERENCE);
    destroy(&f);
    assert_int_equal(dropped("shutdown"), shut + 2);
    vg_mqtt_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_offline_queueing),
        cmocka_unit_test(test_events_offline),
        cmocka_unit_test(test_stop_times_out),
        cmocka_unit_test(test_stop_with_nothing_pending),
        cmocka_unit_test(test_name_resolution),
        cmocka_unit_test(test_free_without_stop),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
