/* log.c — one JSON object per line: {"ts","level","module","event",fields...}.
 * Any thread may log; each line is formatted privately and written with one write(2)
 * under a mutex so lines never interleave. Also the URL redaction helper. */
#include "vigil/log.h"
#include "vigil/common.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static atomic_int log_level = VG_LOG_INFO;
static atomic_int log_fd = 2;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void vg_log_set_level(vg_log_level_t level)
{
    atomic_store(&log_level, (int)level);
}

vg_log_level_t vg_log_get_level(void)
{
    return (vg_log_level_t)atomic_load(&log_level);
}

bool vg_log_enabled(vg_log_level_t level)
{
    return (int)level >= atomic_load(&log_level);
}

void vg_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

int vg_log_level_parse(const char *s, vg_log_level_t *out)
{
    for (size_t i = 0; s && i < VG_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (vg_log_level_t)i;
            return VG_OK;
        }
    }
    return VG_EINVAL;
}

const char *vg_log_level_name(vg_log_level_t level)
{
    return (unsigned)level < VG_ARRAY_LEN(level_names) ? level_names[level] : "info";
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0) return; /* nowhere left to report a logging failure */
        buf += n;
        len -= (size_t)n;
    }
}

void vg_log(vg_log_level_t level, const char *module, const char *event, const char *fields, ...)
{
    if (!vg_log_enabled(level)) {
        /* 'o' arguments are references handed to us: pack and drop them, or they leak.
         * In a pack format 'o' only ever means "steal this reference". */
        if (fields && strchr(fields, 'o')) {
            va_list ap;
            va_start(ap, fields);
            json_decref(json_vpack_ex(NULL, 0, fields, ap));
            va_end(ap);
        }
        return;
    }
    char ts[32];
    vg_format_time(vg_now_wall(), ts, sizeof(ts));
    json_t *line = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level", vg_log_level_name(level),
                             "module", module, "event", event);
    VG_CHECK(line != NULL);
    if (fields) {
        va_list ap;
        va_start(ap, fields);
        json_error_t jerr;
        json_t *extra = json_vpack_ex(&jerr, 0, fields, ap);
        va_end(ap);
        if (extra)
            json_object_update_missing(line, extra);
        else
            json_object_set_new(line, "log_format_error", json_string(jerr.text));
        json_decref(extra);
    }
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
    json_decref(line);
    VG_CHECK(text != NULL);
    size_t len = strlen(text);
    text[len] = '\0';
    pthread_mutex_lock(&log_mu);
    write_all(atomic_load(&log_fd), text, len);
    write_all(atomic_load(&log_fd), "\n", 1);
    pthread_mutex_unlock(&log_mu);
    free(text);
}

static bool is_secret_param(const char *name, size_t len)
{
    static const char *const secret[] = {"password", "pass", "pwd",    "passwd",
                                         "token",    "key",  "secret", "auth"};
    for (size_t i = 0; i < VG_ARRAY_LEN(secret); i++)
        if (strlen(secret[i]) == len && strncasecmp(name, secret[i], len) == 0) return true;
    return false;
}

/* Masks secret query parameter values in place-built output. */
static void redact_query(const char *q, char **out, size_t *pos)
{
    while (*q) {
        const char *end = q + strcspn(q, "&#");
        const char *eq = memchr(q, '=', (size_t)(end - q));
        if (eq && is_secret_param(q, (size_t)(eq - q))) {
            size_t n = (size_t)(eq - q) + 1;
            memcpy(*out + *pos, q, n);
            *pos += n;
            memcpy(*out + *pos, "***", 3);
            *pos += 3;
        } else {
            memcpy(*out + *pos, q, (size_t)(end - q));
            *pos += (size_t)(end - q);
        }
        if (*end == '#') {
            strcpy(*out + *pos, end);
            *pos += strlen(end);
            return;
        }
        if (*end == '&') (*out)[(*pos)++] = '&';
        q = *end ? end + 1 : end;
    }
}

char *vg_redact_url(const char *url)
{
    if (!url) return NULL;
    size_t len = strlen(url);
    char *out = vg_xmalloc(len + 4 * len / 2 + 8); /* "***" may be longer than a value */
    size_t pos = 0;
    const char *p = url;
    const char *scheme = strstr(url, "://");
    if (scheme) {
        const char *auth = scheme + 3;
        const char *auth_end = auth + strcspn(auth, "/?#");
        const char *at = NULL;
        for (const char *c = auth; c < auth_end; c++)
            if (*c == '@') at = c; /* the last '@' ends the userinfo */
        if (at) {
            const char *colon = memchr(auth, ':', (size_t)(at - auth));
            size_t keep = (size_t)((colon ? colon : at) - url);
            memcpy(out, url, keep);
            pos = keep;
            if (colon) {
                memcpy(out + pos, ":***", 4);
                pos += 4;
            }
            p = at;
        }
    }
    const char *qm = strchr(p, '?');
    size_t head = qm ? (size_t)(qm - p) + 1 : strlen(p);
    memcpy(out + pos, p, head);
    pos += head;
    if (qm) redact_query(qm + 1, &out, &pos);
    out[pos] = '\0';
    return out;
}
