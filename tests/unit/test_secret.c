/* Unit tests for secret.c: the first line of the file, surrounding blanks and the line
 * end trimmed; an empty file gives an empty secret; an unreadable one NULL, logged
 * without any content. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/log.h"
#include "vigil/secret.h"

static char *read_text(const char *text)
{
    char path[] = "/tmp/vigil-test-secret.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char *s = vg_secret_read_file(path, "test secret");
    unlink(path);
    return s;
}

static void test_first_line_trimmed(void **state)
{
    (void)state;
    const struct {
        const char *text, *want;
    } cases[] = {
        {"s3cr3t\n", "s3cr3t"},
        {"  \tpass word \r\nsecond line\n", "pass word"},
        {"no newline", "no newline"},
        {"", ""},
        {"\n", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s = read_text(cases[i].text);
        assert_non_null(s);
        assert_string_equal(s, cases[i].want);
        free(s);
    }
}

static void test_unreadable(void **state)
{
    (void)state;
    char path[] = "/tmp/vigil-test-secret-log.XXXXXX";
    int log_fd = mkstemp(path);
    assert_true(log_fd >= 0);
    unlink(path);
    vg_log_set_fd(log_fd);
    assert_null(vg_secret_read_file("/nonexistent/vigil-secret", "mqtt password"));
    vg_log_set_fd(2);
    char buf[1024] = {0};
    assert_true(pread(log_fd, buf, sizeof(buf) - 1, 0) > 0);
    close(log_fd);
    assert_non_null(strstr(buf, "\"event\":\"secret_unreadable\""));
    assert_non_null(strstr(buf, "\"secret\":\"mqtt password\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_line_trimmed),
        cmocka_unit_test(test_unreadable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
