/* Unit tests for outbox.c: order (highest class first, FIFO within a class), the drop
 * policy (oldest of the lowest class up to the incoming one's, else the incoming one),
 * the events' reserved share, retained replacement, limit 0, and the ledger of
 * messages awaiting their ack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/outbox.h"

#define I VG_OUTBOX_INFERENCE
#define C VG_OUTBOX_CONTROL
#define E VG_OUTBOX_EVENT
#define KEPT (-1)

/* Pushes a message whose payload is `name`; returns the class of the dropped message
 * (KEPT for none). Evicted messages are freed here, their names copied into the out
 * buffers ("" for none). */
static int push(vg_outbox_t *ob, const char *topic, const char *name, bool retain,
                vg_outbox_class_t cls, char *dropped, char *superseded)
{
    vg_outbox_evicted_t ev;
    vg_outbox_push(ob, vg_outbox_msg_new(topic, name, strlen(name), 1, retain, cls), &ev);
    snprintf(dropped, 32, "%s", ev.dropped ? (const char *)ev.dropped->payload : "");
    snprintf(superseded, 32, "%s", ev.superseded ? (const char *)ev.superseded->payload : "");
    int why = ev.dropped ? (int)ev.dropped->cls : KEPT;
    vg_outbox_msg_free(ev.dropped);
    vg_outbox_msg_free(ev.superseded);
    return why;
}

/* Pops everything and returns the payloads joined with ','. */
static void drain(vg_outbox_t *ob, char *out, size_t cap)
{
    out[0] = '\0';
    vg_outbox_msg_t *m;
    while ((m = vg_outbox_pop(ob))) {
        if (out[0]) strncat(out, ",", cap - strlen(out) - 1);
        strncat(out, m->payload, cap - strlen(out) - 1);
        vg_outbox_msg_free(m);
    }
}

static void test_fifo(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(10, 0);
    char d[32], s[32], all[256];
    assert_null(vg_outbox_peek(ob));
    assert_null(vg_outbox_pop(ob));
    for (int i = 0; i < 5; i++) {
        char name[8];
        snprintf(name, sizeof(name), "m%d", i);
        assert_int_equal(push(ob, "t", name, false, I, d, s), KEPT);
        assert_string_equal(d, "");
    }
    assert_int_equal(vg_outbox_len(ob), 5);
    assert_string_equal(vg_outbox_peek(ob)->payload, "m0");
    assert_int_equal(vg_outbox_peek(ob)->len, 2);
    drain(ob, all, sizeof(all));
    assert_string_equal(all, "m0,m1,m2,m3,m4");
    assert_int_equal(vg_outbox_len(ob), 0);
    vg_outbox_free(ob);
}

/* Events leave first, then control, then inference; each class in arrival order. */
static void test_priority_order(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(20, 5);
    char d[32], s[32], all[256];
    const char *names[] = {"i1", "c1", "e1", "i2", "e2", "c2", "i3", "e3"};
    const vg_outbox_class_t cls[] = {I, C, E, I, E, C, I, E};
    for (size_t k = 0; k < 8; k++)
        assert_int_equal(push(ob, "t", names[k], false, cls[k], d, s), KEPT);
    assert_int_equal(vg_outbox_class_len(ob, E), 3);
    assert_int_equal(vg_outbox_class_len(ob, C), 2);
    assert_int_equal(vg_outbox_class_len(ob, I), 3);
    assert_string_equal(vg_outbox_peek(ob)->payload, "e1");
    drain(ob, all, sizeof(all));
    assert_string_equal(all, "e1,e2,e3,c1,c2,i1,i2,i3");
    vg_outbox_free(ob);
}

static void test_drop_lowest_class_first(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(3, 0);
    char d[32], s[32], all[256];
    push(ob, "c", "c1", false, C, d, s);
    push(ob, "i", "i1", false, I, d, s);
    push(ob, "i", "i2", false, I, d, s);
    /* full: a new control message pushes out the oldest inference message */
    assert_int_equal(push(ob, "c", "c2", false, C, d, s), I);
    assert_string_equal(d, "i1");
    /* an event too, never a control message while inference is queued */
    assert_int_equal(push(ob, "e", "e1", false, E, d, s), I);
    assert_string_equal(d, "i2");
    /* no inference left: the event displaces the oldest control message */
    assert_int_equal(push(ob, "e", "e2", false, E, d, s), C);
    assert_string_equal(d, "c1");
    drain(ob, all, sizeof(all));
    assert_string_equal(all, "e1,e2,c2");
    vg_outbox_free(ob);
}

static void test_full_of_control(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(2, 0);
    char d[32], s[32], all[256];
    push(ob, "c", "c1", false, C, d, s);
    push(ob, "c", "c2", false, C, d, s);
    /* an inference message never displaces control: it is the one dropped */
    assert_int_equal(push(ob, "i", "i1", false, I, d, s), I);
    assert_string_equal(d, "i1");
    /* a control message displaces the oldest control message */
    assert_int_equal(push(ob, "c", "c3", false, C, d, s), C);
    assert_string_equal(d, "c1");
    drain(ob, all, sizeof(all));
    assert_string_equal(all, "c2,c3");
    vg_outbox_free(ob);
}

/* An event is dropped only when the box holds nothing but events; then the oldest. */
static void test_full_of_events(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(2, 1);
    char d[32], s[32], all[256];
    push(ob, "e", "e1", false, E, d, s);
    push(ob, "e", "e2", false, E, d, s);
    push(ob, "e", "e3", false, E, d, s);
    assert_int_equal(vg_outbox_len(ob), 3);
    /* control and inference cannot displace events */
    assert_int_equal(push(ob, "c", "c1", false, C, d, s), C);
    assert_string_equal(d, "c1");
    assert_int_equal(push(ob, "i", "i1", false, I, d, s), I);
    assert_string_equal(d, "i1");
    assert_int_equal(push(ob, "e", "e4", false, E, d, s), E);
    assert_string_equal(d, "e1");
    drain(ob, all, sizeof(all));
    assert_string_equal(all, "e2,e3,e4");
    vg_outbox_free(ob);
}

/* The reserve is the events' own: an inference flood fills the shared limit only, and
 * events then still fit without displacing anything; other classes never use it. */
static void test_event_reserve(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(4, 2);
    char d[32], s[32], all[256];
    for (int k = 0; k < 10; k++) {
        char name[8];
        snprintf(name, sizeof(name), "i%d", k);
        push(ob, "i", name, false, I, d, s);
    }
    assert_int_equal(vg_outbox_len(ob), 4);                   /* the reserve stayed free */
    assert_int_equal(push(ob, "c", "c1", false, C, d, s), I); /* nor control uses it */
    assert_string_equal(d, "i6");
    assert_int_equal(push(ob, "e", "e1", false, E, d, s), KEPT);
    assert_int_equal(push(ob, "e", "e2", false, E, d, s), KEPT);
    assert_int_equal(vg_outbox_len(ob), 6);
    /* reserve used up: further events displace the oldest inference message */
    assert_int_equal(push(ob, "e", "e3", false, E, d, s), I);
    assert_string_equal(d, "i7");
    /* inference still finds its shared room (displacing its own oldest) */
    assert_int_equal(push(ob, "i", "i10", false, I, d, s), I);
    assert_string_equal(d, "i8");
    drain(ob, all, sizeof(all));
    assert_string_equal(all, "e1,e2,e3,c1,i9,i10");
    /* events may also take the shared room: 6 fit in an empty box */
    for (int k = 0; k < 6; k++)
        assert_int_equal(push(ob, "e", "e", false, E, d, s), KEPT);
    assert_int_equal(push(ob, "i", "i", false, I, d, s), I); /* then nothing else does */
    assert_int_equal(vg_outbox_len(ob), 6);
    vg_outbox_set_event_reserve(ob, 0);
    assert_int_equal(vg_outbox_event_reserve(ob), 0);
    assert_int_equal(push(ob, "e", "e7", false, E, d, s), E); /* over the new room */
    vg_outbox_free(ob);
}

static void test_retained_replacement(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(10, 0);
    char d[32], s[32], all[256];
    push(ob, "status/a", "a-online", true, C, d, s);
    push(ob, "x", "x1", false, C, d, s);
    push(ob, "status/b", "b-online", true, C, d, s);
    push(ob, "status/a", "a-plain", false, C, d, s); /* not retained: no replacement */
    assert_string_equal(s, "");
    assert_int_equal(push(ob, "status/a", "a-offline", true, C, d, s), KEPT);
    assert_string_equal(s, "a-online");
    assert_string_equal(d, "");
    assert_int_equal(vg_outbox_len(ob), 4);
    push(ob, "status/a", "a-back", true, C, d, s);
    assert_string_equal(s, "a-offline");
    /* the alarms: an event-class retained message, newest value wins */
    push(ob, "alarms", "[1]", true, E, d, s);
    push(ob, "alarms", "[1,2]", true, E, d, s);
    assert_string_equal(s, "[1]");
    drain(ob, all, sizeof(all));
    assert_string_equal(all, "[1,2],x1,b-online,a-plain,a-back");
    vg_outbox_free(ob);
}

static void test_replacement_makes_room(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(2, 0);
    char d[32], s[32], all[256];
    push(ob, "i", "i1", false, I, d, s);
    push(ob, "st", "st1", true, C, d, s);
    /* full, but the retained replacement frees a slot: nothing is dropped */
    assert_int_equal(push(ob, "st", "st2", true, C, d, s), KEPT);
    assert_string_equal(s, "st1");
    assert_string_equal(d, "");
    drain(ob, all, sizeof(all));
    assert_string_equal(all, "st2,i1");
    vg_outbox_free(ob);
}

static void test_limit_zero(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(0, 0);
    char d[32], s[32];
    assert_int_equal(push(ob, "i", "i1", false, I, d, s), I);
    assert_string_equal(d, "i1");
    assert_int_equal(push(ob, "c", "c1", true, C, d, s), C);
    assert_string_equal(d, "c1");
    assert_int_equal(push(ob, "e", "e1", false, E, d, s), E);
    assert_int_equal(vg_outbox_len(ob), 0);
    assert_int_equal(vg_outbox_limit(ob), 0);
    vg_outbox_free(ob);
    /* limit 0 with a reserve: events only */
    ob = vg_outbox_new(0, 1);
    assert_int_equal(push(ob, "c", "c1", false, C, d, s), C);
    assert_int_equal(push(ob, "e", "e1", false, E, d, s), KEPT);
    vg_outbox_free(ob);
}

static void test_binary_payload(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(1, 0);
    vg_outbox_evicted_t ev;
    const char bin[4] = {0, 1, 0, 2};
    vg_outbox_push(ob, vg_outbox_msg_new("b", bin, sizeof(bin), 2, false, I), &ev);
    assert_null(ev.dropped);
    vg_outbox_msg_t *m = vg_outbox_pop(ob);
    assert_int_equal(m->len, 4);
    assert_int_equal(m->qos, 2);
    assert_memory_equal(m->payload, bin, 4);
    assert_int_equal(((char *)m->payload)[4], 0);
    vg_outbox_msg_free(m);
    vg_outbox_push(ob, vg_outbox_msg_new("e", NULL, 0, 1, false, I), &ev);
    m = vg_outbox_pop(ob);
    assert_int_equal(m->len, 0);
    vg_outbox_msg_free(m);
    vg_outbox_free(ob);
}

/* Messages handed to the broker stay in the ledger until acknowledged by packet id, in
 * any order; they do not take queue room; unknown or repeated acks find nothing. */
static void test_ack_ledger(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(1, 0);
    char d[32], s[32];
    push(ob, "e", "e1", false, E, d, s);
    push(ob, "e", "e2", false, E, d, s); /* limit 1, no reserve: e1 dropped */
    vg_outbox_msg_t *m = vg_outbox_pop(ob);
    assert_string_equal(m->payload, "e2");
    vg_outbox_track(ob, m, 7);
    assert_int_equal(vg_outbox_len(ob), 0);
    assert_int_equal(push(ob, "i", "i1", false, I, d, s), KEPT); /* room is not taken */
    vg_outbox_track(ob, vg_outbox_pop(ob), 8);
    push(ob, "c", "c1", false, C, d, s);
    vg_outbox_track(ob, vg_outbox_pop(ob), 9);
    assert_int_equal(vg_outbox_tracked_len(ob), 3);
    assert_int_equal(vg_outbox_tracked_class_len(ob, E), 1);
    assert_int_equal(vg_outbox_tracked_class_len(ob, I), 1);
    assert_null(vg_outbox_acked(ob, 42));
    m = vg_outbox_acked(ob, 8);
    assert_non_null(m);
    assert_string_equal(m->payload, "i1");
    vg_outbox_msg_free(m);
    assert_null(vg_outbox_acked(ob, 8)); /* a duplicate PUBACK */
    m = vg_outbox_untrack(ob);           /* shutdown: oldest first */
    assert_string_equal(m->payload, "e2");
    assert_int_equal(m->mid, 7);
    vg_outbox_msg_free(m);
    assert_int_equal(vg_outbox_tracked_len(ob), 1);
    vg_outbox_free(ob); /* frees c1 still tracked (ASan/valgrind would see a leak) */
}

/* Many pushes with a mixed stream: the box never exceeds its room, events and control
 * messages survive as long as inference messages can be dropped, the inference
 * messages kept are the newest ones, and order within each class is kept. */
static void test_mixed_stream(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(200, 50);
    int dropped_high = 0;
    for (int i = 0; i < 1000; i++) {
        vg_outbox_evicted_t ev;
        vg_outbox_class_t cls = i % 10 == 0 ? C : i % 10 == 5 ? E : I;
        char name[16];
        snprintf(name, sizeof(name), "%d", i);
        vg_outbox_push(ob, vg_outbox_msg_new("t", name, strlen(name), 1, false, cls), &ev);
        assert_true(vg_outbox_len(ob) <= 250);
        assert_true(vg_outbox_len(ob) - vg_outbox_class_len(ob, E) <= 200);
        if (ev.dropped && ev.dropped->cls != I) dropped_high++;
        vg_outbox_msg_free(ev.dropped);
    }
    assert_int_equal(dropped_high, 0);
    int last[VG_OUTBOX_NCLASS] = {-1, -1, -1}, n[VG_OUTBOX_NCLASS] = {0};
    int first_inference = -1, prev_cls = E;
    vg_outbox_msg_t *m;
    while ((m = vg_outbox_pop(ob))) {
        int v = atoi(m->payload);
        assert_true((int)m->cls <= prev_cls); /* never a higher class after a lower one */
        prev_cls = (int)m->cls;
        assert_true(v > last[m->cls]);
        last[m->cls] = v;
        n[m->cls]++;
        if (m->cls == I && first_inference < 0) first_inference = v;
        vg_outbox_msg_free(m);
    }
    assert_int_equal(n[E], 100);
    assert_int_equal(n[C], 100);
    /* events took their 50 reserved slots and 50 of the 200 shared ones, control 100:
     * 50 left for inference, the newest 50 of the 800 (i % 10 not 0 or 5): from 938 on */
    assert_int_equal(n[I], 50);
    assert_int_equal(first_inference, 938);
    vg_outbox_free(ob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_priority_order),
        cmocka_unit_test(test_drop_lowest_class_first),
        cmocka_unit_test(test_full_of_control),
        cmocka_unit_test(test_full_of_events),
        cmocka_unit_test(test_event_reserve),
        cmocka_unit_test(test_retained_replacement),
        cmocka_unit_test(test_replacement_makes_room),
        cmocka_unit_test(test_limit_zero),
        cmocka_unit_test(test_binary_payload),
        cmocka_unit_test(test_ack_ledger),
        cmocka_unit_test(test_mixed_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
