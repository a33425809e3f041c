/* Unit tests for journal.c in a temporary folder: lines are appended and read back;
 * only events not ended are restored, with their latest state; rotation keeps `keep`
 * files and restore reads across them; a line torn by a crash is skipped and the next
 * append starts on a fresh line; restored events go back into the engine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vigil/common.h"
#include "vigil/journal.h"

#define T0 1796299200.0

static char dir[64], path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vigil-journal-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/events.jsonl", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static vg_event_t event(const char *id, vg_event_type_t type, vg_event_phase_t phase, double t)
{
    vg_event_t e;
    memset(&e, 0, sizeof(e));
    snprintf(e.event_id, sizeof(e.event_id), "%s", id);
    e.type = type;
    e.phase = phase;
    e.severity = VG_SEV_CRITICAL;
    snprintf(e.stream_id, sizeof(e.stream_id), "cam1");
    snprintf(e.room_id, sizeof(e.room_id), "room-1");
    e.track_id = 4;
    e.confidence = 0.8;
    e.started_at = T0;
    e.updated_at = t;
    e.ended_at = phase == VG_PHASE_END ? t : 0;
    e.occupancy = -1;
    return e;
}

static vg_journal_t *open_journal(size_t max_bytes, int keep)
{
    vg_journal_cfg_t cfg = {.path = path, .max_bytes = max_bytes, .keep = keep, .no_fsync = true};
    vg_journal_t *j = NULL;
    char err[256];
    assert_int_equal(vg_journal_open(&cfg, &j, err, sizeof(err)), 0);
    return j;
}

static void append(vg_journal_t *j, vg_event_t e)
{
    assert_int_equal(vg_journal_append_event(j, &e, "inst", ""), 0);
}

/* Opens the journal, appends one fall's start, closes it (a daemon's whole life). */
static void journal_one(const char *id, double t)
{
    vg_journal_t *j = open_journal(0, 0);
    append(j, event(id, VG_EV_FALL, VG_PHASE_START, t));
    vg_journal_close(j);
}

static void test_restore_open_events(void **state)
{
    (void)state;
    vg_journal_t *j = open_journal(0, 0);
    append(j, event("a", VG_EV_FALL, VG_PHASE_START, T0));
    append(j, event("b", VG_EV_PERSON_DOWN, VG_PHASE_START, T0 + 1));
    append(j, event("a", VG_EV_FALL, VG_PHASE_END, T0 + 2));
    vg_event_t c = event("c", VG_EV_BED_EXIT, VG_PHASE_START, T0 + 3);
    append(j, c);
    c.phase = VG_PHASE_UPDATE;
    c.acked_at = T0 + 4;
    snprintf(c.acked_by, sizeof(c.acked_by), "nurse");
    append(j, c);
    vg_event_t in = event("d", VG_EV_ROOM_ENTRY, VG_PHASE_START, T0 + 5);
    in.ended_at = in.started_at;
    in.occupancy = 1;
    append(j, in);
    assert_int_equal(vg_journal_append(j, "two\nlines"), VG_EINVAL);
    vg_journal_close(j);

    vg_event_list_t open = {0};
    size_t bad = 0;
    assert_int_equal(vg_journal_restore(path, 0, &open, &bad), 0);
    assert_int_equal(bad, 0);
    assert_int_equal(open.n, 2);
    assert_string_equal(open.v[0].event_id, "b");
    assert_int_equal(open.v[0].type, VG_EV_PERSON_DOWN);
    assert_string_equal(open.v[1].event_id, "c");
    assert_int_equal(open.v[1].phase, VG_PHASE_UPDATE);
    assert_string_equal(open.v[1].acked_by, "nurse");
    vg_event_list_free(&open);
    /* no journal at all is an empty one */
    assert_int_equal(vg_journal_restore("/nonexistent/x.jsonl", 3, &open, NULL), 0);
    assert_int_equal(open.n, 0);
}

static void test_rotation(void **state)
{
    (void)state;
    vg_journal_t *j = open_journal(2000, 2);
    char id[16];
    /* "old" started long ago, its start rotated out; its periodic updates did not */
    append(j, event("old", VG_EV_PERSON_DOWN, VG_PHASE_START, T0));
    for (int i = 0; i < 60; i++) {
        if (i % 4 == 0) append(j, event("old", VG_EV_PERSON_DOWN, VG_PHASE_UPDATE, T0 + i));
        snprintf(id, sizeof(id), "e%02d", i);
        append(j, event(id, VG_EV_FALL, VG_PHASE_START, T0 + i));
        if (i != 55) /* all end but one */
            append(j, event(id, VG_EV_FALL, VG_PHASE_END, T0 + i));
        assert_true(vg_journal_size(j) <= 2000);
    }
    vg_journal_close(j);
    struct stat st;
    char name[160];
    for (int k = 1; k <= 2; k++) {
        snprintf(name, sizeof(name), "%s.%d", path, k);
        assert_int_equal(stat(name, &st), 0);
        assert_true(st.st_size <= 2000);
    }
    snprintf(name, sizeof(name), "%s.3", path);
    assert_int_not_equal(stat(name, &st), 0);
    vg_event_list_t open = {0};
    assert_int_equal(vg_journal_restore(path, 2, &open, NULL), 0);
    assert_int_equal(open.n, 2);
    bool seen_old = false, seen_55 = false;
    for (size_t i = 0; i < open.n; i++) {
        seen_old |= strcmp(open.v[i].event_id, "old") == 0;
        seen_55 |= strcmp(open.v[i].event_id, "e55") == 0;
    }
    assert_true(seen_old && seen_55);
    vg_event_list_free(&open);
}

static void test_torn_line(void **state)
{
    (void)state;
    journal_one("a", T0);
    FILE *f = fopen(path, "a");
    fputs("{\"event_id\":\"b\",\"type\":\"fa", f); /* the crash */
    fclose(f);
    journal_one("c", T0 + 1);
    vg_event_list_t open = {0};
    size_t bad = 0;
    assert_int_equal(vg_journal_restore(path, 0, &open, &bad), 0);
    assert_int_equal(bad, 1);
    assert_int_equal(open.n, 2);
    assert_string_equal(open.v[1].event_id, "c");
    vg_event_list_free(&open);
}

static void test_back_into_the_engine(void **state)
{
    (void)state;
    journal_one("0190a1b2-0000-7000-8000-000000000001", T0);
    vg_event_list_t open = {0}, out = {0};
    assert_int_equal(vg_journal_restore(path, 0, &open, NULL), 0);
    assert_int_equal(open.n, 1);
    vg_events_t *ev = vg_events_new("inst");
    vg_events_cfg_t cfg;
    vg_events_cfg_default(&cfg);
    vg_events_set_stream(ev, "cam1", "room-1", &cfg, NULL, 100, T0 + 100, &out);
    assert_int_equal(vg_events_restore(ev, &open.v[0], 100, T0 + 100, &out), 0);
    assert_int_equal(out.n, 1);
    assert_string_equal(out.v[0].reason, "restored");
    assert_true(out.v[0].updated_at == T0 + 100);
    vg_events_free(ev);
    vg_event_list_free(&open);
    vg_event_list_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restore_open_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_back_into_the_engine, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
