/* Unit tests for outbox.c: FIFO order, the drop policy (oldest droppable first, then the
 * incoming droppable, then the oldest precious), retained replacement, limit 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/outbox.h"

/* Pushes a message whose payload is `name`; returns what was evicted (freed here, names
 * copied into the out buffers, "" for none). */
static vg_outbox_drop_t push(vg_outbox_t *ob, const char *topic, const char *name, bool retain,
                             bool precious, char *dropped, char *superseded)
{
    vg_outbox_evicted_t ev;
    vg_outbox_push(ob, vg_outbox_msg_new(topic, name, strlen(name), 1, retain, precious), &ev);
    snprintf(dropped, 32, "%s", ev.dropped ? (const char *)ev.dropped->payload : "");
    snprintf(superseded, 32, "%s", ev.superseded ? (const char *)ev.superseded->payload : "");
    vg_outbox_msg_free(ev.dropped);
    vg_outbox_msg_free(ev.superseded);
    return ev.why;
}

/* Pops everything and returns the payloads joined with ','. */
static void drain(vg_outbox_t *ob, char *out, size_t cap)
{
    out[0] = '\0';
    vg_outbox_msg_t *m;
    while ((m = vg_outbox_pop(ob))) {
        if (out[0])
            strncat(out, ",", cap - strlen(out) - 1);
        strncat(out, m->payload, cap - strlen(out) - 1);
        vg_outbox_msg_free(m);
    }
}

static void test_fifo(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(10);
    char d[32], s[32], all[256];
    assert_null(vg_outbox_peek(ob));
    assert_null(vg_outbox_pop(ob));
    for (int i = 0; i < 5; i++) {
        char name[8];
        snprintf(name, sizeof(name), "m%d", i);
        assert_int_equal(push(ob, "t", name, false, i % 2, d, s), VG_OUTBOX_KEPT);
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

static void test_drop_oldest_droppable(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(3);
    char d[32], s[32], all[256];
    push(ob, "c", "c1", false, true, d, s);
    push(ob, "i", "i1", false, false, d, s);
    push(ob, "i", "i2", false, false, d, s);
    /* full: a new control message pushes out the oldest inference message */
    assert_int_equal(push(ob, "c", "c2", false, true, d, s), VG_OUTBOX_DROP_DROPPABLE);
    assert_string_equal(d, "i1");
    /* a new inference message pushes out the remaining inference message */
    assert_int_equal(push(ob, "i", "i3", false, false, d, s), VG_OUTBOX_DROP_DROPPABLE);
    assert_string_equal(d, "i2");
    assert_int_equal(vg_outbox_len(ob), 3);
    drain(ob, all, sizeof(all));
    assert_string_equal(all, "c1,c2,i3");
    vg_outbox_free(ob);
}

static void test_full_of_control(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(2);
    char d[32], s[32], all[256];
    push(ob, "c", "c1", false, true, d, s);
    push(ob, "c", "c2", false, true, d, s);
    /* an inference message never displaces control: it is the one dropped */
    assert_int_equal(push(ob, "i", "i1", false, false, d, s), VG_OUTBOX_DROP_DROPPABLE);
    assert_string_equal(d, "i1");
    /* a control message displaces the oldest control message, reported as such */
    assert_int_equal(push(ob, "c", "c3", false, true, d, s), VG_OUTBOX_DROP_PRECIOUS);
    assert_string_equal(d, "c1");
    drain(ob, all, sizeof(all));
    assert_string_equal(all, "c2,c3");
    vg_outbox_free(ob);
}

static void test_retained_replacement(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(10);
    char d[32], s[32], all[256];
    push(ob, "status/a", "a-online", true, true, d, s);
    push(ob, "x", "x1", false, false, d, s);
    push(ob, "status/b", "b-online", true, true, d, s);
    push(ob, "status/a", "a-plain", false, true, d, s); /* not retained: no replacement */
    assert_string_equal(s, "");
    assert_int_equal(push(ob, "status/a", "a-offline", true, true, d, s), VG_OUTBOX_KEPT);
    assert_string_equal(s, "a-online");
    assert_string_equal(d, "");
    assert_int_equal(vg_outbox_len(ob), 4);
    push(ob, "status/a", "a-back", true, true, d, s);
    assert_string_equal(s, "a-offline");
    drain(ob, all, sizeof(all));
    assert_string_equal(all, "x1,b-online,a-plain,a-back");
    vg_outbox_free(ob);
}

static void test_replacement_makes_room(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(2);
    char d[32], s[32], all[256];
    push(ob, "i", "i1", false, false, d, s);
    push(ob, "st", "st1", true, true, d, s);
    /* full, but the retained replacement frees a slot: nothing is dropped */
    assert_int_equal(push(ob, "st", "st2", true, true, d, s), VG_OUTBOX_KEPT);
    assert_string_equal(s, "st1");
    assert_string_equal(d, "");
    drain(ob, all, sizeof(all));
    assert_string_equal(all, "i1,st2");
    vg_outbox_free(ob);
}

static void test_limit_zero(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(0);
    char d[32], s[32];
    assert_int_equal(push(ob, "i", "i1", false, false, d, s), VG_OUTBOX_DROP_DROPPABLE);
    assert_string_equal(d, "i1");
    assert_int_equal(push(ob, "c", "c1", true, true, d, s), VG_OUTBOX_DROP_PRECIOUS);
    assert_string_equal(d, "c1");
    assert_int_equal(vg_outbox_len(ob), 0);
    assert_int_equal(vg_outbox_limit(ob), 0);
    vg_outbox_free(ob);
}

static void test_binary_payload(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(1);
    vg_outbox_evicted_t ev;
    const char bin[4] = {0, 1, 0, 2};
    vg_outbox_push(ob, vg_outbox_msg_new("b", bin, sizeof(bin), 2, false, false), &ev);
    assert_null(ev.dropped);
    vg_outbox_msg_t *m = vg_outbox_pop(ob);
    assert_int_equal(m->len, 4);
    assert_int_equal(m->qos, 2);
    assert_memory_equal(m->payload, bin, 4);
    assert_int_equal(((char *)m->payload)[4], 0);
    vg_outbox_msg_free(m);
    vg_outbox_push(ob, vg_outbox_msg_new("e", NULL, 0, 1, false, false), &ev);
    m = vg_outbox_pop(ob);
    assert_int_equal(m->len, 0);
    vg_outbox_msg_free(m);
    vg_outbox_free(ob);
}

/* Many pushes with a mixed stream: the box never exceeds its limit, control messages
 * survive as long as inference messages can be dropped, the inference messages kept
 * are the newest ones, and order is kept. */
static void test_mixed_stream(void **state)
{
    (void)state;
    vg_outbox_t *ob = vg_outbox_new(200);
    int dropped_control = 0;
    for (int i = 0; i < 1000; i++) {
        vg_outbox_evicted_t ev;
        bool precious = i % 10 == 0;
        char name[16];
        snprintf(name, sizeof(name), "%d", i);
        vg_outbox_push(ob, vg_outbox_msg_new("t", name, strlen(name), 1, false, precious), &ev);
        assert_true(vg_outbox_len(ob) <= 200);
        if (ev.dropped && ev.dropped->precious)
            dropped_control++;
        vg_outbox_msg_free(ev.dropped);
    }
    assert_int_equal(dropped_control, 0);
    int last = -1, n_control = 0, first_inference = -1;
    vg_outbox_msg_t *m;
    while ((m = vg_outbox_pop(ob))) {
        int v = atoi(m->payload);
        assert_true(v > last);
        last = v;
        n_control += m->precious;
        if (!m->precious && first_inference < 0)
            first_inference = v;
        vg_outbox_msg_free(m);
    }
    assert_int_equal(last, 999);
    assert_int_equal(n_control, 100);
    /* 100 slots left for inference: the newest 100 of the 900, i.e. from 889 on */
    assert_int_equal(first_inference, 889);
    vg_outbox_free(ob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_drop_oldest_droppable),
        cmocka_unit_test(test_full_of_control),
        cmocka_unit_test(test_retained_replacement),
        cmocka_unit_test(test_replacement_makes_room),
        cmocka_unit_test(test_limit_zero),
        cmocka_unit_test(test_binary_payload),
        cmocka_unit_test(test_mixed_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
