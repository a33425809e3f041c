/* common.c — abort-on-failure allocation, invariant failure reporting and clocks.
 * Thread-safe; used by every thread. */
#include "vigil/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Noreturn void vg_die(const char *file, int line, const char *what)
{
    fprintf(stderr,
            "{\"level\":\"fatal\",\"event\":\"check_failed\",\"file\":\"%s\","
            "\"line\":%d,\"check\":\"%s\"}\n",
            file, line, what);
    abort();
}

void *vg_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    VG_CHECK(p != NULL);
    return p;
}

void *vg_xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    VG_CHECK(p != NULL);
    return p;
}

void *vg_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    VG_CHECK(q != NULL);
    return q;
}

char *vg_xstrdup(const char *s)
{
    if (!s) return NULL;
    char *d = strdup(s);
    VG_CHECK(d != NULL);
    return d;
}

char *vg_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    VG_CHECK(n >= 0);
    return out;
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double vg_now_mono(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

double vg_now_wall(void)
{
    return clock_s(CLOCK_REALTIME);
}

void vg_format_time(double t, char *buf, size_t len)
{
    time_t secs = (time_t)t;
    int ms = (int)((t - (double)secs) * 1000.0);
    if (ms < 0) ms = 0;
    if (ms > 999) ms = 999;
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", base, ms);
}
