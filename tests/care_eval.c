/* care_eval.c — measures pose + posture + tracking on labelled clips, offline: decodes
 * each clip with ffmpeg (all frames, or --fps N), runs MultiPose on every frame, classifies
 * each person's posture, feeds the people to a per-clip tracker, and prints per clip:
 * a posture confusion table for the most confident person (truth from labels.json:
 * upright before fall_start, down after fall_end, each widened by --guard seconds; walk
 * clips upright throughout), whether a track is lying or sitting within 3 s of fall_end,
 * and whether a track down 1 s after fall_end was upright before fall_start (one person,
 * one track_id, through the fall).
 * One thread (OpenCV too, as in the daemon's executors), everything on stdout.
 *
 * --hold S holds each clip's last frame S seconds longer, as camsim serving a tpad'ed clip
 * would (a room camera keeps watching the person on the floor).
 *
 * --check exits 1 unless every fall clip has a track down within 3 s of fall_end, at least
 * 4 of them (or all, when fewer) keep one track through the fall, and no clip without a
 * fall ever has a lying track (issue 14's bar, offline).
 * --lightning ONNX runs Lightning on a crop around each track seen in the last second and
 * MultiPose only when there is none or a crop loses its person.
 *
 *   vigil-care-eval [--fps N] [--guard S] [--hold S] [--model ONNX] [--lightning ONNX]
 *                   [--check] [-v] labels.json clip...
 */
#include "vigil/common.h"
#include "vigil/pose.h"
#include "vigil/posture.h"
#include "vigil/track.h"

#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_UPRIGHT, T_DOWN, T_N };                                /* truth */
enum { P_UPRIGHT, P_SITTING, P_LYING, P_UNKNOWN, P_NONE, P_N }; /* prediction */
static const char *const truth_names[T_N] = {"upright", "down"};
static const char *const pred_names[P_N] = {"upright", "sitting", "lying", "unknown", "none"};

typedef struct {
    double fps, guard, hold;
    const char *model;
    int verbose, check;
    vg_pose_model_t *lightning; /* --lightning: on crops around tracks, MultiPose otherwise */
} opts_t;

static int runs_multi, runs_single;
static double ms_multi, ms_single;

typedef struct {
    const char *name;
    bool fall;
    double fall_start, fall_end;
    int confusion[T_N][P_N];
    double first_down_t; /* first time a track is lying/sitting after fall_start */
    int64_t same_id;     /* a track down after the fall that was upright before it, or -1 */
    bool judged;         /* same_id looked for (the first sample 1 s past fall_end) */
    int n_frames;
    int after, after_down; /* samples past fall_end + guard; those with a track down */
    int lying;             /* samples with a live track lying (what a walk must never have) */
} clip_t;

static int total[T_N][P_N];

static FILE *open_frames(const char *path, double fps, double hold, int *w, int *h, double *rate)
{
    char *cmd = vg_xasprintf("ffprobe -v error -select_streams v:0 -show_entries "
                             "stream=width,height,r_frame_rate -of csv=p=0 '%s'",
                             path);
    FILE *p = popen(cmd, "r");
    free(cmd);
    int num = 0, den = 1;
    if (!p || fscanf(p, "%d,%d,%d/%d", w, h, &num, &den) != 4) {
        fprintf(stderr, "ffprobe failed on %s\n", path);
        exit(2);
    }
    pclose(p);
    *rate = fps > 0 ? fps : (double)num / den;
    char vf[128];
    snprintf(vf, sizeof(vf), "-vf tpad=stop_mode=clone:stop_duration=%g", hold);
    if (fps > 0) snprintf(vf + strlen(vf), sizeof(vf) - strlen(vf), ",fps=%g", fps);
    cmd = vg_xasprintf("ffmpeg -v error -i '%s' %s -f rawvideo -pix_fmt bgr24 -", path, vf);
    p = popen(cmd, "r");
    free(cmd);
    return p;
}

static int predicted(const vg_pose_t *p, size_t n, int w, int h)
{
    if (n == 0) return P_NONE;
    vg_posture_result_t r = vg_posture_classify(p[0].kp, p[0].box, w, h);
    return r.posture == VG_POSTURE_UPRIGHT   ? P_UPRIGHT
           : r.posture == VG_POSTURE_SITTING ? P_SITTING
           : r.posture == VG_POSTURE_LYING   ? P_LYING
                                             : P_UNKNOWN;
}

static int truth_at(const clip_t *c, double t, double guard)
{
    if (!c->fall) return T_UPRIGHT;
    if (t < c->fall_start - guard) return T_UPRIGHT;
    if (t > c->fall_end + guard) return T_DOWN;
    return -1;
}

/* Down now, and upright at some time before the fall started. */
static bool was_upright_then_down(const vg_track_t *k, double fall_start)
{
    if (k->posture != VG_POSTURE_LYING && k->posture != VG_POSTURE_SITTING) return false;
    for (size_t i = 0; i < k->n_history; i++)
        if (k->history[i].posture == VG_POSTURE_UPRIGHT && k->history[i].t < fall_start)
            return true;
    return false;
}

static void track_step(clip_t *c, vg_tracker_t *tr, const vg_pose_t *p, size_t n, int w, int h,
                       double t, const opts_t *o)
{
    vg_track_obs_t obs[VG_POSE_MAX_PEOPLE];
    for (size_t i = 0; i < n; i++) {
        vg_posture_result_t r = vg_posture_classify(p[i].kp, p[i].box, w, h);
        obs[i] = (vg_track_obs_t){p[i].box, p[i].score, VG_TRACK_SRC_POSE, r.posture, r.confidence};
    }
    int64_t ids[VG_POSE_MAX_PEOPLE];
    vg_tracker_update(tr, t, obs, n, ids);
    vg_track_t tracks[VG_TRACK_MAX];
    size_t nt = vg_tracker_tracks(tr, tracks, VG_TRACK_MAX);
    bool any_down = false, lying_now = false;
    for (size_t i = 0; i < nt; i++) {
        vg_posture_t s = tracks[i].posture;
        bool down = s == VG_POSTURE_LYING || s == VG_POSTURE_SITTING;
        if (c->fall && down && tracks[i].last_seen >= t && t >= c->fall_start &&
            isnan(c->first_down_t))
            c->first_down_t = t;
        any_down |= down;
        lying_now |= s == VG_POSTURE_LYING && tracks[i].last_seen >= t;
    }
    c->lying += lying_now;
    if (c->fall && t > c->fall_end + o->guard) {
        c->after++;
        c->after_down += any_down;
    }
    if (c->fall && t > c->fall_end + 1.0 && !c->judged) {
        c->judged = true;
        for (size_t i = 0; i < nt && c->same_id < 0; i++)
            if (was_upright_then_down(&tracks[i], c->fall_start)) c->same_id = tracks[i].id;
    }
    if (o->verbose)
        for (size_t i = 0; i < nt; i++)
            printf("  track t=%.2f id=%lld %s (%.2f) seen=%.2f box %.2f %.2f %.2f %.2f\n", t,
                   (long long)tracks[i].id, vg_posture_name(tracks[i].posture),
                   tracks[i].posture_confidence, tracks[i].last_seen, tracks[i].box.x,
                   tracks[i].box.y, tracks[i].box.w, tracks[i].box.h);
}

static void verbose_frame(double t, int truth, const vg_pose_t *p, size_t n, int w, int h)
{
    printf("t=%.2f truth=%s n=%zu", t, truth >= 0 ? truth_names[truth] : "-", n);
    for (size_t i = 0; i < n; i++) {
        vg_posture_result_t r = vg_posture_classify(p[i].kp, p[i].box, w, h);
        printf(
            " | %.2f %s %.2f [%s] torso=%.0f body=%.0f thigh=%.2f ratio=%.2f legs=%.0f aspect=%.2f",
            p[i].score, vg_posture_name(r.posture), r.confidence, r.rule, r.torso_deg, r.body_deg,
            r.thigh_drop, r.torso_ratio, r.leg_deg, r.box_aspect);
    }
    printf("\n");
}

#define LIGHTNING_MIN_SCORE 0.25f /* a crop's pose is kept when its mean score is this */

/* Lightning on a crop around every track seen in the last second; MultiPose on the whole
 * frame when there is none or a crop finds nobody. */
static size_t estimate(vg_pose_model_t *m, const opts_t *o, vg_tracker_t *tr, const uint8_t *bgr,
                       int w, int h, double t, vg_pose_t *poses)
{
    vg_track_t tracks[VG_TRACK_MAX];
    size_t nt = o->lightning ? vg_tracker_tracks(tr, tracks, VG_TRACK_MAX) : 0, n = 0, got = 0;
    double ms = 0;
    bool lost = false;
    for (size_t i = 0; i < nt && n < VG_POSE_MAX_PEOPLE; i++) {
        if (t - tracks[i].last_seen > 1.0) continue;
        vg_box_t crop = vg_pose_crop_box(tracks[i].box, w, h);
        VG_CHECK(vg_pose_run(o->lightning, bgr, w, h, 3 * w, &crop, 0, &poses[n], 1, &got, &ms) ==
                 0);
        runs_single++;
        ms_single += ms;
        if (got && poses[n].score >= LIGHTNING_MIN_SCORE)
            n++;
        else
            lost = true;
    }
    if (n > 0 && !lost) return n;
    VG_CHECK(vg_pose_run(m, bgr, w, h, 3 * w, NULL, 0.2f, poses, VG_POSE_MAX_PEOPLE, &n, &ms) == 0);
    runs_multi++;
    ms_multi += ms;
    return n;
}

static void run_clip(clip_t *c, const char *path, vg_pose_model_t *m, const opts_t *o)
{
    int w = 0, h = 0;
    double rate = 0;
    FILE *p = open_frames(path, o->fps, o->hold, &w, &h, &rate);
    size_t size = (size_t)w * h * 3;
    uint8_t *bgr = vg_xmalloc(size);
    vg_tracker_cfg_t tc = {.view_aspect = (float)w / (float)h};
    vg_tracker_t *tr = vg_tracker_new(&tc);
    for (int i = 0; fread(bgr, 1, size, p) == size; i++) {
        double t = i / rate;
        vg_pose_t poses[VG_POSE_MAX_PEOPLE];
        size_t n = estimate(m, o, tr, bgr, w, h, t, poses);
        int truth = truth_at(c, t, o->guard);
        if (truth >= 0) {
            c->confusion[truth][predicted(poses, n, w, h)]++;
            total[truth][predicted(poses, n, w, h)]++;
        }
        if (o->verbose) verbose_frame(t, truth, poses, n, w, h);
        track_step(c, tr, poses, n, w, h, t, o);
        c->n_frames++;
    }
    vg_tracker_free(tr);
    pclose(p);
    free(bgr);
}

static void print_confusion(const char *name, int conf[T_N][P_N])
{
    printf("%-16s", name);
    for (int t = 0; t < T_N; t++) {
        printf(" %s:", truth_names[t]);
        for (int p = 0; p < P_N; p++)
            if (conf[t][p]) printf(" %s=%d", pred_names[p], conf[t][p]);
    }
    printf("\n");
}

static void load_label(clip_t *c, json_t *labels)
{
    json_t *l = json_object_get(labels, c->name);
    const char *kind = json_string_value(json_object_get(l, "kind"));
    c->fall = kind && strcmp(kind, "fall") == 0;
    c->fall_start = json_number_value(json_object_get(l, "fall_start"));
    c->fall_end = json_number_value(json_object_get(l, "fall_end"));
    c->first_down_t = NAN;
    c->same_id = -1;
}

static void report_clip(const clip_t *c)
{
    print_confusion(c->name, (int(*)[P_N])c->confusion);
    if (!c->fall) {
        printf("%-16s samples with a track lying: %d of %d\n", c->name, c->lying, c->n_frames);
        return;
    }
    double lag = c->first_down_t - c->fall_end;
    printf("%-16s down_within_3s=%s (first down at %.2f s, %+.2f s from fall_end) "
           "same_track=%s (id %lld) down_after_fall=%d/%d samples\n",
           c->name, !isnan(lag) && lag <= 3.0 ? "yes" : "no", c->first_down_t, lag,
           c->same_id > 0 ? "yes" : "no", (long long)c->same_id, c->after_down, c->after);
}

static vg_pose_model_t *load(const char *path, int input_size)
{
    vg_pose_spec_t spec = {path, path, input_size};
    vg_pose_model_t *m = NULL;
    char err[256];
    if (vg_pose_new(&spec, &m, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
    return m;
}

int main(int argc, char **argv)
{
    opts_t o = {.guard = 0.5};
    vg_detector_set_threads(1); /* as the daemon's inference executors run */
    static const struct option longs[] = {{"fps", required_argument, NULL, 'f'},
                                          {"guard", required_argument, NULL, 'g'},
                                          {"hold", required_argument, NULL, 'h'},
                                          {"model", required_argument, NULL, 'm'},
                                          {"lightning", required_argument, NULL, 'l'},
                                          {"check", no_argument, NULL, 'c'},
                                          {NULL, 0, NULL, 0}};
    for (int c; (c = getopt_long(argc, argv, "v", longs, NULL)) != -1;) {
        if (c == 'f')
            o.fps = atof(optarg);
        else if (c == 'g')
            o.guard = atof(optarg);
        else if (c == 'h')
            o.hold = atof(optarg);
        else if (c == 'm')
            o.model = optarg;
        else if (c == 'l')
            o.lightning = load(optarg, 192);
        else if (c == 'v')
            o.verbose = 1;
        else if (c == 'c')
            o.check = 1;
        else
            return 2;
    }
    if (argc - optind < 2) {
        fprintf(stderr,
                "usage: %s [--fps N] [--guard S] [--hold S] [--model ONNX] [--lightning ONNX] "
                "[--check] [-v] labels.json clip...\n",
                argv[0]);
        return 2;
    }
    json_error_t jerr;
    json_t *labels = json_load_file(argv[optind], 0, &jerr);
    if (!labels) return fprintf(stderr, "%s: %s\n", argv[optind], jerr.text), 2;
    char *dir = vg_xstrdup(argv[optind]);
    char *model =
        o.model ? vg_xstrdup(o.model)
                : vg_xasprintf("%s/../../models/pose/movenet-multipose-256.onnx", dirname(dir));
    free(dir);
    vg_pose_model_t *m = load(model, 256);
    int n_down = 0, n_same = 0, n_fall = 0, n_lying_no_fall = 0;
    for (int i = optind + 1; i < argc; i++) {
        clip_t c = {.name = basename(argv[i])};
        load_label(&c, labels);
        if (o.verbose) printf("== %s\n", c.name);
        run_clip(&c, argv[i], m, &o);
        report_clip(&c);
        n_fall += c.fall;
        n_down += c.fall && c.first_down_t - c.fall_end <= 3.0;
        n_same += c.fall && c.same_id > 0;
        n_lying_no_fall += c.fall ? 0 : c.lying;
    }
    print_confusion("all", total);
    printf("forward passes: MultiPose %d (%.1f ms mean), Lightning %d (%.1f ms mean)\n", runs_multi,
           runs_multi ? ms_multi / runs_multi : 0.0, runs_single,
           runs_single ? ms_single / runs_single : 0.0);
    printf("falls: %d; down within 3 s of fall_end: %d; same track through the fall: %d\n", n_fall,
           n_down, n_same);
    vg_pose_free(m);
    vg_pose_free(o.lightning);
    json_decref(labels);
    free(model);
    bool ok = n_down == n_fall && n_same >= (n_fall < 4 ? n_fall : 4) && n_lying_no_fall == 0;
    if (o.check) printf("check: %s\n", ok ? "pass" : "FAIL");
    return o.check && !ok ? 1 : 0;
}
