/* journal.c — the events journal (see journal.h): append with fsync, rotation by
 * renames, and the read-back of open events at start. Blocking file I/O for the writer
 * thread; the journal object is owned by whoever opened it. */
#include "vigil/journal.h"
#include "vigil/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct vg_journal {
    char *path, *dir;
    size_t max_bytes, size;
    int keep;
    bool no_fsync;
    int fd;
};

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return vg_xstrdup(".");
    if (slash == path) return vg_xstrdup("/");
    return vg_xasprintf("%.*s", (int)(slash - path), path);
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* True if the file's last byte is not a newline (a line torn by a crash). */
static bool torn(int fd, off_t size)
{
    char last = '\n';
    return size > 0 && pread(fd, &last, 1, size - 1) == 1 && last != '\n';
}

static int open_file(vg_journal_t *j)
{
    j->fd = open(j->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640); /* read: torn() */
    if (j->fd < 0) return VG_EIO;
    struct stat st;
    if (fstat(j->fd, &st) != 0) return VG_EIO;
    j->size = (size_t)st.st_size;
    if (torn(j->fd, st.st_size)) {
        if (!write_all(j->fd, "\n", 1)) return VG_EIO;
        j->size++;
    }
    return 0;
}

int vg_journal_open(const vg_journal_cfg_t *cfg, vg_journal_t **out, char *err, size_t errlen)
{
    if (!cfg->path || !*cfg->path || cfg->keep < 0 || cfg->keep > 99) {
        snprintf(err, errlen, "events_file: need a path and keep 1..99");
        return VG_EINVAL;
    }
    vg_journal_t *j = vg_xcalloc(1, sizeof(*j));
    j->path = vg_xstrdup(cfg->path);
    j->dir = dir_of(cfg->path);
    j->max_bytes = cfg->max_bytes ? cfg->max_bytes : 16u << 20;
    j->keep = cfg->keep ? cfg->keep : 3;
    j->no_fsync = cfg->no_fsync;
    if (open_file(j) != 0) {
        snprintf(err, errlen, "events_file '%s': %s", cfg->path, strerror(errno));
        vg_journal_close(j);
        return VG_EIO;
    }
    *out = j;
    return 0;
}

void vg_journal_close(vg_journal_t *j)
{
    if (!j) return;
    if (j->fd >= 0) close(j->fd);
    free(j->path);
    free(j->dir);
    free(j);
}

size_t vg_journal_size(const vg_journal_t *j)
{
    return j->size;
}

static void sync_dir(const vg_journal_t *j)
{
    int fd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (!j->no_fsync) (void)fsync(fd);
        close(fd);
    }
}

/* file.<keep-1> -> file.<keep>, ..., file -> file.1, then a fresh file. */
static int rotate(vg_journal_t *j)
{
    close(j->fd);
    j->fd = -1;
    for (int k = j->keep - 1; k >= 0; k--) {
        char *from = k ? vg_xasprintf("%s.%d", j->path, k) : vg_xstrdup(j->path);
        char *to = vg_xasprintf("%s.%d", j->path, k + 1);
        int rc = rename(from, to);
        int e = errno;
        free(from);
        free(to);
        if (rc != 0 && e != ENOENT) {
            errno = e;
            return VG_EIO;
        }
    }
    sync_dir(j);
    return open_file(j);
}

int vg_journal_append(vg_journal_t *j, const char *line)
{
    size_t n = strlen(line);
    if (n >= VG_JOURNAL_LINE_MAX || memchr(line, '\n', n)) return VG_EINVAL;
    if (j->fd < 0 || (j->size > 0 && j->size + n + 1 > j->max_bytes)) {
        int rc = j->fd < 0 ? open_file(j) : rotate(j);
        if (rc != 0) return rc;
    }
    char *buf = vg_xmalloc(n + 1);
    memcpy(buf, line, n);
    buf[n] = '\n';
    bool ok = write_all(j->fd, buf, n + 1) && (j->no_fsync || fdatasync(j->fd) == 0);
    free(buf);
    if (!ok) return VG_EIO;
    j->size += n + 1;
    return 0;
}

int vg_journal_append_event(vg_journal_t *j, const vg_event_t *e, const char *instance_id,
                            const char *snapshot_base)
{
    json_t *o = vg_event_to_json(e, instance_id, snapshot_base);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    VG_CHECK(text);
    int rc = vg_journal_append(j, text);
    free(text);
    return rc;
}

/* ---- restore ------------------------------------------------------------------------------- */

/* Reads one file's lines into the latest state per event id. `index` maps event_id to
 * the position in `all` (a JSON object as a hash table). */
static int read_file(const char *file, json_t *index, vg_event_list_t *all, size_t *bad)
{
    FILE *f = fopen(file, "re");
    if (!f) return errno == ENOENT ? 0 : VG_EIO;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        if (n <= 1) continue; /* an empty line: the newline closing a torn one */
        json_t *o = n < VG_JOURNAL_LINE_MAX ? json_loads(line, 0, NULL) : NULL;
        vg_event_t e;
        if (!o || vg_event_from_json(o, &e, NULL) != 0) {
            (*bad)++;
            json_decref(o);
            continue;
        }
        json_decref(o);
        json_t *at = json_object_get(index, e.event_id);
        if (at) {
            all->v[json_integer_value(at)] = e;
        } else {
            json_object_set_new(index, e.event_id, json_integer((json_int_t)all->n));
            vg_event_list_push(all, &e);
        }
    }
    free(line);
    bool err = ferror(f);
    fclose(f);
    return err ? VG_EIO : 0;
}

int vg_journal_restore(const char *path, int keep, vg_event_list_t *out, size_t *bad)
{
    size_t dummy = 0;
    bad = bad ? bad : &dummy;
    keep = keep ? keep : 3;
    json_t *index = json_object();
    vg_event_list_t all = {0};
    int rc = 0;
    for (int k = keep; k >= 0 && rc == 0; k--) {
        char *file = k ? vg_xasprintf("%s.%d", path, k) : vg_xstrdup(path);
        rc = read_file(file, index, &all, bad);
        free(file);
    }
    for (size_t i = 0; rc == 0 && i < all.n; i++)
        if (all.v[i].ended_at <= 0 && all.v[i].phase != VG_PHASE_END)
            vg_event_list_push(out, &all.v[i]);
    vg_event_list_free(&all);
    json_decref(index);
    return rc;
}
