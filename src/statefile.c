/* statefile.c — the state file's writer thread (see statefile.h). One mutex guards the
 * pending text and the stop flag; the writer takes the pending text under the lock and
 * writes it unlocked. */
#include "vigil/statefile.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h> /* rename */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOD "gateway"

struct vg_statefile {
    char *path, *tmp, *dir;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    char *pending; /* newest text not yet taken by the writer */
    bool stop;
    vg_series_t *m_ok, *m_error;
};

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return vg_xstrdup(".");
    if (slash == path)
        return vg_xstrdup("/");
    return vg_xasprintf("%.*s", (int)(slash - path), path);
}

static bool write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Makes the rename itself durable. */
static bool sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

/* Writer thread: replaces the file with `text`; NULL step on success. */
static const char *replace_file(const vg_statefile_t *sf, const char *text)
{
    int fd = open(sf->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return "open";
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

static void *writer_main(void *arg)
{
    vg_statefile_t *sf = arg;
    pthread_setname_np(pthread_self(), "statefile");
    pthread_mutex_lock(&sf->mu);
    for (;;) {
        while (!sf->pending && !sf->stop)
            pthread_cond_wait(&sf->wake, &sf->mu);
        if (!sf->pending)
            break; /* stopping, nothing left */
        char *text = sf->pending;
        sf->pending = NULL;
        pthread_mutex_unlock(&sf->mu);
        const char *failed = replace_file(sf, text);
        if (failed) {
            VG_ERROR(MOD, "state_write_failed", "{s:s, s:s, s:s}", "path", sf->path, "step",
                     failed, "error", strerror(errno));
            vg_series_inc(sf->m_error);
        } else {
            vg_series_inc(sf->m_ok);
        }
        free(text);
        pthread_mutex_lock(&sf->mu);
    }
    pthread_mutex_unlock(&sf->mu);
    return NULL;
}

vg_statefile_t *vg_statefile_new(const char *path)
{
    vg_statefile_t *sf = vg_xcalloc(1, sizeof(*sf));
    sf->path = vg_xstrdup(path);
    sf->tmp = vg_xasprintf("%s.tmp", path);
    sf->dir = dir_of(path);
    vg_metric_t *m = vg_metric_counter("vigil_state_writes_total",
                                       "State file writes by result", "result");
    sf->m_ok = vg_metric_series(m, "success");
    sf->m_error = vg_metric_series(m, "error");
    VG_CHECK(pthread_mutex_init(&sf->mu, NULL) == 0);
    VG_CHECK(pthread_cond_init(&sf->wake, NULL) == 0);
    VG_CHECK(pthread_create(&sf->thread, NULL, writer_main, sf) == 0);
    return sf;
}

void vg_statefile_put(vg_statefile_t *sf, char *text)
{
    VG_CHECK(text != NULL); /* json_dumps fails only without memory */
    pthread_mutex_lock(&sf->mu);
    free(sf->pending);
    sf->pending = text;
    pthread_cond_signal(&sf->wake);
    pthread_mutex_unlock(&sf->mu);
}

void vg_statefile_free(vg_statefile_t *sf)
{
    if (!sf)
        return;
    pthread_mutex_lock(&sf->mu);
    sf->stop = true;
    pthread_cond_signal(&sf->wake);
    pthread_mutex_unlock(&sf->mu);
    VG_CHECK(pthread_join(sf->thread, NULL) == 0);
    pthread_cond_destroy(&sf->wake);
    pthread_mutex_destroy(&sf->mu);
    free(sf->pending);
    free(sf->path);
    free(sf->tmp);
    free(sf->dir);
    free(sf);
}
