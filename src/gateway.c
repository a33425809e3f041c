/* gateway.c — owns the loop thread: the libevent base, the live configuration,
 * signals (TERM/INT drain and exit, HUP reload: gateway_reload.c), and the HTTP server with the
 * core routes. Start order: metrics, HTTP, streams; shutdown runs in reverse, bounded by a drain
 * timeout. Nothing here blocks: slow work runs on other threads. */
#include "vigil/gateway.h"
#include "gateway_internal.h"
#include "vigil/common.h"
#include "vigil/http.h"
#include "vigil/log.h"
#include "vigil/metrics.h"
#include "vigil/secret.h"

#include <errno.h>
#include <event2/thread.h>
#include <systemd/sd-daemon.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DRAIN_TIMEOUT_S 5

/* ---- core routes ---------------------------------------------------------------- */

static void h_healthz(vg_http_req_t *r, void *arg)
{
    (void)arg;
    vg_http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_readyz(vg_http_req_t *r, void *arg)
{
    vg_gateway_t *gw = arg;
    static const char *const names[] = {"starting", "ready", "draining"};
    vg_http_reply_json(r, gw->phase == GW_READY ? 200 : 503,
                       json_pack("{s:s}", "status", names[gw->phase]));
}

static void h_metrics(vg_http_req_t *r, void *arg)
{
    (void)arg;
    char *text = vg_metrics_render();
    vg_http_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
}

static const vg_http_route_t core_routes[] = {
    {"GET", "/healthz", h_healthz, VG_ACCESS_PUBLIC},
    {"GET", "/readyz", h_readyz, VG_ACCESS_PUBLIC},
    {"GET", "/metrics", h_metrics, VG_ACCESS_PUBLIC},
};

static int start_http(vg_gateway_t *gw)
{
    const vg_http_cfg_t *hc = &gw->cfg->http;
    char *token = NULL;
    if (*hc->auth_token_file && !(token = vg_secret_read_file(hc->auth_token_file, "http token")))
        return VG_EIO;
    vg_http_opts_t o = {
        .listen = hc->listen,
        .max_connections = hc->max_connections,
        .per_ip_connections = hc->max_connections,
        .timeout_s = 30,
        .memory_limit = 64 * 1024,
        .auth_token = token,
        .auth_reads = hc->auth_reads,
        .web_root = hc->web_root,
    };
    char err[256];
    int rc = vg_http_new(gw->base, &o, &gw->http, err, sizeof(err));
    free(token);
    if (rc != 0) {
        VG_ERROR("http", "listen_failed", "{s:s, s:s}", "listen", hc->listen, "error", err);
        return rc;
    }
    vg_http_add_routes(gw->http, core_routes, VG_ARRAY_LEN(core_routes), gw);
    VG_INFO("http", "listening", "{s:s}", "listen", hc->listen);
    return VG_OK;
}

/* ---- signals and shutdown ---------------------------------------------------------- */

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_gateway_t *gw = arg;
    VG_WARN("gateway", "drain_timeout", "{s:i}", "timeout_s", DRAIN_TIMEOUT_S);
    event_base_loopbreak(gw->base);
}

/* systemd: the watchdog is pinged from the loop itself, so a stuck loop gets restarted. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_gateway_t *gw = arg;
    sd_notifyf(0, "WATCHDOG=1\nSTATUS=%s, %zu streams", gw->status, vg_streams_count(gw->streams));
}

static void start_watchdog(vg_gateway_t *gw)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
    gw->watchdog_timer = event_new(gw->base, -1, EV_PERSIST, on_watchdog, gw);
    struct timeval tv = {(time_t)(usec / 2 / 1000000), (suseconds_t)(usec / 2 % 1000000)};
    event_add(gw->watchdog_timer, &tv);
}

static void mqtt_drained(void *arg)
{
    vg_gateway_t *gw = arg;
    event_base_loopexit(gw->base, NULL);
}

static void streams_drained(void *arg)
{
    vg_gateway_t *gw = arg; /* last: MQTT says "stopped" once the streams are gone */
    vg_gw_mqtt_drain(gw, mqtt_drained, gw);
}

static void begin_shutdown(vg_gateway_t *gw, const char *why)
{
    if (gw->phase == GW_DRAINING) return;
    gw->phase = GW_DRAINING;
    VG_INFO("gateway", "shutdown", "{s:s}", "signal", why);
    sd_notify(0, "STOPPING=1\nSTATUS=draining");
    struct timeval tv = {DRAIN_TIMEOUT_S, 0};
    evtimer_add(gw->drain_timer, &tv);
    vg_streams_stop_all(gw->streams, streams_drained, gw);
}

void vg_gw_on_status(void *arg, const char *status)
{
    vg_gateway_t *gw = arg;
    free(gw->status);
    gw->status = vg_xstrdup(status);
    vg_gw_publish_status(gw);
}

static void on_infer_result(void *arg, vg_infer_result_t *r)
{
    vg_gateway_t *gw = arg; /* executor thread: queue it for the loop */
    vg_streams_post_result(gw->streams, r);
}

static int on_ack_event(void *arg, const char *event_id, const char *by)
{
    return vg_gw_events_ack(arg, event_id, by);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    vg_gateway_t *gw = arg;
    if (sig == SIGHUP) {
        VG_INFO("gateway", "reload", "{s:s}", "path", gw->cfg->path);
        sd_notify(0, "RELOADING=1");
        vg_gw_reload(gw);
        sd_notify(0, "READY=1");
        return;
    }
    begin_shutdown(gw, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

int vg_gateway_new(vg_config_t *cfg, const char *log_level_override, vg_gateway_t **out)
{
    VG_CHECK(evthread_use_pthreads() == 0);
    vg_gateway_t *gw = vg_xcalloc(1, sizeof(*gw));
    gw->cfg = cfg;
    gw->log_level_override = vg_xstrdup(log_level_override);
    gw->started_at = vg_now_wall();
    gw->started_mono = vg_now_mono();
    gw->base = event_base_new();
    VG_CHECK(gw->base);
    signal(SIGPIPE, SIG_IGN);
    gw->sig_int = evsignal_new(gw->base, SIGINT, on_signal, gw);
    gw->sig_term = evsignal_new(gw->base, SIGTERM, on_signal, gw);
    gw->sig_hup = evsignal_new(gw->base, SIGHUP, on_signal, gw);
    gw->drain_timer = evtimer_new(gw->base, on_drain_timeout, gw);
    VG_CHECK(gw->sig_int && gw->sig_term && gw->sig_hup && gw->drain_timer);
    event_add(gw->sig_int, NULL);
    event_add(gw->sig_term, NULL);
    event_add(gw->sig_hup, NULL);

    vg_metrics_register_process();
    vg_metric_t *reloads = vg_metric_counter("vigil_config_reloads_total",
                                             "Configuration reloads by result", "result");
    gw->reloads_ok = vg_metric_series(reloads, "success");
    gw->reloads_failed = vg_metric_series(reloads, "failure");

    gw->status = vg_xstrdup("running");
    gw->q = vg_loopq_new(gw->base);
    gw->jobs = vg_jobs_new(gw->q);
    vg_infer_cfg_t ic = {.instance_id = cfg->instance_id,
                         .threads = cfg->inference_threads,
                         .models = cfg,
                         .jobs = gw->jobs,
                         .on_result = on_infer_result,
                         .arg = gw};
    VG_CHECK(vg_infer_new(&ic, &gw->pool) == 0);
    vg_streams_opts_t so = {.cfg = cfg,
                            .q = gw->q,
                            .pool = gw->pool,
                            .jobs = gw->jobs,
                            .on_result = vg_gw_on_result,
                            .on_state = vg_gw_on_state,
                            .arg = gw};
    gw->streams = vg_streams_new(&so);
    vg_control_opts_t co = {.cfg = cfg,
                            .streams = gw->streams,
                            .pool = gw->pool,
                            .q = gw->q,
                            .on_status = vg_gw_on_status,
                            .on_changed = vg_gw_on_changed,
                            .ack_event = on_ack_event,
                            .owns = vg_gw_owns_stream,
                            .arg = gw};
    gw->control = vg_control_new(&co);
    if (start_http(gw) != 0 || vg_gw_mqtt_start(gw) != 0) {
        vg_gateway_free(gw);
        return VG_EIO;
    }
    vg_rest_register(gw);
    vg_capacity_register(gw);
    if (cfg->state_file && *cfg->state_file)
        gw->statefile = vg_statefile_new(cfg->state_file, gw->jobs);
    vg_gw_streams_start(gw);
    if (vg_gw_events_start(gw) != 0) {
        vg_gateway_free(gw);
        return VG_EIO;
    }
    *out = gw;
    return VG_OK;
}

int vg_gateway_run(vg_gateway_t *gw)
{
    gw->phase = GW_READY;
    start_watchdog(gw);
    sd_notifyf(0, "READY=1\nSTATUS=running, %zu streams\nMAINPID=%lu",
               vg_streams_count(gw->streams), (unsigned long)getpid());
    VG_INFO("gateway", "started", "{s:s, s:s, s:i}", "instance_id", gw->cfg->instance_id, "version",
            VG_VERSION, "streams", (int)gw->cfg->n_streams);
    event_base_dispatch(gw->base);
    VG_INFO("gateway", "stopped", NULL);
    return 0;
}

void vg_gateway_free(vg_gateway_t *gw)
{
    if (!gw) return;
    /* Reverse start order; threads first, then what their queued messages point at.
     * Stopping the jobs runs the pending reaps (captures joined, streams detached from
     * the pool) and state writes, and cancels pending snapshots and model loads; their
     * completions, drained next, answer the suspended HTTP requests and commands. */
    vg_capacity_stop(gw);
    vg_gw_events_stop(gw);
    vg_streams_shutdown(gw->streams); /* queues the reaps of streams still running */
    if (gw->jobs) vg_jobs_stop(gw->jobs);
    if (gw->q) vg_loopq_drain(gw->q);
    vg_rest_free(gw);
    vg_gw_events_free(gw); /* journal and event snapshot jobs are done */
    vg_infer_free(gw->pool);
    if (gw->q) vg_loopq_drain(gw->q);
    vg_gw_mqtt_free(gw);
    vg_control_free(gw->control);
    vg_streams_free(gw->streams);
    vg_loopq_free(gw->q);
    vg_statefile_free(gw->statefile); /* a change saved after the stop was written at once */
    vg_jobs_free(gw->jobs);
    vg_http_free(gw->http);
    free(gw->status);
    struct event *evs[] = {gw->sig_int, gw->sig_term, gw->sig_hup, gw->drain_timer,
                           gw->watchdog_timer};
    for (size_t i = 0; i < VG_ARRAY_LEN(evs); i++)
        if (evs[i]) event_free(evs[i]);
    event_base_free(gw->base);
    vg_config_free(gw->cfg);
    free(gw->log_level_override);
    free(gw);
}
