/* bench_executor.c — the executor pool against a bare loop of forward passes, on the
 * same model and the same 320x320 BGR frame, in one process.
 *
 * bare:  one thread calls vg_detector_run() on the frame in a loop (what a forward-only
 *        program would do: blob, forward, YOLO decode, NMS).
 * pool:  vg_infer_new() with T executors, S attached mailboxes, one person_detector
 *        worker per stream. Closed loop: every result re-posts the frame to its
 *        stream's mailbox (from on_result, as capture would), so each stream always has
 *        exactly one frame waiting, the executors never idle and nothing is dropped.
 *        The re-posted frame is a prebuilt one (a new reference, no copy): building
 *        frames is capture's cost, measured by the capture benchmark.
 *        This counts everything the executor path adds: mailbox, scheduling, condvar
 *        wake-ups, the result JSON, metrics and the result hand-off.
 * bare2: T threads, each with its own detector, for the multi-thread reference.
 *
 * Rounds alternate bare/pool so both see the same machine noise (1-thread rounds, then
 * half as many T-thread rounds); each round reports
 * results, wall seconds and process CPU seconds (CLOCK_PROCESS_CPUTIME_ID, all threads)
 * over a window after warm-up. One "key=value ..." line per round on stdout; the
 * Python harness (bench_executor.py) turns them into ratios. Main thread only, except
 * on_result (executor threads) and the bare2 workers. */
#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/detector.h"
#include "vigil/infer.h"
#include "vigil/log.h"

#include <libswscale/swscale.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_STREAMS 64
#define SIZE 320

typedef struct {
    const char *models_dir;
    const char *image;
    double seconds; /* measured window per round */
    double warmup_s;
    int rounds;
    int streams;
    int threads;      /* for the pool-T and bare-T rounds; 1 always runs too */
    const char *only; /* NULL, "bare", "pool" */
} opts_t;

static uint8_t *frame_bgr; /* SIZE x SIZE, stride SIZE * 3 */

/* ---- clocks ---- */

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    double wall, cpu;
    long results;
} mark_t;

static void report(const char *mode, int threads, int streams, const mark_t *a, const mark_t *b)
{
    double wall = b->wall - a->wall, cpu = b->cpu - a->cpu;
    long n = b->results - a->results;
    printf("mode=%s threads=%d streams=%d results=%ld wall_s=%.4f cpu_s=%.4f "
           "results_per_s=%.2f wall_ms_per_result=%.3f cpu_ms_per_result=%.3f\n",
           mode, threads, streams, n, wall, cpu, n / wall, 1e3 * wall / (double)n,
           1e3 * cpu / (double)n);
    fflush(stdout);
}

/* ---- the frame ---- */

static int load_frame(const char *path)
{
    uint8_t *bgr = NULL;
    int w = 0, h = 0;
    if (vg_image_load(path, &bgr, &w, &h) != 0) {
        fprintf(stderr, "bench_executor: cannot load %s\n", path);
        return -1;
    }
    struct SwsContext *sws = sws_getContext(w, h, AV_PIX_FMT_BGR24, SIZE, SIZE, AV_PIX_FMT_BGR24,
                                            SWS_BILINEAR, NULL, NULL, NULL);
    VG_CHECK(sws != NULL);
    frame_bgr = vg_xcalloc(1, (size_t)SIZE * SIZE * 3);
    const uint8_t *src[4] = {bgr};
    int src_stride[4] = {w * 3};
    uint8_t *dst[4] = {frame_bgr};
    int dst_stride[4] = {SIZE * 3};
    sws_scale(sws, src, src_stride, 0, h, dst, dst_stride);
    sws_freeContext(sws);
    free(bgr);
    return 0;
}

static vg_frame_t *make_frame(uint64_t seq)
{
    vg_frame_t *f = vg_frame_new();
    vg_frame_view_t *v = vg_frame_add_view(f, SIZE, SIZE);
    for (int y = 0; y < SIZE; y++)
        memcpy(v->data + (size_t)y * (size_t)v->stride, frame_bgr + (size_t)y * SIZE * 3, SIZE * 3);
    v->x = v->y = 0;
    v->w = 1280;
    v->h = 720;
    f->src_width = 1280;
    f->src_height = 720;
    f->seq = seq;
    f->captured_at = vg_now_wall();
    f->captured_mono = vg_now_mono();
    return f;
}

/* ---- bare loop ---- */

static vg_detector_t *new_detector(const opts_t *o)
{
    char cfg[1024], weights[1024], labels[1024], err[512];
    snprintf(cfg, sizeof(cfg), "%s/yolo-fastest-1.1_body.cfg", o->models_dir);
    snprintf(weights, sizeof(weights), "%s/yolo-fastest-1.1_body.weights", o->models_dir);
    snprintf(labels, sizeof(labels), "%s/body.names", o->models_dir);
    vg_detector_spec_t spec = {.model_id = "yolo-fastest-body",
                               .format = "darknet",
                               .config_path = cfg,
                               .weights_path = weights,
                               .labels_path = labels,
                               .input_size = SIZE};
    vg_detector_t *d = NULL;
    if (vg_detector_new(&spec, &d, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_executor: %s\n", err);
        exit(1);
    }
    return d;
}

static int forward_once(vg_detector_t *d, int person)
{
    vg_detection_t dets[64];
    size_t n = 0;
    return vg_detector_run(d, frame_bgr, SIZE, SIZE, SIZE * 3, 0.5f, person, dets, 64, &n, NULL);
}

typedef struct {
    vg_detector_t *det;
    atomic_long *count;
    atomic_bool *stop;
} bare_thread_t;

static void *bare_thread(void *arg)
{
    bare_thread_t *b = arg;
    int person = vg_detector_class_id(b->det, "person");
    while (!atomic_load(b->stop)) {
        VG_CHECK(forward_once(b->det, person) == 0);
        atomic_fetch_add(b->count, 1);
    }
    return NULL;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static mark_t mark(atomic_long *count)
{
    return (mark_t){vg_now_mono(), cpu_now(), atomic_load(count)};
}

/* threads == 1 runs on the main thread itself (no thread hand-off at all). */
static void run_bare(const opts_t *o, int threads)
{
    atomic_long count = 0;
    atomic_bool stop = false;
    bare_thread_t b[16];
    pthread_t th[16];
    for (int i = 0; i < threads; i++)
        b[i] = (bare_thread_t){new_detector(o), &count, &stop};
    if (threads == 1) {
        int person = vg_detector_class_id(b[0].det, "person");
        double end_warm = vg_now_mono() + o->warmup_s;
        while (vg_now_mono() < end_warm)
            VG_CHECK(forward_once(b[0].det, person) == 0);
        mark_t a = mark(&count);
        double end = a.wall + o->seconds;
        while (vg_now_mono() < end) {
            VG_CHECK(forward_once(b[0].det, person) == 0);
            atomic_fetch_add(&count, 1);
        }
        mark_t z = mark(&count);
        report("bare", 1, 0, &a, &z);
    } else {
        for (int i = 0; i < threads; i++)
            VG_CHECK(pthread_create(&th[i], NULL, bare_thread, &b[i]) == 0);
        sleep_s(o->warmup_s);
        mark_t a = mark(&count);
        sleep_s(o->seconds);
        mark_t z = mark(&count);
        atomic_store(&stop, true);
        for (int i = 0; i < threads; i++)
            pthread_join(th[i], NULL);
        report("bare", threads, 0, &a, &z);
    }
    for (int i = 0; i < threads; i++)
        vg_detector_free(b[i].det);
}

/* ---- pool ---- */

static vg_mailbox_t *mbs[MAX_STREAMS];
static vg_frame_t *frames[MAX_STREAMS]; /* one prebuilt frame per stream, re-posted by ref */
static atomic_long pool_results;
static atomic_bool pool_stop;

static void on_result(void *arg, vg_infer_result_t *r)
{
    (void)arg;
    int idx = atoi(r->stream_id + 1);
    vg_infer_result_free(r);
    atomic_fetch_add(&pool_results, 1);
    if (!atomic_load(&pool_stop)) vg_mailbox_post(mbs[idx], vg_frame_ref(frames[idx]));
}

static vg_stream_spec_t *spec_for(int i)
{
    vg_stream_spec_t *s = vg_xcalloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->stream_id = vg_xasprintf("s%d", i);
    s->fps = 5;
    s->n_workers = 1;
    s->workers = vg_xcalloc(1, sizeof(*s->workers));
    s->workers[0].worker_id = vg_xstrdup("person_detector");
    s->workers[0].type = VG_WORKER_PERSON;
    s->workers[0].model_id = vg_xstrdup("yolo-fastest-body");
    s->workers[0].confidence_threshold = 0.5;
    s->workers[0].available = true;
    s->workers[0].view = 0;
    return s;
}

static void detached(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void run_pool(const opts_t *o, const vg_config_t *cfg, int threads)
{
    vg_infer_t *pool = NULL;
    vg_infer_cfg_t ic = {
        .instance_id = "bench", .threads = threads, .models = cfg, .on_result = on_result};
    VG_CHECK(vg_infer_new(&ic, &pool) == 0);
    atomic_store(&pool_results, 0);
    atomic_store(&pool_stop, false);
    vg_infer_stream_t *is[MAX_STREAMS];
    for (int i = 0; i < o->streams; i++) {
        mbs[i] = vg_mailbox_new();
        frames[i] = make_frame(1);
        vg_stream_spec_t *sp = spec_for(i);
        is[i] = vg_infer_attach(pool, mbs[i], sp);
        vg_stream_spec_unref(sp);
    }
    for (int i = 0; i < o->streams; i++)
        vg_mailbox_post(mbs[i], vg_frame_ref(frames[i]));
    /* warm-up: every executor has loaded its net and run a few frames */
    while (atomic_load(&pool_results) < 3L * threads)
        sleep_s(0.01);
    sleep_s(o->warmup_s);
    mark_t a = mark(&pool_results);
    sleep_s(o->seconds);
    mark_t z = mark(&pool_results);
    atomic_store(&pool_stop, true);
    atomic_int n_detached = 0;
    for (int i = 0; i < o->streams; i++)
        vg_infer_detach(is[i], detached, &n_detached);
    vg_infer_free(pool);
    VG_CHECK(atomic_load(&n_detached) == o->streams);
    uint64_t dropped = 0;
    for (int i = 0; i < o->streams; i++) {
        dropped += vg_mailbox_dropped(mbs[i]);
        vg_mailbox_free(mbs[i]);
        vg_frame_unref(frames[i]);
    }
    report("pool", threads, o->streams, &a, &z);
    if (dropped) printf("warning=pool_dropped frames=%llu\n", (unsigned long long)dropped);
}

static vg_config_t *load_cfg(const opts_t *o)
{
    char *yaml = vg_xasprintf("instance_id: bench\nmodels_dir: %s\nmodels:\n"
                              "  - {model_id: yolo-fastest-body, format: darknet, "
                              "config: yolo-fastest-1.1_body.cfg, "
                              "weights: yolo-fastest-1.1_body.weights, labels: body.names, "
                              "input_size: 320}\n",
                              o->models_dir);
    vg_diag_t d = {0};
    vg_config_t *cfg = NULL;
    int rc = vg_config_parse(yaml, strlen(yaml), "bench", ".", &cfg, &d);
    vg_diag_clear(&d);
    free(yaml);
    if (rc != 0) {
        fprintf(stderr, "bench_executor: bad model configuration\n");
        exit(1);
    }
    return cfg;
}

/* ---- main ---- */

static void usage(void)
{
    fprintf(stderr, "usage: vigil-bench-executor --models DIR --image FILE [--seconds S] "
                    "[--warmup S] [--rounds R] [--streams N] [--threads T] [--only bare|pool]\n");
    exit(2);
}

static void parse(int argc, char **argv, opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--models"))
            o->models_dir = v;
        else if (!strcmp(a, "--image"))
            o->image = v;
        else if (!strcmp(a, "--seconds"))
            o->seconds = atof(v);
        else if (!strcmp(a, "--warmup"))
            o->warmup_s = atof(v);
        else if (!strcmp(a, "--rounds"))
            o->rounds = atoi(v);
        else if (!strcmp(a, "--streams"))
            o->streams = atoi(v);
        else if (!strcmp(a, "--threads"))
            o->threads = atoi(v);
        else if (!strcmp(a, "--only"))
            o->only = v;
        else
            usage();
        i++;
    }
    if (!o->models_dir || !o->image || o->seconds <= 0 || o->rounds < 1 || o->streams < 1 ||
        o->streams > MAX_STREAMS || o->threads < 1 || o->threads > 16)
        usage();
}

int main(int argc, char **argv)
{
    opts_t o = {.seconds = 3, .warmup_s = 0.5, .rounds = 3, .streams = 4, .threads = 2};
    parse(argc, argv, &o);
    vg_log_set_level(VG_LOG_WARN);
    if (load_frame(o.image) != 0) return 1;
    vg_detector_set_threads(1); /* as the pool does: one OpenCV thread per caller */
    vg_config_t *cfg = load_cfg(&o);
    bool bare = !o.only || !strcmp(o.only, "bare");
    bool pool = !o.only || !strcmp(o.only, "pool");
    for (int r = 0; r < o.rounds; r++) {
        printf("round=%d\n", r);
        if (bare) run_bare(&o, 1);
        if (pool) run_pool(&o, cfg, 1);
    }
    for (int r = 0; o.threads > 1 && r < (o.rounds + 1) / 2; r++) {
        printf("round_mt=%d\n", r);
        if (bare) run_bare(&o, o.threads);
        if (pool) run_pool(&o, cfg, o.threads);
    }
    vg_config_free(cfg);
    free(frame_bgr);
    return 0;
}
