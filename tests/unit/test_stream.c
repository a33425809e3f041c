/* Unit tests for stream.c, driving the real registry, capture threads, inference pool
 * and loop queue on a libevent base owned by the test (the test's thread is the loop).
 * Cameras are real: vigil-camsim serving a clip made with scripts/make-clip.sh, and a
 * refused port for a dead one. Covered: the capture state machine as the registry sees
 * it (connecting -> running, connecting -> reconnecting, running -> reconnecting ->
 * running on restart, nothing after removal), generations (a new one on every add,
 * re-add and URL change; the same across restarts and live changes), and state messages
 * of a removed stream never landing on a re-added one of the same id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/infer.h"
#include "vigil/jobs.h"
#include "vigil/log.h"
#include "vigil/loopq.h"
#include "vigil/stream.h"

#define DEAD "rtsp://127.0.0.1:1/dead"
#define MAX_SEEN 64

static char dir[256];
static char cam_url[128];
static pid_t camsim_pid;

typedef struct {
    struct event_base *base;
    vg_loopq_t *q;
    vg_jobs_t *jobs;
    vg_config_t *cfg;
    vg_infer_t *pool;
    vg_streams_t *ss;
    /* every state change the registry reported: stream id, generation, state */
    struct {
        char id[16];
        uint64_t gen;
        char state[16];
    } seen[MAX_SEEN];
    int n_seen;
    int results;
} fx_t;

static vg_streams_t *the_streams;

/* ---- camsim: one camera "a" serving a short clip ---- */

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

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static bool file_has(const char *path, const char *needle)
{
    char buf[4096] = "";
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, needle) != NULL;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vigil-test-stream.XXXXXX");
    assert_non_null(mkdtemp(dir));
    char *cmd =
        vg_xasprintf("CLIP_SECONDS=3 '%s/scripts/make-clip.sh' '%s/fixtures/person.jpg' "
                     "'%s/a.mp4' 320x180 10 1 >/dev/null 2>&1",
                     env_or("VIGIL_SOURCE_DIR", "."), env_or("VIGIL_SHARED_DIR", "../shared"), dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    int port = free_port();
    char *bin = vg_xasprintf("%s/vigil-camsim", env_or("VIGIL_BUILD_DIR", ".."));
    char *port_s = vg_xasprintf("%d", port);
    char *cam = vg_xasprintf("a=%s/a.mp4", dir);
    char *log = vg_xasprintf("%s/camsim.log", dir);
    camsim_pid = fork();
    assert_true(camsim_pid >= 0);
    if (camsim_pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        /* a peer, not under test: in a ThreadSanitizer build GStreamer's uninstrumented
         * threads look racy, and halt_on_error would stop the camera */
        setenv("TSAN_OPTIONS", "report_bugs=0", 1);
        execl(bin, bin, "--port", port_s, "--camera", cam, "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    bool ready = false;
    for (int i = 0; i < 150 && !ready; i++) {
        usleep(100000);
        ready = file_has(log, "camsim ready");
    }
    if (!ready) print_error("%s did not start (see %s)\n", bin, log);
    snprintf(cam_url, sizeof(cam_url), "rtsp://127.0.0.1:%d/a", port);
    free(bin);
    free(port_s);
    free(cam);
    free(log);
    return ready ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (camsim_pid > 0) {
        kill(camsim_pid, SIGTERM);
        waitpid(camsim_pid, NULL, 0);
    }
    char *cmd = vg_xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0) print_message("could not remove %s\n", dir);
    free(cmd);
    return 0;
}

/* ---- the registry on a test-owned loop ---- */

static void on_result(void *arg, vg_infer_result_t *r)
{
    (void)arg;
    vg_streams_post_result(the_streams, r);
}

static void on_stream_result(void *arg, vg_stream_t *s, const vg_infer_result_t *r)
{
    (void)s;
    (void)r;
    ((fx_t *)arg)->results++;
}

static void on_state(void *arg, vg_stream_t *s)
{
    fx_t *fx = arg;
    if (fx->n_seen == MAX_SEEN) return;
    snprintf(fx->seen[fx->n_seen].id, sizeof(fx->seen[0].id), "%s", vg_stream_id(s));
    fx->seen[fx->n_seen].gen = vg_stream_gen(s);
    snprintf(fx->seen[fx->n_seen].state, sizeof(fx->seen[0].state), "%s", vg_stream_state(s));
    fx->n_seen++;
}

static int setup(void **state)
{
    fx_t *fx = vg_xcalloc(1, sizeof(*fx));
    const char *yaml = "instance_id: t\nmqtt: {enabled: false}\n"
                       "capture: {reconnect_initial_s: 0.2, reconnect_max_s: 0.5}\n";
    vg_diag_t d = {0};
    assert_int_equal(vg_config_parse(yaml, strlen(yaml), "t", ".", &fx->cfg, &d), 0);
    vg_diag_clear(&d);
    fx->base = event_base_new();
    fx->q = vg_loopq_new(fx->base);
    fx->jobs = vg_jobs_new(fx->q);
    vg_infer_cfg_t ic = {.instance_id = "t",
                         .threads = 1,
                         .models = fx->cfg,
                         .on_result = on_result,
                         .jobs = fx->jobs};
    assert_int_equal(vg_infer_new(&ic, &fx->pool), 0);
    vg_streams_opts_t so = {.cfg = fx->cfg,
                            .q = fx->q,
                            .jobs = fx->jobs,
                            .pool = fx->pool,
                            .on_result = on_stream_result,
                            .on_state = on_state,
                            .arg = fx};
    fx->ss = the_streams = vg_streams_new(&so);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    vg_streams_shutdown(fx->ss);
    vg_jobs_stop(fx->jobs);
    vg_loopq_drain(fx->q);
    vg_infer_free(fx->pool);
    vg_loopq_drain(fx->q);
    vg_streams_free(fx->ss);
    vg_loopq_free(fx->q);
    vg_jobs_free(fx->jobs);
    event_base_free(fx->base);
    vg_config_free(fx->cfg);
    free(fx);
    return 0;
}

static vg_stream_t *add(fx_t *fx, const char *id, const char *url, double fps)
{
    char *yaml = vg_xasprintf("{stream_id: %s, url: \"%s\", fps: %g, workers: [{type: "
                              "motion_detector}]}",
                              id, url, fps);
    vg_diag_t d = {0};
    vg_stream_cfg_t *sc = NULL;
    vg_config_parse_stream(fx->cfg, yaml, strlen(yaml), &sc, &d);
    for (size_t i = 0; i < d.n_errors; i++)
        print_error("%s\n", d.errors[i]);
    vg_diag_clear(&d);
    free(yaml);
    assert_non_null(sc);
    assert_int_equal(vg_streams_add(fx->ss, sc, false), 0);
    vg_stream_cfg_free(sc);
    vg_stream_t *s = vg_streams_find(fx->ss, id);
    assert_non_null(s);
    return s;
}

/* Runs the loop until stream `id` is in `state` (looked up afresh each time), or 40 s
 * (a sanitizer build on a loaded machine). */
static bool run_until_state(fx_t *fx, const char *id, const char *state)
{
    for (double end = vg_now_mono() + 40; vg_now_mono() < end; usleep(5000)) {
        event_base_loop(fx->base, EVLOOP_NONBLOCK);
        vg_stream_t *s = vg_streams_find(fx->ss, id);
        if (s && strcmp(vg_stream_state(s), state) == 0) return true;
    }
    return false;
}

static void run_for(fx_t *fx, double seconds)
{
    for (double end = vg_now_mono() + seconds; vg_now_mono() < end; usleep(5000))
        event_base_loop(fx->base, EVLOOP_NONBLOCK);
}

/* Index of the first state change of (id, gen) into `state` from `from` on, or -1. */
static int seen_at(const fx_t *fx, int from, const char *id, uint64_t gen, const char *state)
{
    for (int i = from; i < fx->n_seen; i++)
        if (strcmp(fx->seen[i].id, id) == 0 && fx->seen[i].gen == gen &&
            strcmp(fx->seen[i].state, state) == 0)
            return i;
    return -1;
}

/* ---- state machine ---- */

static void test_dead_camera_reconnects(void **state)
{
    fx_t *fx = *state;
    vg_stream_t *s = add(fx, "dead", DEAD, 2);
    assert_string_equal(vg_stream_state(s), "connecting");
    assert_string_equal(vg_stream_error(s), "");
    assert_true(run_until_state(fx, "dead", "reconnecting"));
    s = vg_streams_find(fx->ss, "dead");
    assert_true(*vg_stream_error(s));
    uint64_t gen = vg_stream_gen(s);
    assert_true(seen_at(fx, 0, "dead", gen, "reconnecting") >= 0);
    assert_int_equal(seen_at(fx, 0, "dead", gen, "running"), -1);
    assert_int_equal(fx->results, 0);
}

static void test_live_camera_runs_restarts_and_stops(void **state)
{
    fx_t *fx = *state;
    vg_stream_t *s = add(fx, "a", cam_url, 5);
    uint64_t gen = vg_stream_gen(s);
    assert_true(run_until_state(fx, "a", "running"));
    assert_string_equal(vg_stream_error(vg_streams_find(fx->ss, "a")), "");
    for (double end = vg_now_mono() + 20; fx->results < 3 && vg_now_mono() < end;)
        run_for(fx, 0.05);
    assert_true(fx->results >= 3);
    assert_non_null(vg_stream_latest(vg_streams_find(fx->ss, "a"), NULL));
    /* restart: the same stream (same generation) reconnects and runs again */
    int mark = fx->n_seen;
    vg_stream_restart(vg_streams_find(fx->ss, "a"));
    assert_true(run_until_state(fx, "a", "reconnecting"));
    assert_true(run_until_state(fx, "a", "running"));
    assert_int_equal(vg_stream_gen(vg_streams_find(fx->ss, "a")), gen);
    int rec = seen_at(fx, mark, "a", gen, "reconnecting");
    assert_true(rec >= 0 && seen_at(fx, rec, "a", gen, "running") > rec);
    /* removed: gone at once, and no state change is reported for it afterwards */
    assert_int_equal(vg_streams_remove(fx->ss, "a"), 0);
    assert_null(vg_streams_find(fx->ss, "a"));
    assert_int_equal(vg_streams_remove(fx->ss, "a"), VG_ENOTFOUND);
    mark = fx->n_seen;
    int results = fx->results;
    run_for(fx, 1.0);
    assert_int_equal(fx->n_seen, mark);
    assert_int_equal(fx->results, results);
}

/* ---- generations ---- */

static void test_generations(void **state)
{
    fx_t *fx = *state;
    vg_stream_t *s = add(fx, "g", DEAD, 1);
    uint64_t g1 = vg_stream_gen(s);
    assert_true(g1 > 0);
    /* a second add of a live id is refused and changes nothing */
    vg_stream_cfg_t *dup = vg_stream_cfg_dup(vg_stream_cfg(s));
    assert_int_equal(vg_streams_add(fx->ss, dup, false), VG_EEXIST);
    assert_int_equal(vg_streams_count(fx->ss), 1);
    assert_ptr_equal(vg_streams_find(fx->ss, "g"), s);
    /* a live change (fps) keeps the stream and its generation */
    dup->fps = 3;
    assert_ptr_equal(vg_stream_apply(s, dup), s);
    assert_int_equal(vg_stream_gen(s), g1);
    assert_true(vg_stream_cfg(s)->fps == 3);
    /* restart keeps it too */
    vg_stream_restart(s);
    assert_int_equal(vg_stream_gen(vg_streams_find(fx->ss, "g")), g1);
    /* a new URL is a new camera: a new stream, a higher generation */
    free(dup->url);
    dup->url = vg_xstrdup("rtsp://127.0.0.1:1/other");
    vg_stream_t *s2 = vg_stream_apply(s, dup);
    uint64_t g2 = vg_stream_gen(s2);
    assert_true(g2 > g1);
    assert_string_equal(vg_stream_cfg(s2)->url, "rtsp://127.0.0.1:1/other");
    assert_int_equal(vg_streams_count(fx->ss), 1);
    /* remove and re-add the same id: higher again */
    assert_int_equal(vg_streams_remove(fx->ss, "g"), 0);
    uint64_t g3 = vg_stream_gen(add(fx, "g", DEAD, 1));
    assert_true(g3 > g2);
    /* another id takes its own, also new */
    assert_true(vg_stream_gen(add(fx, "h", DEAD, 1)) > g3);
    vg_stream_cfg_free(dup);
}

/* The removed stream's capture keeps posting until it is reaped; none of it may reach
 * the re-added stream of the same id. */
static void test_stale_state_dropped(void **state)
{
    fx_t *fx = *state;
    vg_stream_t *old = add(fx, "a", DEAD, 2);
    uint64_t g_old = vg_stream_gen(old);
    usleep(500000); /* its capture fails and queues "reconnecting"; the loop does not run */
    assert_int_equal(vg_streams_remove(fx->ss, "a"), 0);
    uint64_t g_new = vg_stream_gen(add(fx, "a", cam_url, 2));
    assert_true(g_new > g_old);
    assert_true(run_until_state(fx, "a", "running"));
    run_for(fx, 0.5);
    for (int i = 0; i < fx->n_seen; i++)
        if (strcmp(fx->seen[i].id, "a") == 0 && strcmp(fx->seen[i].state, "running") != 0 &&
            strcmp(fx->seen[i].state, "connecting") != 0)
            fail_msg("the re-added stream (generation %llu) went %s",
                     (unsigned long long)fx->seen[i].gen, fx->seen[i].state);
    assert_string_equal(vg_stream_error(vg_streams_find(fx->ss, "a")), "");
    assert_int_equal(vg_stream_gen(vg_streams_find(fx->ss, "a")), g_new);
}

int main(void)
{
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    vg_log_set_level(VG_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dead_camera_reconnects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_camera_runs_restarts_and_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_state_dropped, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
