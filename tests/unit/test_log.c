/* Unit tests for log.c: URL redaction, the JSON line format, and 'o' arguments released
 * when the level is off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/log.h"

static void expect_redacted(const char *in, const char *want)
{
    char *got = vg_redact_url(in);
    assert_string_equal(got, want);
    free(got);
}

static void test_redact_userinfo(void **state)
{
    (void)state;
    expect_redacted("rtsp://user:secret@host/x", "rtsp://user:***@host/x");
    expect_redacted("rtsp://user:p@ss@host:554/x", "rtsp://user:***@host:554/x");
    expect_redacted("rtsp://user@host/x", "rtsp://user@host/x");
    expect_redacted("rtsp://host/x", "rtsp://host/x");
    expect_redacted("file:///tmp/a.mp4", "file:///tmp/a.mp4");
    expect_redacted("/tmp/a@b:c.mp4", "/tmp/a@b:c.mp4");
    expect_redacted("", "");
    assert_null(vg_redact_url(NULL));
}

static void test_redact_query(void **state)
{
    (void)state;
    expect_redacted("http://h/s?user=a&password=b&x=1", "http://h/s?user=a&password=***&x=1");
    expect_redacted("http://u:p@h/s?token=abc#frag", "http://u:***@h/s?token=***#frag");
    expect_redacted("http://h/s?a=1&a=2&", "http://h/s?a=1&a=2&");
    expect_redacted("http://h/s?key=&pwd=x", "http://h/s?key=***&pwd=***");
}

static void test_json_line(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    vg_log_set_fd(fds[1]);
    vg_log_set_level(VG_LOG_INFO);
    vg_log(VG_LOG_DEBUG, "test", "hidden", NULL);
    vg_log(VG_LOG_WARN, "test", "hello", "{s:s, s:i}", "stream_id", "a\"b", "n", 3);
    vg_log_set_fd(2);
    close(fds[1]);
    char buf[1024] = {0};
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    assert_true(n > 0);
    assert_non_null(strchr(buf, '\n'));
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1); /* exactly one line: debug filtered */
    json_error_t err;
    json_t *j = json_loads(buf, 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(j, "module")), "test");
    assert_string_equal(json_string_value(json_object_get(j, "event")), "hello");
    assert_string_equal(json_string_value(json_object_get(j, "stream_id")), "a\"b");
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 3);
    const char *ts = json_string_value(json_object_get(j, "ts"));
    assert_int_equal(strlen(ts), 24); /* 2026-11-24T13:01:40.123Z */
    assert_int_equal(ts[23], 'Z');
    json_decref(j);
}

/* An 'o' argument is a reference handed to vg_log: it must be released even when the
 * level is off (LSan reports the leak in the ASan build; the refcount shows it anywhere). */
static void test_disabled_level_releases_o_args(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    vg_log_set_fd(fds[1]);
    vg_log_set_level(VG_LOG_WARN);
    json_t *kept = json_object();
    vg_log(VG_LOG_DEBUG, "test", "hidden", "{s:o, s:s, s:o}", "kept", json_incref(kept), "s", "x",
           "fresh", json_pack("{s:i}", "n", 1));
    assert_int_equal(kept->refcount, 1);
    vg_log(VG_LOG_INFO, "test", "hidden", "{s:O}", "kept", kept); /* O: borrowed */
    assert_int_equal(kept->refcount, 1);
    vg_log(VG_LOG_ERROR, "test", "shown", "{s:o}", "kept", json_incref(kept));
    assert_int_equal(kept->refcount, 1);
    json_decref(kept);
    vg_log_set_fd(2);
    vg_log_set_level(VG_LOG_INFO);
    close(fds[1]);
    char buf[1024] = {0};
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    assert_true(n > 0);
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1); /* only the error line */
    assert_non_null(strstr(buf, "\"shown\""));
}

static void test_level_parse(void **state)
{
    (void)state;
    vg_log_level_t l;
    assert_int_equal(vg_log_level_parse("warn", &l), 0);
    assert_int_equal(l, VG_LOG_WARN);
    assert_int_not_equal(vg_log_level_parse("verbose", &l), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_userinfo),
        cmocka_unit_test(test_redact_query),
        cmocka_unit_test(test_json_line),
        cmocka_unit_test(test_disabled_level_releases_o_args),
        cmocka_unit_test(test_level_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
