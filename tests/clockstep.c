/* clockstep.c — an LD_PRELOAD shim for tests: steps the wall clock like NTP would.
 * CLOCK_REALTIME (clock_gettime, gettimeofday, time) reads the real clock plus the
 * number of seconds written in the file named by $VIGIL_CLOCKSTEP_FILE (0 when absent),
 * read again on every call, so a test steps a running process by rewriting the file.
 * The monotonic clocks are left alone. Any thread; test use only. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double step_s(void)
{
    const char *path = getenv("VIGIL_CLOCKSTEP_FILE");
    double step = 0;
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f) {
        if (fscanf(f, "%lf", &step) != 1) step = 0;
        fclose(f);
    }
    return step;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    long rc = syscall(SYS_clock_gettime, id, ts);
    if (rc != 0 || (id != CLOCK_REALTIME && id != CLOCK_REALTIME_COARSE)) return (int)rc;
    double step = step_s();
    long long ns = (long long)ts->tv_nsec + (long long)((step - (long long)step) * 1e9);
    ts->tv_sec += (time_t)step + (time_t)(ns / 1000000000LL);
    ts->tv_nsec = (long)(ns % 1000000000LL);
    if (ts->tv_nsec < 0) {
        ts->tv_nsec += 1000000000L;
        ts->tv_sec--;
    }
    return 0;
}

int gettimeofday(struct timeval *tv, void *tz)
{
    (void)tz;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}

time_t time(time_t *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
