/* mqtt_client_driver.c — drives vg_mqtt on a libevent loop for the integration tests.
 *
 * Subscribes to --sub and echoes every message to --echo (QoS 1, control class);
 * publishes 1, 2, 3, ... to --seq-topic at --rate per second (QoS --seq-qos, inference
 * class); with --status-topic publishes a retained {"status":"online"} after every
 * connect and, on SIGTERM/SIGINT, a final {"status":"offline","reason":"shutdown"}
 * before a graceful vg_mqtt_stop(). Prints a "stats ..." line every 0.5 s and the
 * Prometheus exposition between "metrics-begin"/"metrics-end" on SIGUSR1. Logs go to
 * stderr.
 *
 * With --cmd-fifo, reads one command per line from that FIFO (kept open, so commands
 * work while the broker is away) and answers "cmd-done N rc=RC" (N counts commands):
 *   event STREAM_ID JSON   vg_mqtt_publish_event (needs --instance)
 *   alarms JSON            vg_mqtt_set_alarms
 *   flood N                N messages 1..N (prefixed "f") to --seq-topic, QoS 1, inference */
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/metrics.h"
#include "vigil/mqtt.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    struct event_base *base;
    vg_mqtt_t *m;
    const char *sub, *echo, *seq_topic, *status_topic;
    int seq_qos;
    long seq, n_cmds, flooded;
    double stop_timeout_s;
    struct event *seq_timer, *stats_timer, *cmd_ev;
    char cmd_buf[65536];
    size_t cmd_len;
    int exit_code;
} driver_t;

static void on_connect(void *arg)
{
    driver_t *d = arg;
    if (d->status_topic) {
        static const char online[] = "{\"status\":\"online\"}";
        vg_mqtt_publish(d->m, d->status_topic, online, strlen(online), 1, true, VG_MQTT_CONTROL);
    }
}

static void on_message(void *arg, const char *topic, const void *payload, size_t len)
{
    driver_t *d = arg;
    if (d->echo && strcmp(topic, d->sub) == 0)
        vg_mqtt_publish(d->m, d->echo, payload, len, 1, false, VG_MQTT_CONTROL);
}

static void on_stopped(void *arg)
{
    driver_t *d = arg;
    event_base_loopexit(d->base, NULL);
}

static void print_stats(driver_t *d)
{
    printf("stats seq=%ld connected=%d outbox=%zu inflight=%zu events=%zu\n", d->seq,
           vg_mqtt_connected(d->m), vg_mqtt_outbox_len(d->m), vg_mqtt_inflight_len(d->m),
           vg_mqtt_events_pending(d->m));
    fflush(stdout);
}

static void on_seq(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    driver_t *d = arg;
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%ld", d->seq + 1);
    if (vg_mqtt_publish(d->m, d->seq_topic, buf, (size_t)n, d->seq_qos, false, VG_MQTT_INFERENCE) ==
        0)
        d->seq++;
}

static int run_flood(driver_t *d, long n)
{
    int rc = 0;
    for (long i = 0; i < n && rc == 0; i++) {
        char buf[32];
        int len = snprintf(buf, sizeof(buf), "f%ld", ++d->flooded);
        rc = vg_mqtt_publish(d->m, d->seq_topic, buf, (size_t)len, 1, false, VG_MQTT_INFERENCE);
    }
    return rc;
}

/* One command line (NUL-terminated, no newline). */
static void run_cmd(driver_t *d, char *line)
{
    char *arg = strchr(line, ' ');
    int rc = -1;
    if (arg) *arg++ = '\0';
    if (arg && strcmp(line, "event") == 0) {
        char *json = strchr(arg, ' ');
        if (json) {
            *json++ = '\0';
            rc = vg_mqtt_publish_event(d->m, arg, json);
        }
    } else if (arg && strcmp(line, "alarms") == 0) {
        rc = vg_mqtt_set_alarms(d->m, arg);
    } else if (arg && strcmp(line, "flood") == 0) {
        rc = run_flood(d, atol(arg));
    }
    printf("cmd-done %ld rc=%d\n", ++d->n_cmds, rc);
    fflush(stdout);
}

static void on_cmd(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    driver_t *d = arg;
    ssize_t n = read(fd, d->cmd_buf + d->cmd_len, sizeof(d->cmd_buf) - 1 - d->cmd_len);
    if (n <= 0) return;
    d->cmd_len += (size_t)n;
    char *nl;
    while ((nl = memchr(d->cmd_buf, '\n', d->cmd_len))) {
        *nl = '\0';
        run_cmd(d, d->cmd_buf);
        size_t used = (size_t)(nl + 1 - d->cmd_buf);
        memmove(d->cmd_buf, nl + 1, d->cmd_len - used);
        d->cmd_len -= used;
    }
    if (d->cmd_len == sizeof(d->cmd_buf) - 1) d->cmd_len = 0; /* an over-long line: dropped */
}

static void on_stats(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    print_stats(arg);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    driver_t *d = arg;
    if (sig == SIGUSR1) {
        char *text = vg_metrics_render();
        printf("metrics-begin\n%smetrics-end\n", text);
        fflush(stdout);
        free(text);
        return;
    }
    event_del(d->seq_timer);
    print_stats(d);
    if (d->status_topic) {
        static const char offline[] = "{\"status\":\"offline\",\"reason\":\"shutdown\"}";
        vg_mqtt_publish(d->m, d->status_topic, offline, strlen(offline), 1, true, VG_MQTT_CONTROL);
    }
    vg_mqtt_stop(d->m, d->stop_timeout_s);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: vigil-mqtt-driver --port N [--host H] [--client-id ID] [--keepalive S]\n"
            "  [--outbox N] [--sub T] [--echo T] [--seq-topic T] [--rate HZ] [--seq-qos Q]\n"
            "  [--status-topic T] [--will-topic T] [--will-payload P] [--backoff MIN:MAX]\n"
            "  [--username U] [--password-file F] [--ca-file F] [--cert-file F]\n"
            "  [--key-file F] [--stop-timeout S] [--log-level L] [--cmd-fifo F]\n"
            "  [--instance ID] [--prefix P] [--event-reserve N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    driver_t d = {.sub = "test/in",
                  .echo = "test/echo",
                  .seq_topic = "test/seq",
                  .seq_qos = 1,
                  .stop_timeout_s = 3};
    vg_mqtt_cfg_t cfg = {.host = "127.0.0.1",
                         .client_id = "vigil-driver",
                         .keepalive_s = 5,
                         .outbox_limit = 1000,
                         .username = "",
                         .password_file = ""};
    vg_mqtt_hooks_t hooks = {
        .on_connect = on_connect, .on_message = on_message, .on_stopped = on_stopped, .arg = &d};
    double rate = 20, backoff_min = 0.5, backoff_max = 30;
    const char *cmd_fifo = NULL, *instance = NULL, *prefix = "care";
    long event_reserve = -1;
    static const struct option opts[] = {
        {"host", 1, 0, 'h'},          {"port", 1, 0, 'p'},
        {"client-id", 1, 0, 'i'},     {"keepalive", 1, 0, 'k'},
        {"outbox", 1, 0, 'o'},        {"sub", 1, 0, 's'},
        {"echo", 1, 0, 'e'},          {"seq-topic", 1, 0, 't'},
        {"rate", 1, 0, 'r'},          {"seq-qos", 1, 0, 'q'},
        {"status-topic", 1, 0, 'S'},  {"will-topic", 1, 0, 'w'},
        {"will-payload", 1, 0, 'W'},  {"backoff", 1, 0, 'b'},
        {"username", 1, 0, 'u'},      {"password-file", 1, 0, 'P'},
        {"ca-file", 1, 0, 'C'},       {"cert-file", 1, 0, 'c'},
        {"key-file", 1, 0, 'K'},      {"stop-timeout", 1, 0, 'T'},
        {"log-level", 1, 0, 'l'},     {"cmd-fifo", 1, 0, 'F'},
        {"instance", 1, 0, 'I'},      {"prefix", 1, 0, 'x'},
        {"event-reserve", 1, 0, 'R'}, {0, 0, 0, 0},
    };
    int c;
    vg_log_level_t level = VG_LOG_INFO;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            cfg.host = optarg;
            break;
        case 'p':
            cfg.port = atoi(optarg);
            break;
        case 'i':
            cfg.client_id = optarg;
            break;
        case 'k':
            cfg.keepalive_s = atoi(optarg);
            break;
        case 'o':
            cfg.outbox_limit = atoi(optarg);
            break;
        case 's':
            d.sub = optarg;
            break;
        case 'e':
            d.echo = optarg;
            break;
        case 't':
            d.seq_topic = optarg;
            break;
        case 'r':
            rate = atof(optarg);
            break;
        case 'q':
            d.seq_qos = atoi(optarg);
            break;
        case 'S':
            d.status_topic = optarg;
            break;
        case 'w':
            hooks.will_topic = optarg;
            break;
        case 'W':
            hooks.will_payload = optarg;
            break;
        case 'b':
            if (sscanf(optarg, "%lf:%lf", &backoff_min, &backoff_max) != 2) usage();
            break;
        case 'u':
            cfg.username = optarg;
            break;
        case 'P':
            cfg.password_file = optarg;
            break;
        case 'C':
            cfg.tls.ca_file = optarg;
            break;
        case 'c':
            cfg.tls.cert_file = optarg;
            break;
        case 'K':
            cfg.tls.key_file = optarg;
            break;
        case 'T':
            d.stop_timeout_s = atof(optarg);
            break;
        case 'F':
            cmd_fifo = optarg;
            break;
        case 'I':
            instance = optarg;
            break;
        case 'x':
            prefix = optarg;
            break;
        case 'R':
            event_reserve = atol(optarg);
            break;
        case 'l':
            if (vg_log_level_parse(optarg, &level) != 0) usage();
            break;
        default:
            usage();
        }
    }
    if (cfg.port <= 0 || rate <= 0) usage();
    vg_log_set_level(level);
    VG_CHECK(evthread_use_pthreads() == 0);
    d.base = event_base_new();
    VG_CHECK(d.base);
    signal(SIGPIPE, SIG_IGN);
    if (vg_mqtt_new(d.base, &cfg, &hooks, &d.m) != 0) return 1;
    vg_mqtt_set_backoff(d.m, backoff_min, backoff_max, backoff_max);
    vg_mqtt_subscribe(d.m, d.sub, 1);
    if (instance && vg_mqtt_set_instance(d.m, prefix, instance) != 0) return 1;
    if (event_reserve >= 0) vg_mqtt_set_event_reserve(d.m, (size_t)event_reserve);
    if (cmd_fifo) {
        int fd = open(cmd_fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC); /* RDWR: never sees EOF */
        if (fd < 0) {
            perror(cmd_fifo);
            return 1;
        }
        d.cmd_ev = event_new(d.base, fd, EV_READ | EV_PERSIST, on_cmd, &d);
        event_add(d.cmd_ev, NULL);
    }

    d.seq_timer = event_new(d.base, -1, EV_PERSIST, on_seq, &d);
    d.stats_timer = event_new(d.base, -1, EV_PERSIST, on_stats, &d);
    struct event *sigs[] = {evsignal_new(d.base, SIGTERM, on_signal, &d),
                            evsignal_new(d.base, SIGINT, on_signal, &d),
                            evsignal_new(d.base, SIGUSR1, on_signal, &d)};
    double period = 1.0 / rate;
    struct timeval seq_tv = {(time_t)period, (suseconds_t)((period - (time_t)period) * 1e6)};
    struct timeval stats_tv = {0, 500000};
    event_add(d.seq_timer, &seq_tv);
    event_add(d.stats_timer, &stats_tv);
    for (size_t i = 0; i < VG_ARRAY_LEN(sigs); i++)
        event_add(sigs[i], NULL);

    event_base_dispatch(d.base);

    print_stats(&d);
    vg_mqtt_free(d.m);
    for (size_t i = 0; i < VG_ARRAY_LEN(sigs); i++)
        event_free(sigs[i]);
    event_free(d.seq_timer);
    event_free(d.stats_timer);
    if (d.cmd_ev) {
        close(event_get_fd(d.cmd_ev));
        event_free(d.cmd_ev);
    }
    event_base_free(d.base);
    return d.exit_code;
}
