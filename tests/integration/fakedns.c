/* fakedns.c — LD_PRELOAD shim for integration tests, built by the test that uses it.
 * getaddrinfo() answers the names listed in VG_FAKEDNS ("name=addr,name=addr") with
 * that numeric address after sleeping VG_FAKEDNS_DELAY_S seconds (a resolver that
 * hangs); every other name goes to the real getaddrinfo(). Any thread. */
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

/* Copies the address mapped to `name` into out; 0 when the name is not listed. */
static int lookup(const char *name, char *out, size_t len)
{
    const char *map = getenv("VG_FAKEDNS");
    size_t n = strlen(name);
    for (const char *p = map; p && *p;) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        if (eq && eq < end && (size_t)(eq - p) == n && strncmp(p, name, n) == 0 &&
            (size_t)(end - eq) < len) {
            memcpy(out, eq + 1, (size_t)(end - eq - 1));
            out[end - eq - 1] = '\0';
            return 1;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    char addr[64];
    if (!node || !lookup(node, addr, sizeof(addr))) return real(node, service, hints, res);
    const char *delay = getenv("VG_FAKEDNS_DELAY_S");
    double s = delay ? atof(delay) : 0;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (s > 0 && nanosleep(&ts, &ts) != 0) {
    }
    struct addrinfo h = hints ? *hints : (struct addrinfo){0};
    h.ai_flags |= AI_NUMERICHOST;
    h.ai_flags &= ~AI_ADDRCONFIG;
    return real(addr, service, &h, res);
}
