/* Unit tests for mailbox.c: latest-wins, drop counting, refcounts, notification,
 * region conversion, snapshots, and a producer/consumer/snapshot stress (run it under
 * -DVIGIL_TSAN=ON too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <libavutil/frame.h>
#include <libswscale/swscale.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/common.h"
#include "vigil/mailbox.h"

static vg_frame_t *frame_seq(uint64_t seq)
{
    vg_frame_t *f = vg_frame_new();
    f->seq = seq;
    return f;
}

/* A yuv420p picture whose left half is dark grey (Y=40) and right half light (Y=200). */
static AVFrame *make_picture(int w, int h)
{
    AVFrame *av = av_frame_alloc();
    av->format = AV_PIX_FMT_YUV420P;
    av->width = w;
    av->height = h;
    assert_int_equal(av_frame_get_buffer(av, 0), 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            av->data[0][y * av->linesize[0] + x] = x < w / 2 ? 40 : 200;
    for (int p = 1; p < 3; p++)
        for (int y = 0; y < h / 2; y++)
            memset(av->data[p] + y * av->linesize[p], 128, (size_t)w / 2);
    return av;
}

static void test_latest_wins(void **state)
{
    (void)state;
    vg_mailbox_t *mb = vg_mailbox_new();
    assert_null(vg_mailbox_take(mb));
    assert_null(vg_mailbox_latest(mb));
    assert_false(vg_mailbox_post(mb, frame_seq(1)));
    assert_true(vg_mailbox_post(mb, frame_seq(2)));
    assert_true(vg_mailbox_post(mb, frame_seq(3)));
    vg_frame_t *f = vg_mailbox_take(mb);
    assert_non_null(f);
    assert_int_equal(f->seq, 3);
    assert_null(vg_mailbox_take(mb));
    vg_frame_t *l = vg_mailbox_latest(mb); /* still the newest after being taken */
    assert_ptr_equal(l, f);
    vg_frame_unref(l);
    vg_frame_unref(f);
    assert_false(vg_mailbox_post(mb, frame_seq(4))); /* slot was empty: no drop */
    assert_int_equal(vg_mailbox_posted(mb), 4);
    assert_int_equal(vg_mailbox_dropped(mb), 2);
    vg_mailbox_clear(mb);
    assert_null(vg_mailbox_take(mb));
    assert_null(vg_mailbox_latest(mb));
    assert_int_equal(vg_mailbox_dropped(mb), 2); /* clear is not a drop */
    vg_mailbox_post(mb, frame_seq(5));
    vg_mailbox_free(mb); /* frees the untaken frame (ASan would see a leak otherwise) */
    vg_mailbox_free(NULL);
}

static void test_refcount(void **state)
{
    (void)state;
    vg_frame_t *f = frame_seq(7);
    vg_frame_view_t *v = vg_frame_add_view(f, 10, 4);
    assert_non_null(v);
    assert_true(v->stride >= 30 && v->stride % 64 == 0);
    memset(v->data, 0xab, (size_t)v->stride * 4);
    assert_ptr_equal(vg_frame_ref(f), f);
    assert_ptr_equal(vg_frame_ref(f), f);
    vg_frame_unref(f);
    vg_frame_unref(f);
    assert_int_equal(f->views[0].data[29], 0xab); /* still alive: one reference left */
    for (int i = 1; i < VG_FRAME_MAX_VIEWS; i++)
        assert_non_null(vg_frame_add_view(f, 2, 2));
    assert_null(vg_frame_add_view(f, 2, 2));
    assert_int_equal(f->n_views, VG_FRAME_MAX_VIEWS);
    vg_frame_unref(f);
    vg_frame_unref(NULL);
}

static void count_notify(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void test_notify(void **state)
{
    (void)state;
    atomic_int n = 0;
    vg_mailbox_t *mb = vg_mailbox_new();
    vg_mailbox_set_notify(mb, count_notify, &n);
    vg_mailbox_post(mb, frame_seq(1));
    vg_mailbox_post(mb, frame_seq(2));
    assert_int_equal(atomic_load(&n), 2);
    vg_mailbox_set_notify(mb, NULL, NULL);
    vg_mailbox_post(mb, frame_seq(3));
    assert_int_equal(atomic_load(&n), 2);
    vg_mailbox_free(mb);
}

static void test_convert_region(void **state)
{
    (void)state;
    AVFrame *av = make_picture(64, 32);
    struct SwsContext *sws = NULL;
    uint8_t out[16 * 3 * 8];
    int rect[4];
    /* The right half, asked for at an odd origin: rounded down to the chroma grid. */
    assert_int_equal(vg_frame_convert_bgr(&sws, av, 33, 1, 31, 31, out, 16, 8, 48, rect), 0);
    assert_int_equal(rect[0], 32);
    assert_int_equal(rect[1], 0);
    assert_int_equal(rect[2], 32);
    assert_int_equal(rect[3], 32);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_in_range(out[i], 180, 215); /* Y=200 limited range, grey */
    /* Left half, and a region reaching past the picture is clamped. */
    assert_int_equal(vg_frame_convert_bgr(&sws, av, -8, 0, 40, 100, out, 16, 8, 48, rect), 0);
    assert_int_equal(rect[0], 0);
    assert_int_equal(rect[2], 32);
    assert_int_equal(rect[3], 32);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_in_range(out[i], 15, 40);
    /* Whole picture: both halves appear. */
    assert_int_equal(vg_frame_convert_bgr(&sws, av, 0, 0, 0, 0, out, 16, 8, 48, rect), 0);
    assert_int_equal(rect[2], 64);
    assert_true(out[0] < 60 && out[15 * 3] > 160);
    sws_freeContext(sws);
    av_frame_free(&av);
}

static void test_snapshot_only_newest(void **state)
{
    (void)state;
    vg_mailbox_t *mb = vg_mailbox_new();
    AVFrame *av = make_picture(64, 32);
    vg_frame_t *a = frame_seq(1);
    vg_frame_set_source(a, av);
    vg_mailbox_post(mb, vg_frame_ref(a));
    uint8_t *bgr = NULL;
    int w, h, stride;
    assert_int_equal(vg_frame_snapshot_bgr(a, 32, &bgr, &w, &h, &stride), 0);
    assert_int_equal(w, 32);
    assert_int_equal(h, 16);
    assert_true(stride >= 96);
    assert_true(bgr[0] < 60 && bgr[31 * 3] > 160);
    free(bgr);
    assert_int_equal(vg_frame_snapshot_bgr(a, 0, &bgr, &w, &h, &stride), 0);
    assert_int_equal(w, 64);
    free(bgr);

    vg_frame_t *b = frame_seq(2);
    vg_frame_set_source(b, av);
    vg_mailbox_post(mb, b);
    assert_int_equal(vg_frame_snapshot_bgr(a, 32, &bgr, &w, &h, &stride), VG_ENOTFOUND);
    vg_frame_t *l = vg_mailbox_latest(mb);
    assert_int_equal(l->seq, 2);
    assert_int_equal(vg_frame_snapshot_bgr(l, 32, &bgr, &w, &h, &stride), 0);
    free(bgr);
    vg_frame_unref(l);
    vg_frame_unref(a);
    av_frame_free(&av);
    vg_mailbox_free(mb);
}

/* ---- stress: one producer, one consumer, one snapshot reader ---- */

enum { STRESS_FRAMES = 20000 };

typedef struct {
    vg_mailbox_t *mb;
    AVFrame *picture;
    atomic_bool done;
    atomic_int notified;
    uint64_t taken;
    uint64_t snapshots;
} stress_t;

static void stress_notify(void *arg)
{
    atomic_fetch_add_explicit(&((stress_t *)arg)->notified, 1, memory_order_relaxed);
}

static void *stress_producer(void *arg)
{
    stress_t *s = arg;
    for (uint64_t i = 1; i <= STRESS_FRAMES; i++) {
        vg_frame_t *f = frame_seq(i);
        vg_frame_view_t *v = vg_frame_add_view(f, 4, 2);
        memset(v->data, (int)(i & 0xff), (size_t)v->stride * 2);
        if (i % 16 == 0) vg_frame_set_source(f, s->picture);
        vg_mailbox_post(s->mb, f);
        sched_yield(); /* let the consumers in: more interleavings, fewer drops */
    }
    atomic_store(&s->done, true);
    return NULL;
}

static void *stress_consumer(void *arg)
{
    stress_t *s = arg;
    uint64_t last = 0;
    for (;;) {
        bool done = atomic_load(&s->done);
        vg_frame_t *f = vg_mailbox_take(s->mb);
        if (!f) {
            if (done) break;
            continue;
        }
        VG_CHECK(f->seq > last); /* newest first, never an older frame again */
        VG_CHECK(f->views[0].data[0] == (uint8_t)(f->seq & 0xff));
        last = f->seq;
        s->taken++;
        vg_frame_unref(f);
    }
    return NULL;
}

static void *stress_snapshots(void *arg)
{
    stress_t *s = arg;
    while (!atomic_load(&s->done)) {
        vg_frame_t *f = vg_mailbox_latest(s->mb);
        uint8_t *bgr = NULL;
        int w, h, stride;
        if (f && vg_frame_snapshot_bgr(f, 16, &bgr, &w, &h, &stride) == 0) {
            VG_CHECK(w == 16 && h == 8);
            free(bgr);
            s->snapshots++;
        }
        vg_frame_unref(f);
    }
    return NULL;
}

static void test_stress(void **state)
{
    (void)state;
    stress_t s = {.mb = vg_mailbox_new(), .picture = make_picture(32, 16)};
    vg_mailbox_set_notify(s.mb, stress_notify, &s);
    pthread_t p, c, r;
    assert_int_equal(pthread_create(&c, NULL, stress_consumer, &s), 0);
    assert_int_equal(pthread_create(&r, NULL, stress_snapshots, &s), 0);
    assert_int_equal(pthread_create(&p, NULL, stress_producer, &s), 0);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    pthread_join(r, NULL);
    assert_int_equal(vg_mailbox_posted(s.mb), STRESS_FRAMES);
    assert_int_equal(atomic_load(&s.notified), STRESS_FRAMES);
    assert_int_equal(s.taken + vg_mailbox_dropped(s.mb), STRESS_FRAMES);
    assert_true(s.taken > 0);
    print_message("stress: taken %llu dropped %llu snapshots %llu\n", (unsigned long long)s.taken,
                  (unsigned long long)vg_mailbox_dropped(s.mb), (unsigned long long)s.snapshots);
    vg_mailbox_free(s.mb);
    av_frame_free(&s.picture);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latest_wins),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_notify),
        cmocka_unit_test(test_convert_region),
        cmocka_unit_test(test_snapshot_only_newest),
        cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
