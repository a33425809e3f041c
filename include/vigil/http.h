/* http.h — libmicrohttpd inside the libevent loop (external epoll mode, no MHD
 * threads): routing by a table of method + path pattern, bearer-token auth, body
 * limits, JSON errors, static files. Everything here runs on the loop thread;
 * handlers too. A handler either replies at once or defers and replies later from the
 * loop thread (for work done off the loop: snapshots, model loads). */
#ifndef VIGIL_HTTP_H
#define VIGIL_HTTP_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vigil/limits.h"

#define VG_HTTP_MAX_BODY VG_LIMIT_HTTP_BODY_BYTES

typedef struct vg_http vg_http_t;
typedef struct vg_http_req vg_http_req_t; /* owned by vg_http; valid until replied */

typedef enum {
    VG_ACCESS_PUBLIC = 0, /* never needs the token: /healthz, /readyz, /metrics */
    VG_ACCESS_READ,       /* needs the token only when auth_reads is set */
    VG_ACCESS_MUTATE,     /* needs the token whenever one is configured */
} vg_http_access_t;

typedef void (*vg_http_handler_fn)(vg_http_req_t *req, void *arg);

typedef struct {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/api/v1/streams/{id}/restart": {name} captures one segment */
    vg_http_handler_fn fn;
    vg_http_access_t access;
} vg_http_route_t;

typedef struct {
    const char *listen; /* "HOST:PORT", numeric host or localhost */
    int max_connections;
    int per_ip_connections;
    int timeout_s;          /* idle connection timeout */
    size_t memory_limit;    /* per connection, bytes */
    const char *auth_token; /* NULL or "": no auth; borrowed for the call (copied) */
    bool auth_reads;
    const char *web_root; /* NULL: no static files; borrowed (copied) */
} vg_http_opts_t;

/* Starts listening. Returns 0, or a negative code with a reason in err. */
int vg_http_new(struct event_base *base, const vg_http_opts_t *opts, vg_http_t **out, char *err,
                size_t errlen);
/* Adds routes (the table must outlive the server); `arg` is passed to their handlers. */
void vg_http_add_routes(vg_http_t *h, const vg_http_route_t *routes, size_t n, void *arg);
/* Stops listening and closes every connection. Deferred requests are dropped. NULL ok. */
void vg_http_free(vg_http_t *h);
/* Replaces the auth token (SIGHUP reload). */
void vg_http_set_auth(vg_http_t *h, const char *token, bool auth_reads);

/* Request accessors: strings are borrowed and live as long as the request. */
const char *vg_http_method(const vg_http_req_t *r);
const char *vg_http_path(const vg_http_req_t *r);
const char *vg_http_param(const vg_http_req_t *r, const char *name); /* pattern capture */
const char *vg_http_query(const vg_http_req_t *r, const char *name);
const char *vg_http_header(const vg_http_req_t *r, const char *name);
const char *vg_http_body(const vg_http_req_t *r, size_t *len); /* NUL-terminated */
const char *vg_http_remote(const vg_http_req_t *r);            /* "127.0.0.1" */

/* Replies (exactly once per request; copies the body). */
void vg_http_reply(vg_http_req_t *r, int status, const char *content_type, const void *body,
                   size_t len);
void vg_http_reply_json(vg_http_req_t *r, int status, json_t *body /* takes ownership */);
/* {"error": {"code", "message", "field"}}; field may be NULL. */
void vg_http_reply_error(vg_http_req_t *r, int status, const char *code, const char *message,
                         const char *field);
/* Adds a response header to the coming reply. */
void vg_http_add_header(vg_http_req_t *r, const char *name, const char *value);
/* The handler will reply later (on the loop thread). */
void vg_http_defer(vg_http_req_t *r);

/* Parses the body as a JSON object, or replies 415/400 and returns NULL. */
json_t *vg_http_body_json(vg_http_req_t *r);

#endif
