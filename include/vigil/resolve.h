/* resolve.h — host name lookups off the loop thread.
 *
 * vg_resolve_start() runs getaddrinfo() on a short-lived detached thread (named
 * "vg-resolve") and, when it is done, wakes the loop with event_active() on the
 * caller's event (so the base needs evthread_use_pthreads()). The loop then reads the
 * result and releases the lookup. Releasing earlier cancels it: the thread finishes
 * its getaddrinfo() call (it cannot be interrupted) but touches nothing of the caller
 * afterwards, so the caller may free its event right after vg_resolve_release(). */
#ifndef VIGIL_RESOLVE_H
#define VIGIL_RESOLVE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

struct event;

typedef struct vg_resolve vg_resolve_t;

#define VG_RESOLVE_MAX_ADDRS 8

typedef struct {
    char addr[VG_RESOLVE_MAX_ADDRS][INET6_ADDRSTRLEN]; /* numeric, in getaddrinfo order */
    size_t n;
    const char *error; /* NULL on success; static text otherwise */
} vg_resolve_result_t;

/* Starts resolving `host` (copied) for TCP. `done` is borrowed until release. */
vg_resolve_t *vg_resolve_start(const char *host, struct event *done);
/* After `done` fired: copies the result. Returns 0, or VG_EBUSY if still running. */
int vg_resolve_result(vg_resolve_t *r, vg_resolve_result_t *out);
/* Cancels if still running, and drops the caller's reference. NULL is fine. */
void vg_resolve_release(vg_resolve_t *r);

/* True when host is a numeric IPv4 or IPv6 address (nothing to resolve). */
bool vg_resolve_is_numeric(const char *host);

#endif
