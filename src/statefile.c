/* statefile.c — the state file's writer (see statefile.h). Each put becomes a
 * VG_JOB_STATE_WRITE job on the "jobs:state" thread; a newer put replaces a write still
 * pending, and jobs stopping runs what is pending. A job holds a reference to the
 * writer (paths and counters, immutable after new), so freeing the writer while a
 * write runs is safe. */
#include "vigil/statefile.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h> /* rename */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOD "gateway"

struct vg_statefile {
    atomic_int refs;
    char *path, *tmp, *dir;
    vg_jobs_t *jobs;
    vg_series_t *m_ok, *m_error;
};

typedef struct {
    vg_statefile_t *sf; /* a reference */
    char *text;
} write_job_t;

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return vg_xstrdup(".");
    if (slash == path) return vg_xstrdup("/");
    return vg_xasprintf("%.*s", (int)(slash - path), path);
}

static bool write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Makes the rename itself durable. */
static bool sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

/* Writer thread: replaces the file with `text`; NULL step on success. */
static const char *replace_file(const vg_statefile_t *sf, const char *text)
{
    int fd = open(sf->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return "open";
    bool ok = write_all(fd, text, strlen(text)) && fsync(fd) == 0;
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        unlink(sf->tmp);
        errno = saved;
        return "write";
    }
    if (rename(sf->tmp, sf->path) != 0) {
        saved = errno;
        unlink(sf->tmp);
        errno = saved;
        return "rename";
    }
    return sync_dir(sf->dir) ? NULL : "fsync of the folder";
}

static void unref(vg_statefile_t *sf)
{
    if (atomic_fetch_sub(&sf->refs, 1) != 1) return;
    free(sf->path);
    free(sf->tmp);
    free(sf->dir);
    free(sf);
}

static void write_run(void *job)
{
    write_job_t *j = job;
    vg_statefile_t *sf = j->sf;
    const char *failed = replace_file(sf, j->text);
    if (failed) {
        VG_ERROR(MOD, "state_write_failed", "{s:s, s:s, s:s}", "path", sf->path, "step", failed,
                 "error", strerror(errno));
        vg_series_inc(sf->m_error);
    } else {
        vg_series_inc(sf->m_ok);
    }
}

static void write_done(void *ctx, void *job, bool ran)
{
    (void)ctx;
    (void)ran; /* a replaced text is simply dropped: a newer one is queued */
    write_job_t *j = job;
    unref(j->sf);
    free(j->text);
    free(j);
}

vg_statefile_t *vg_statefile_new(const char *path, vg_jobs_t *jobs)
{
    vg_statefile_t *sf = vg_xcalloc(1, sizeof(*sf));
    atomic_init(&sf->refs, 1);
    sf->path = vg_xstrdup(path);
    sf->tmp = vg_xasprintf("%s.tmp", path);
    sf->dir = dir_of(path);
    sf->jobs = jobs;
    vg_metric_t *m =
        vg_metric_counter("vigil_state_writes_total", "State file writes by result", "result");
    sf->m_ok = vg_metric_series(m, "success");
    sf->m_error = vg_metric_series(m, "error");
    return sf;
}

void vg_statefile_put(vg_statefile_t *sf, char *text)
{
    VG_CHECK(text != NULL); /* json_dumps fails only without memory */
    write_job_t *j = vg_xcalloc(1, sizeof(*j));
    atomic_fetch_add(&sf->refs, 1);
    j->sf = sf;
    j->text = text;
    static const vg_job_ops_t ops = {write_run, write_done, NULL};
    vg_jobs_submit(sf->jobs, VG_JOB_STATE_WRITE, &ops, j);
}

void vg_statefile_free(vg_statefile_t *sf)
{
    if (sf) unref(sf);
}
