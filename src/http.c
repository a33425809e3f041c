/* http.c — libmicrohttpd driven by the libevent loop. MHD runs in external epoll
 * mode: its epoll fd is one persistent libevent read event, plus a timer for MHD's
 * own timeouts, so MHD never starts a thread and every handler runs on the loop
 * thread. Requests are dispatched through a route table; bodies are buffered up to
 * VG_HTTP_MAX_BODY; a deferred request is suspended and resumed when its reply is set. */
#include "http_internal.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_ROUTES 64
#define MAX_CAPTURES 4
#define MAX_HEADERS 8

typedef struct {
    const vg_http_route_t *route;
    void *arg;
} route_entry_t;

struct vg_http {
    struct MHD_Daemon *mhd;
    struct event_base *base;
    struct event *io, *timer;
    route_entry_t routes[MAX_ROUTES];
    size_t n_routes;
    char *token;
    bool auth_reads;
    char *web_root;
    vg_metric_t *requests;
    vg_http_req_t *suspended; /* deferred requests waiting for their reply */
};

struct vg_http_req {
    vg_http_t *h;
    struct MHD_Connection *conn;
    char *method, *path;
    char *body;
    size_t body_len;
    bool too_large, dispatched, deferred, suspended;
    struct MHD_Response *resp; /* built by a reply, queued by the access handler */
    int status;
    const char *route_label;
    char remote[INET6_ADDRSTRLEN];
    const char *cap_names[MAX_CAPTURES];
    size_t cap_name_len[MAX_CAPTURES];
    char *cap_values[MAX_CAPTURES];
    size_t n_caps;
    char *hdr_names[MAX_HEADERS], *hdr_values[MAX_HEADERS];
    size_t n_hdr;
    vg_http_req_t *next_suspended, **prev_suspended;
};

/* ---- driving MHD from libevent ------------------------------------------------- */

static void schedule(vg_http_t *h)
{
    MHD_UNSIGNED_LONG_LONG ms = 1000;
    if (MHD_get_timeout(h->mhd, &ms) != MHD_YES || ms > 1000) ms = 1000;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(h->timer, &tv);
}

static void on_mhd(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    vg_http_t *h = arg;
    MHD_run(h->mhd);
    schedule(h);
}

/* ---- routing ---------------------------------------------------------------------- */

/* Matches `path` against `pattern`; fills captures. */
static bool match(const char *pattern, const char *path, vg_http_req_t *r)
{
    r->n_caps = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            size_t seg = strcspn(s, "/");
            if (!close || seg == 0 || r->n_caps == MAX_CAPTURES) return false;
            r->cap_names[r->n_caps] = p + 1;
            r->cap_name_len[r->n_caps] = (size_t)(close - p - 1);
            r->cap_values[r->n_caps] = strndup(s, seg);
            VG_CHECK(r->cap_values[r->n_caps]);
            r->n_caps++;
            p = close + 1;
            s += seg;
            continue;
        }
        if (*p != *s) return false;
        p++;
        s++;
    }
    return *p == '\0' && *s == '\0';
}

static void clear_caps(vg_http_req_t *r)
{
    for (size_t i = 0; i < r->n_caps; i++)
        free(r->cap_values[i]);
    r->n_caps = 0;
}

static bool token_ok(const vg_http_t *h, const char *auth)
{
    static const char prefix[] = "Bearer ";
    if (!auth || strncmp(auth, prefix, sizeof(prefix) - 1) != 0) return false;
    const char *given = auth + sizeof(prefix) - 1;
    size_t lg = strlen(given), lt = strlen(h->token);
    /* constant time in the token's length: always walk the whole token */
    unsigned diff = (unsigned)(lg ^ lt);
    for (size_t i = 0; i < lt; i++)
        diff |= (unsigned char)h->token[i] ^ (unsigned char)(i < lg ? given[i] : 0);
    return diff == 0;
}

static void dispatch(vg_http_req_t *r)
{
    vg_http_t *h = r->h;
    bool path_known = false;
    for (size_t i = 0; i < h->n_routes; i++) {
        const vg_http_route_t *rt = h->routes[i].route;
        bool m = match(rt->pattern, r->path, r);
        if (!m) {
            clear_caps(r);
            continue;
        }
        path_known = true;
        if (strcmp(rt->method, r->method) != 0 &&
            !(strcmp(rt->method, "GET") == 0 && strcmp(r->method, "HEAD") == 0)) {
            clear_caps(r);
            continue;
        }
        r->route_label = rt->pattern;
        bool need = h->token && (rt->access == VG_ACCESS_MUTATE ||
                                 (rt->access == VG_ACCESS_READ && h->auth_reads));
        if (need && !token_ok(h, vg_http_header(r, MHD_HTTP_HEADER_AUTHORIZATION))) {
            vg_http_add_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
            vg_http_reply_error(r, 401, "unauthorized",
                                "this route needs 'Authorization: Bearer <token>'", NULL);
            return;
        }
        if (r->too_large) {
            vg_http_reply_error(r, 413, "payload_too_large", "request body is over 64 KiB", NULL);
            return;
        }
        rt->fn(r, h->routes[i].arg);
        return;
    }
    if (path_known) {
        r->route_label = "method_not_allowed";
        vg_http_reply_error(r, 405, "method_not_allowed", "method not allowed on this path", NULL);
        return;
    }
    /* the page's static files hold no data: a browser must load them to ask for a token */
    if ((strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0) && h->web_root) {
        r->route_label = "static";
        if (vg_http_serve_static(r, h->web_root)) return;
    }
    r->route_label = "not_found";
    vg_http_reply_error(r, 404, "not_found", "no such resource", NULL);
}

/* Metric labels never carry what a client typed: the method comes from this fixed set
 * (else "other"), the route from the route table or a fixed name. */
static const char *method_label(const char *method)
{
    static const char *const known[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
    for (size_t i = 0; method && i < VG_ARRAY_LEN(known); i++)
        if (strcmp(method, known[i]) == 0) return known[i];
    return "other";
}

static enum MHD_Result queue(vg_http_req_t *r)
{
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    char code[8];
    snprintf(code, sizeof(code), "%d", r->status);
    vg_series_inc(vg_metric_series(r->h->requests, r->route_label ? r->route_label : "other",
                                   method_label(r->method), code));
    return ret;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_size, void **con_cls)
{
    (void)version;
    vg_http_t *h = cls;
    vg_http_req_t *r = *con_cls;
    if (!r) {
        r = vg_xcalloc(1, sizeof(*r));
        r->h = h;
        r->conn = conn;
        r->method = vg_xstrdup(method);
        r->path = vg_xstrdup(url);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        if (sa && sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, r->remote,
                      sizeof(r->remote));
        else if (sa && sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      r->remote, sizeof(r->remote));
        *con_cls = r;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > VG_HTTP_MAX_BODY) {
            r->dispatched = true;
            r->route_label = "too_large";
            vg_http_reply_error(r, 413, "payload_too_large", "request body is over 64 KiB", NULL);
            return queue(r);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        if (!r->too_large && r->body_len + n <= VG_HTTP_MAX_BODY) {
            r->body = vg_xrealloc(r->body, r->body_len + n + 1);
            memcpy(r->body + r->body_len, upload_data, n);
            r->body_len += n;
            r->body[r->body_len] = '\0';
        } else {
            r->too_large = true; /* keep reading, answer 413 at the end */
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->resp) return queue(r);
    if (r->dispatched) return MHD_YES; /* deferred, still waiting: stay suspended */
    r->dispatched = true;
    dispatch(r);
    if (r->resp) return queue(r);
    if (r->deferred) {
        MHD_suspend_connection(conn);
        r->suspended = true;
        r->next_suspended = h->suspended; /* listed so a shutdown can answer it */
        if (h->suspended) h->suspended->prev_suspended = &r->next_suspended;
        r->prev_suspended = &h->suspended;
        h->suspended = r;
        return MHD_YES;
    }
    vg_http_reply_error(r, 500, "internal", "handler did not reply", NULL);
    return queue(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    vg_http_req_t *r = *con_cls;
    if (!r) return;
    clear_caps(r);
    for (size_t i = 0; i < r->n_hdr; i++) {
        free(r->hdr_names[i]);
        free(r->hdr_values[i]);
    }
    if (r->resp) MHD_destroy_response(r->resp);
    free(r->method);
    free(r->path);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    VG_DEBUG("http", "mhd", "{s:s}", "message", msg);
}

/* ---- public API -------------------------------------------------------------------- */

static int parse_listen(const char *listen, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    const char *colon = strrchr(listen, ':');
    char host[64];
    if (!colon || (size_t)(colon - listen) >= sizeof(host)) {
        snprintf(err, errlen, "http.listen '%s' is not HOST:PORT", listen);
        return VG_EINVAL;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    int port = atoi(colon + 1);
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
    } else {
        snprintf(err, errlen, "http.listen host '%s' is not a numeric address", host);
        return VG_EINVAL;
    }
    return VG_OK;
}

int vg_http_new(struct event_base *base, const vg_http_opts_t *o, vg_http_t **out, char *err,
                size_t errlen)
{
    struct sockaddr_storage ss;
    if (parse_listen(o->listen, &ss, err, errlen) != 0) return VG_EINVAL;
    vg_http_t *h = vg_xcalloc(1, sizeof(*h));
    h->base = base;
    h->web_root = vg_xstrdup(o->web_root);
    vg_http_set_auth(h, o->auth_token, o->auth_reads);
    h->requests = vg_metric_counter("vigil_http_requests_total",
                                    "HTTP requests by route and status", "route,method,code");
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    h->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)o->per_ip_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        o->memory_limit, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, h, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)256, MHD_OPTION_END);
    if (!h->mhd) {
        snprintf(err, errlen, "cannot listen on %s (address in use or not permitted)", o->listen);
        vg_http_free(h);
        return VG_EIO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    VG_CHECK(di != NULL);
    h->io = event_new(base, di->epoll_fd, EV_READ | EV_PERSIST, on_mhd, h);
    h->timer = evtimer_new(base, on_mhd, h);
    VG_CHECK(h->io && h->timer);
    event_add(h->io, NULL);
    schedule(h);
    *out = h;
    return VG_OK;
}

void vg_http_add_routes(vg_http_t *h, const vg_http_route_t *routes, size_t n, void *arg)
{
    for (size_t i = 0; i < n; i++) {
        VG_CHECK(h->n_routes < MAX_ROUTES);
        h->routes[h->n_routes++] = (route_entry_t){&routes[i], arg};
    }
}

void vg_http_set_auth(vg_http_t *h, const char *token, bool auth_reads)
{
    free(h->token);
    h->token = token && *token ? vg_xstrdup(token) : NULL;
    h->auth_reads = auth_reads;
}

void vg_http_free(vg_http_t *h)
{
    if (!h) return;
    /* MHD refuses to stop with suspended connections: answer what still waits */
    while (h->suspended)
        vg_http_reply_error(h->suspended, 503, "shutting_down", "the gateway is stopping", NULL);
    if (h->io) event_free(h->io);
    if (h->timer) event_free(h->timer);
    if (h->mhd) MHD_stop_daemon(h->mhd);
    free(h->token);
    free(h->web_root);
    free(h);
}

const char *vg_http_method(const vg_http_req_t *r)
{
    return r->method;
}

const char *vg_http_path(const vg_http_req_t *r)
{
    return r->path;
}

const char *vg_http_param(const vg_http_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->n_caps; i++)
        if (strlen(name) == r->cap_name_len[i] &&
            strncmp(r->cap_names[i], name, r->cap_name_len[i]) == 0)
            return r->cap_values[i];
    return NULL;
}

const char *vg_http_query(const vg_http_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *vg_http_header(const vg_http_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *vg_http_body(const vg_http_req_t *r, size_t *len)
{
    if (len) *len = r->body_len;
    return r->body ? r->body : "";
}

const char *vg_http_remote(const vg_http_req_t *r)
{
    return r->remote;
}

void vg_http_add_header(vg_http_req_t *r, const char *name, const char *value)
{
    VG_CHECK(r->n_hdr < MAX_HEADERS);
    r->hdr_names[r->n_hdr] = vg_xstrdup(name);
    r->hdr_values[r->n_hdr++] = vg_xstrdup(value);
}

void vg_http_reply(vg_http_req_t *r, int status, const char *content_type, const void *body,
                   size_t len)
{
    VG_CHECK(r->resp == NULL);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    VG_CHECK(resp);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    bool cache_set = false;
    for (size_t i = 0; i < r->n_hdr; i++) {
        MHD_add_response_header(resp, r->hdr_names[i], r->hdr_values[i]);
        cache_set |= strcasecmp(r->hdr_names[i], MHD_HTTP_HEADER_CACHE_CONTROL) == 0;
    }
    if (!cache_set) MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    r->status = status;
    r->resp = resp;
    if (r->suspended) {
        r->suspended = false;
        *r->prev_suspended = r->next_suspended;
        if (r->next_suspended) r->next_suspended->prev_suspended = r->prev_suspended;
        MHD_resume_connection(r->conn);
        event_active(r->h->io, EV_READ, 0);
    }
}

void vg_http_reply_json(vg_http_req_t *r, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(body);
    VG_CHECK(text);
    size_t len = strlen(text);
    text[len] = '\n';
    vg_http_reply(r, status, "application/json", text, len + 1);
    free(text);
}

void vg_http_reply_error(vg_http_req_t *r, int status, const char *code, const char *message,
                         const char *field)
{
    json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);
    VG_CHECK(err);
    json_object_set_new(err, "field", field ? json_string(field) : json_null());
    vg_http_reply_json(r, status, json_pack("{s:o}", "error", err));
}

void vg_http_defer(vg_http_req_t *r)
{
    r->deferred = true;
}

json_t *vg_http_body_json(vg_http_req_t *r)
{
    /* The body decides: JSON is accepted whatever curl's default Content-Type said;
     * a body that is not JSON is 415 unless it claimed to be JSON (then 400). */
    const char *ct = vg_http_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    bool claims_json = ct && strncasecmp(ct, "application/json", 16) == 0;
    json_error_t jerr;
    json_t *j = json_loadb(vg_http_body(r, NULL), r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        char msg[256];
        snprintf(msg, sizeof(msg), "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        if (claims_json)
            vg_http_reply_error(r, 400, "invalid_json", msg, NULL);
        else
            vg_http_reply_error(r, 415, "unsupported_media_type",
                                "request body must be JSON (application/json)", NULL);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        vg_http_reply_error(r, 400, "invalid_json", "request body must be a JSON object", NULL);
        return NULL;
    }
    return j;
}
