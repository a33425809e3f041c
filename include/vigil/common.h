/* common.h — error codes, always-on checks, allocation and clock helpers used by
 * every module. Any thread may call these. */
#ifndef VIGIL_COMMON_H
#define VIGIL_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VG_VERSION "0.1.0"

enum {
    VG_OK = 0,
    VG_EINVAL = -1, /* invalid argument or input */
    VG_ENOMEM = -2, /* never returned: allocation failure aborts */
    VG_EIO = -3,    /* I/O or system call failed */
    VG_ENOTFOUND = -4,
    VG_EEXIST = -5,
    VG_EBUSY = -6,
    VG_ETIMEDOUT = -7,
    VG_EUNSUPPORTED = -8,
};

/* Always-on invariant check: out-of-memory, pthread failures, programming errors.
 * Never use it on anything that came from outside the process. */
#define VG_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) vg_die(__FILE__, __LINE__, #cond);                                            \
    } while (0)

#define VG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

_Noreturn void vg_die(const char *file, int line, const char *what);

/* Allocation that aborts on failure. Caller frees. */
void *vg_xmalloc(size_t n);
void *vg_xcalloc(size_t count, size_t n);
void *vg_xrealloc(void *p, size_t n);
char *vg_xstrdup(const char *s); /* NULL in, NULL out */
char *vg_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

double vg_now_mono(void); /* CLOCK_MONOTONIC seconds */
double vg_now_wall(void); /* CLOCK_REALTIME seconds since the epoch */

/* Formats `t` (epoch seconds) as RFC 3339 UTC with milliseconds into buf (>= 32 bytes). */
void vg_format_time(double t, char *buf, size_t len);

#endif
