/* camsim.c — vigil-camsim: an RTSP camera simulator for tests and load generation.
 * Serves N cameras (rtsp://ADDR:PORT/cam0..) or named cameras (/NAME) from H.264 MP4
 * clips, looped forever in real time without re-encoding, with faults (freeze, outage,
 * disconnect) injected over a line protocol (control.c).
 * Threads: main runs the GLib main loop (RTSP server, control socket, signals); each
 * media pipeline has its own GStreamer streaming threads (camera.c). This file owns
 * the command line, startup order and shutdown order. Logs are JSON lines on stderr;
 * stdout carries only the "camsim ready" line. */
#include "camera.h"
#include "clip.h"
#include "control.h"

#include "vigil/common.h"
#include "vigil/log.h"

#include <getopt.h>
#include <stddef.h>
#include <glib-unix.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "camsim"
#define MAX_COUNT 1000

typedef struct {
    int port, count, control_port; /* control_port < 0: no control interface */
    int spread;                    /* 1: --count cameras start at spread-out keyframes */
    double fps;
    const char *clip, *bind, *log_level;
    GPtrArray *named; /* "NAME=FILE" strings, borrowed from argv */
} camsim_cfg_t;

typedef struct {
    GMainLoop *loop;
    GstRTSPServer *server;
    guint server_source;
    vg_camset_t *set;
    vg_ctl_t *ctl;
    GHashTable *clips; /* path -> vg_clip_t*, one load per distinct file */
} camsim_t;

/* ---- command line ------------------------------------------------------------------ */

typedef enum { ARG_INT, ARG_DOUBLE, ARG_STR, ARG_LIST, ARG_HELP } arg_kind_t;

/* One option: where its value goes and what range it takes; the table drives
 * getopt_long, the parser and the usage text. */
typedef struct {
    const char *name, *meta, *help;
    arg_kind_t kind;
    size_t offset; /* into camsim_cfg_t */
    double min, max;
} opt_def_t;

#define CFG(field) offsetof(camsim_cfg_t, field)
static const opt_def_t opt_defs[] = {
    {"port", "P", "RTSP port (0 picks a free one; see the ready line)", ARG_INT, CFG(port), 0,
     65535},
    {"count", "N", "serve N cameras /cam0 .. /cam{N-1} from --clip", ARG_INT, CFG(count), 1,
     MAX_COUNT},
    {"clip", "FILE", "H.264 MP4 clip for the --count cameras", ARG_STR, CFG(clip), 0, 0},
    {"camera", "NAME=FILE", "serve one camera at /NAME from FILE (repeatable)", ARG_LIST,
     CFG(named), 0, 0},
    {"spread", "0|1",
     "1: camera i of --count starts its clip at the keyframe (i x 0.618 mod 1) of the way "
     "in, so cameras looping one scene are busy at different moments, like separate rooms",
     ARG_INT, CFG(spread), 0, 1},
    {"fps", "F", "pace clips at F frames/s instead of their own rate", ARG_DOUBLE, CFG(fps), 0.1,
     240},
    {"bind", "ADDR", "RTSP listen address (default 127.0.0.1)", ARG_STR, CFG(bind), 0, 0},
    {"control", "PORT", "fault-injection line protocol on 127.0.0.1:PORT (0: any)", ARG_INT,
     CFG(control_port), 0, 65535},
    {"log-level", "LEVEL", "debug | info | warn | error (default info)", ARG_STR, CFG(log_level), 0,
     0},
    {"help", "", "this text", ARG_HELP, 0, 0, 0},
};

static void usage(FILE *to)
{
    fputs("usage: vigil-camsim --port P (--count N --clip FILE | --camera NAME=FILE ...)\n"
          "                    [--spread 0|1] [--fps F] [--bind ADDR] [--control PORT] "
          "[--log-level LEVEL]\n",
          to);
    for (size_t i = 0; i < VG_ARRAY_LEN(opt_defs); i++) {
        char left[32];
        snprintf(left, sizeof(left), "--%s %s", opt_defs[i].name, opt_defs[i].meta);
        fprintf(to, "  %-20s %s\n", left, opt_defs[i].help);
    }
}

static bool parse_number(const char *s, double min, double max, double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= min && v <= max)) return false;
    *out = v;
    return true;
}

/* Stores `arg` for option `def` into cfg. Returns false (after saying why) if it is bad. */
static bool apply_option(camsim_cfg_t *cfg, const opt_def_t *def, const char *arg)
{
    char *field = (char *)cfg + def->offset;
    double v = 0;
    bool ok = true;
    if (def->kind == ARG_INT || def->kind == ARG_DOUBLE) {
        ok = parse_number(arg, def->min, def->max, &v) && (def->kind == ARG_DOUBLE || v == (int)v);
        if (ok && def->kind == ARG_INT) *(int *)(void *)field = (int)v;
        if (ok && def->kind == ARG_DOUBLE) *(double *)(void *)field = v;
    } else if (def->kind == ARG_STR) {
        *(const char **)(void *)field = arg;
    } else if (def->kind == ARG_LIST) {
        ok = strchr(arg, '=') != NULL && arg[0] != '=';
        g_ptr_array_add(*(GPtrArray **)(void *)field, (char *)arg);
    }
    if (!ok) fprintf(stderr, "vigil-camsim: bad value '%s' for --%s\n", arg, def->name);
    return ok;
}

/* Returns 0 to run, 1 for a usage error, 2 for --help. */
static int parse_args(int argc, char **argv, camsim_cfg_t *cfg)
{
    struct option longopts[VG_ARRAY_LEN(opt_defs) + 1];
    for (size_t i = 0; i < VG_ARRAY_LEN(opt_defs); i++)
        longopts[i] = (struct option){
            opt_defs[i].name, opt_defs[i].kind == ARG_HELP ? no_argument : required_argument, NULL,
            (int)i};
    longopts[VG_ARRAY_LEN(opt_defs)] = (struct option){NULL, 0, NULL, 0};
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt < 0 || (size_t)opt >= VG_ARRAY_LEN(opt_defs)) goto usage; /* '?' */
        if (opt_defs[opt].kind == ARG_HELP) {
            usage(stdout);
            return 2;
        }
        if (!apply_option(cfg, &opt_defs[opt], optarg)) goto usage;
    }
    if (optind < argc || cfg->port < 0) goto usage;
    if ((cfg->count > 0) != (cfg->clip != NULL) || (cfg->count == 0 && cfg->named->len == 0))
        goto usage;
    vg_log_level_t level;
    if (vg_log_level_parse(cfg->log_level, &level) < 0) goto usage;
    vg_log_set_level(level);
    return 0;
usage:
    usage(stderr);
    return 1;
}

/* ---- startup ----------------------------------------------------------------------- */

/* Returns the clip for `path`, loading it on first use. Borrowed from the cache. */
static vg_clip_t *get_clip(camsim_t *sim, const char *path, double fps)
{
    vg_clip_t *clip = g_hash_table_lookup(sim->clips, path);
    if (!clip && vg_clip_load(path, fps, &clip) == VG_OK)
        g_hash_table_insert(sim->clips, g_strdup(path), clip);
    return clip;
}

static int add_camera(camsim_t *sim, const char *name, const char *path, double fps, double phase)
{
    vg_clip_t *clip = get_clip(sim, path, fps);
    if (!clip) return VG_EIO;
    int rc = vg_camset_add(sim->set, name, clip, phase);
    if (rc < 0)
        VG_ERROR(MOD, "bad_camera", "{s:s, s:s}", "camera", name, "reason",
                 rc == VG_EEXIST ? "duplicate name" : "name must be 1-64 of [A-Za-z0-9_.-]");
    return rc;
}

static int add_cameras(camsim_t *sim, const camsim_cfg_t *cfg)
{
    for (int i = 0; i < cfg->count; i++) {
        char name[32];
        snprintf(name, sizeof(name), "cam%d", i);
        /* golden-ratio steps: whatever N, the starts fill the loop evenly */
        double phase = cfg->spread ? fmod(i * 0.6180339887, 1.0) : 0;
        if (add_camera(sim, name, cfg->clip, cfg->fps, phase) < 0) return VG_EINVAL;
    }
    for (guint i = 0; i < cfg->named->len; i++) {
        const char *spec = g_ptr_array_index(cfg->named, i);
        const char *eq = strchr(spec, '=');
        char *name = g_strndup(spec, (gsize)(eq - spec));
        int rc = add_camera(sim, name, eq + 1, cfg->fps, 0);
        g_free(name);
        if (rc < 0) return VG_EINVAL;
    }
    return VG_OK;
}

static int start_server(camsim_t *sim, const camsim_cfg_t *cfg)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", cfg->port);
    gst_rtsp_server_set_address(sim->server, cfg->bind);
    gst_rtsp_server_set_service(sim->server, service);
    gst_rtsp_server_set_backlog(sim->server, 256);
    sim->server_source = gst_rtsp_server_attach(sim->server, NULL);
    if (sim->server_source == 0) {
        VG_ERROR(MOD, "rtsp_listen_failed", "{s:s, s:i}", "address", cfg->bind, "port", cfg->port);
        return VG_EIO;
    }
    return VG_OK;
}

static gboolean on_signal(gpointer user_data)
{
    camsim_t *sim = user_data;
    VG_INFO(MOD, "shutdown", NULL);
    g_main_loop_quit(sim->loop);
    return G_SOURCE_CONTINUE;
}

/* Builds everything in start order; returns VG_OK when ready to serve. */
static int camsim_start(camsim_t *sim, const camsim_cfg_t *cfg)
{
    sim->loop = g_main_loop_new(NULL, FALSE);
    sim->clips =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)vg_clip_unref);
    sim->server = gst_rtsp_server_new();
    sim->set = vg_camset_new(sim->server);
    if (add_cameras(sim, cfg) < 0 || start_server(sim, cfg) < 0) return VG_EINVAL;
    if (cfg->control_port >= 0 &&
        vg_ctl_start(sim->set, "127.0.0.1", cfg->control_port, &sim->ctl) < 0)
        return VG_EIO;
    g_unix_signal_add(SIGINT, on_signal, sim);
    g_unix_signal_add(SIGTERM, on_signal, sim);
    return VG_OK;
}

/* Tears down in reverse start order; safe on a partly started sim. */
static void camsim_stop(camsim_t *sim)
{
    vg_ctl_free(sim->ctl);
    if (sim->server_source) g_source_remove(sim->server_source);
    vg_camset_free(sim->set);
    if (sim->server) g_object_unref(sim->server);
    if (sim->clips) g_hash_table_destroy(sim->clips);
    if (sim->loop) g_main_loop_unref(sim->loop);
}

int main(int argc, char **argv)
{
    camsim_cfg_t cfg = {.control_port = -1,
                        .port = -1,
                        .bind = "127.0.0.1",
                        .log_level = "info",
                        .named = g_ptr_array_new()};
    camsim_t sim = {0};
    gst_init(&argc, &argv);
    int rc = parse_args(argc, argv, &cfg);
    if (rc != 0) {
        g_ptr_array_free(cfg.named, TRUE);
        return rc == 2 ? 0 : 2;
    }
    if (camsim_start(&sim, &cfg) == VG_OK) {
        int port = gst_rtsp_server_get_bound_port(sim.server);
        size_t n = vg_camset_len(sim.set);
        VG_INFO(MOD, "ready", "{s:s, s:i, s:i, s:i}", "bind", cfg.bind, "port", port, "cameras",
                (int)n, "control", sim.ctl ? vg_ctl_port(sim.ctl) : -1);
        printf("camsim ready port=%d cameras=%zu control=%d\n", port, n,
               sim.ctl ? vg_ctl_port(sim.ctl) : -1);
        fflush(stdout);
        g_main_loop_run(sim.loop);
    } else {
        rc = 1;
    }
    camsim_stop(&sim);
    g_ptr_array_free(cfg.named, TRUE);
    return rc;
}
