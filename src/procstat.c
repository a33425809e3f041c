/* procstat.c — samples this process from /proc (CPU time, memory, fds, threads, start
 * time) and publishes the standard process_* metrics plus vigil_build_info through a
 * metrics collect hook, so the values are fresh at every scrape.
 *
 * Any thread may sample. The only state is the process start time, cached after the
 * first successful read because it never changes. The hook keeps no series pointers:
 * it looks its families up by name on every render (a handful of string compares), so
 * it survives vg_metrics_reset_for_tests(). */
#include "vigil/metrics.h"
#include "vigil/common.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static _Atomic double start_time_cache; /* 0 until first computed */

/* Reads a small file into buf, NUL-terminated. Returns 0 or VG_EIO. */
static int read_small_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return VG_EIO;
    size_t used = 0;
    while (used + 1 < len) {
        ssize_t n = read(fd, buf + used, len - 1 - used);
        if (n < 0) {
            close(fd);
            return VG_EIO;
        }
        if (n == 0) break;
        used += (size_t)n;
    }
    close(fd);
    buf[used] = '\0';
    return used > 0 ? VG_OK : VG_EIO;
}

/* Seconds since the epoch at which the system booted, from /proc/stat's btime line. */
static int read_boot_time(double *out)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f) return VG_EIO;
    char *line = NULL;
    size_t cap = 0;
    int rc = VG_EIO;
    while (getline(&line, &cap, f) > 0) {
        unsigned long long btime;
        if (sscanf(line, "btime %llu", &btime) == 1) {
            *out = (double)btime;
            rc = VG_OK;
            break;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

/* /proc/self/stat: utime(14) stime(15) num_threads(20) starttime(22), 1-based fields.
 * The command name (field 2) may hold spaces and parentheses: parse after the last ')'. */
static int sample_stat(vg_proc_sample_t *s, double ticks)
{
    char text[1024];
    if (read_small_file("/proc/self/stat", text, sizeof(text)) != VG_OK) return VG_EIO;
    const char *p = strrchr(text, ')');
    if (!p) return VG_EIO;
    p++;
    unsigned long long field[23] = {0};
    for (int i = 3; i <= 22; i++) {
        while (*p == ' ')
            p++;
        if (!*p) return VG_EIO;
        field[i] = i == 3 ? 0 : strtoull(p, NULL, 10); /* field 3 is the state letter */
        p += strcspn(p, " ");
    }
    s->cpu_seconds = (double)(field[14] + field[15]) / ticks;
    s->threads = field[20] > INT_MAX ? INT_MAX : (int)field[20];

    double start = atomic_load(&start_time_cache);
    if (start == 0) {
        double boot;
        if (read_boot_time(&boot) != VG_OK) return VG_EIO;
        start = boot + (double)field[22] / ticks;
        atomic_store(&start_time_cache, start);
    }
    s->start_time_seconds = start;
    return VG_OK;
}

/* /proc/self/statm: total and resident program size, in pages. */
static int sample_statm(vg_proc_sample_t *s, double page)
{
    char text[256];
    unsigned long long size, resident;
    if (read_small_file("/proc/self/statm", text, sizeof(text)) != VG_OK ||
        sscanf(text, "%llu %llu", &size, &resident) != 2)
        return VG_EIO;
    s->virtual_bytes = (double)size * page;
    s->resident_bytes = (double)resident * page;
    return VG_OK;
}

static int sample_fds(vg_proc_sample_t *s)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return VG_EIO;
    int n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    s->open_fds = n > 0 ? n - 1 : 0; /* not the directory's own fd */

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return VG_EIO;
    s->max_fds = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > INT_MAX ? INT_MAX : (int)rl.rlim_cur;
    return VG_OK;
}

int vg_proc_sample(vg_proc_sample_t *out)
{
    long ticks = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (ticks <= 0 || page <= 0) return VG_EIO;
    vg_proc_sample_t s = {0};
    if (sample_stat(&s, (double)ticks) != VG_OK || sample_statm(&s, (double)page) != VG_OK ||
        sample_fds(&s) != VG_OK)
        return VG_EIO;
    *out = s;
    return VG_OK;
}

/* ---- the process metrics ---- */

typedef struct {
    const char *name;
    const char *help;
    bool counter;  /* else gauge */
    size_t offset; /* into vg_proc_sample_t */
    bool is_int;   /* the field is an int, else a double */
} proc_metric_t;

#define PM_D(name, help, counter, field)                                                           \
    {                                                                                              \
        name, help, counter, offsetof(vg_proc_sample_t, field), false                              \
    }
#define PM_I(name, help, field)                                                                    \
    {                                                                                              \
        name, help, false, offsetof(vg_proc_sample_t, field), true                                 \
    }

static const proc_metric_t proc_metrics[] = {
    PM_D("process_cpu_seconds_total", "User plus system CPU time consumed, in seconds.", true,
         cpu_seconds),
    PM_D("process_resident_memory_bytes", "Resident set size, in bytes.", false, resident_bytes),
    PM_D("process_virtual_memory_bytes", "Virtual address space size, in bytes.", false,
         virtual_bytes),
    PM_D("process_start_time_seconds", "When the process started, in seconds since the epoch.",
         false, start_time_seconds),
    PM_I("process_open_fds", "Open file descriptors.", open_fds),
    PM_I("process_max_fds", "Limit on open file descriptors (RLIMIT_NOFILE).", max_fds),
    PM_I("process_threads", "Operating system threads in the process.", threads),
};

static vg_metric_t *proc_family(const proc_metric_t *pm)
{
    return pm->counter ? vg_metric_counter(pm->name, pm->help, NULL)
                       : vg_metric_gauge(pm->name, pm->help, NULL);
}

static void proc_collect(void *arg)
{
    (void)arg;
    vg_proc_sample_t sample;
    if (vg_proc_sample(&sample) != VG_OK) return; /* keep the previous values */
    for (size_t i = 0; i < VG_ARRAY_LEN(proc_metrics); i++) {
        const proc_metric_t *pm = &proc_metrics[i];
        const char *field = (const char *)&sample + pm->offset;
        double v;
        if (pm->is_int) {
            int iv;
            memcpy(&iv, field, sizeof(iv));
            v = iv;
        } else {
            memcpy(&v, field, sizeof(v));
        }
        vg_series_t *s = vg_metric_series(proc_family(pm));
        if (pm->counter)
            vg_series_set_total(s, v);
        else
            vg_series_set(s, v);
    }
}

void vg_metrics_register_process(void)
{
    for (size_t i = 0; i < VG_ARRAY_LEN(proc_metrics); i++)
        proc_family(&proc_metrics[i]);
    vg_metric_t *info = vg_metric_gauge(
        "vigil_build_info", "Build of vigild, by version; the value is always 1.", "version");
    vg_series_set(vg_metric_series(info, VG_VERSION), 1);
    vg_metrics_add_collect_hook(proc_collect, NULL);
}
