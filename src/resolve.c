/* resolve.c — getaddrinfo() on a detached thread, result handed back to the loop with
 * event_active() (see resolve.h). The lookup is shared by the loop and the thread and
 * refcounted under its mutex; `cancelled` tells the thread not to touch the caller's
 * event any more. */
#include "vigil/resolve.h"
#include "vigil/common.h"

#include <event2/event.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct vg_resolve {
    pthread_mutex_t mu;
    int refs;       /* the caller and the thread */
    bool cancelled; /* caller released it: leave `done` alone */
    bool finished;
    struct event *done;
    char *host;
    vg_resolve_result_t result;
};

static void unref(vg_resolve_t *r)
{
    VG_CHECK(pthread_mutex_lock(&r->mu) == 0);
    int left = --r->refs;
    VG_CHECK(pthread_mutex_unlock(&r->mu) == 0);
    if (left) return;
    pthread_mutex_destroy(&r->mu);
    free(r->host);
    free(r);
}

static void lookup(const char *host, vg_resolve_result_t *out)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        out->error = gai_strerror(rc);
        return;
    }
    for (struct addrinfo *ai = res; ai && out->n < VG_RESOLVE_MAX_ADDRS; ai = ai->ai_next) {
        char *dst = out->addr[out->n];
        if (getnameinfo(ai->ai_addr, ai->ai_addrlen, dst, INET6_ADDRSTRLEN, NULL, 0,
                        NI_NUMERICHOST) != 0)
            continue;
        bool dup = false;
        for (size_t i = 0; i < out->n; i++)
            dup = dup || strcmp(out->addr[i], dst) == 0;
        if (!dup) out->n++;
    }
    freeaddrinfo(res);
    if (out->n == 0) out->error = "no usable address";
}

static void *resolve_main(void *arg)
{
    vg_resolve_t *r = arg;
    pthread_setname_np(pthread_self(), "vg-resolve");
    vg_resolve_result_t res = {0};
    lookup(r->host, &res);
    VG_CHECK(pthread_mutex_lock(&r->mu) == 0);
    r->result = res;
    r->finished = true;
    if (!r->cancelled) event_active(r->done, EV_READ, 0);
    VG_CHECK(pthread_mutex_unlock(&r->mu) == 0);
    unref(r);
    return NULL;
}

vg_resolve_t *vg_resolve_start(const char *host, struct event *done)
{
    vg_resolve_t *r = vg_xcalloc(1, sizeof(*r));
    VG_CHECK(pthread_mutex_init(&r->mu, NULL) == 0);
    r->refs = 2;
    r->done = done;
    r->host = vg_xstrdup(host);
    pthread_attr_t attr;
    pthread_t tid;
    VG_CHECK(pthread_attr_init(&attr) == 0);
    VG_CHECK(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0);
    VG_CHECK(pthread_create(&tid, &attr, resolve_main, r) == 0);
    pthread_attr_destroy(&attr);
    return r;
}

int vg_resolve_result(vg_resolve_t *r, vg_resolve_result_t *out)
{
    VG_CHECK(pthread_mutex_lock(&r->mu) == 0);
    bool finished = r->finished;
    if (finished) *out = r->result;
    VG_CHECK(pthread_mutex_unlock(&r->mu) == 0);
    return finished ? VG_OK : VG_EBUSY;
}

void vg_resolve_release(vg_resolve_t *r)
{
    if (!r) return;
    VG_CHECK(pthread_mutex_lock(&r->mu) == 0);
    r->cancelled = true;
    VG_CHECK(pthread_mutex_unlock(&r->mu) == 0);
    unref(r);
}

bool vg_resolve_is_numeric(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}
