/* Unit tests for statefile.c: the newest of a burst of texts is what ends up in the
 * file, atomically (no temporary file left, mode 0600); free writes what is still
 * pending once the jobs stop (shutdown); a folder that does not exist is an error counted
 * in vigil_state_writes_total, and the next write to a good path still works. */
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
#include "vigil/jobs.h"
#include "vigil/metrics.h"
#include "vigil/statefile.h"

static char dir[] = "/tmp/vigil-statefile-XXXXXX";

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The value of series `series` (whole line prefix) in the metrics text, -1 if absent. */
static double metric(const char *series)
{
    char *text = vg_metrics_render();
    const char *p = strstr(text, series);
    double v = p ? strtod(p + strlen(series), NULL) : -1;
    free(text);
    return v;
}

/* A writer on its own jobs (no loop: completions run on the job thread). */
static vg_jobs_t *jobs;

static vg_statefile_t *writer_new(const char *path)
{
    jobs = vg_jobs_new(NULL);
    return vg_statefile_new(path, jobs);
}

/* Shutdown order of the daemon: the handle goes, then the jobs stop (and flush). */
static void writer_stop(vg_statefile_t *sf)
{
    vg_statefile_free(sf);
    vg_jobs_free(jobs);
    jobs = NULL;
}

static void test_burst_newest_wins(void **state)
{
    (void)state;
    char *path = vg_xasprintf("%s/state.json", dir);
    vg_statefile_t *sf = writer_new(path);
    for (int i = 0; i <= 500; i++)
        vg_statefile_put(sf, vg_xasprintf("{\"n\": %d}", i));
    writer_stop(sf);
    assert_string_equal(slurp(path), "{\"n\": 500}");
    double writes = metric("vigil_state_writes_total{result=\"success\"} ");
    assert_true(writes >= 1 && writes <= 501);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char *tmp = vg_xasprintf("%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0);
    /* free right after a put still writes it */
    sf = writer_new(path);
    vg_statefile_put(sf, vg_xstrdup("{\"n\": \"last\"}"));
    writer_stop(sf);
    assert_string_equal(slurp(path), "{\"n\": \"last\"}");
    unlink(path);
    free(tmp);
    free(path);
}

static void test_missing_folder_is_counted(void **state)
{
    (void)state;
    double before = metric("vigil_state_writes_total{result=\"error\"} ");
    if (before < 0) before = 0; /* not rendered yet */
    char *bad = vg_xasprintf("%s/no/such/folder/state.json", dir);
    vg_statefile_t *sf = writer_new(bad);
    vg_statefile_put(sf, vg_xstrdup("{}"));
    writer_stop(sf);
    assert_true(metric("vigil_state_writes_total{result=\"error\"} ") == before + 1);
    free(bad);
    /* no writer left behind: a good path still works */
    char *good = vg_xasprintf("%s/again.json", dir);
    sf = writer_new(good);
    vg_statefile_put(sf, vg_xstrdup("[1]"));
    writer_stop(sf);
    assert_string_equal(slurp(good), "[1]");
    unlink(good);
    free(good);
}

static void test_free_without_puts(void **state)
{
    (void)state;
    char *path = vg_xasprintf("%s/never.json", dir);
    vg_statefile_t *sf = writer_new(path);
    writer_stop(sf);
    assert_int_not_equal(access(path, F_OK), 0);
    vg_statefile_free(NULL);
    free(path);
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_newest_wins),
        cmocka_unit_test(test_missing_folder_is_counted),
        cmocka_unit_test(test_free_without_puts),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(dir);
    return rc;
}
