/* log.h — structured logging: one JSON object per line on stderr, with ts, level,
 * module, event and fields. Thread-safe; any thread may log. Also the URL redaction
 * helper used by everything that logs or serves a URL. */
#ifndef VIGIL_LOG_H
#define VIGIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { VG_LOG_DEBUG = 0, VG_LOG_INFO, VG_LOG_WARN, VG_LOG_ERROR } vg_log_level_t;

void vg_log_set_level(vg_log_level_t level);
vg_log_level_t vg_log_get_level(void);
bool vg_log_enabled(vg_log_level_t level);
/* Parses "debug" | "info" | "warn" | "error". Returns 0 or VG_EINVAL. */
int vg_log_level_parse(const char *s, vg_log_level_t *out);
const char *vg_log_level_name(vg_log_level_t level);

/* Logs one line. `fields` is a jansson json_pack() format for an object, for example
 * "{s:s, s:i}", followed by its arguments; NULL for no fields. */
void vg_log(vg_log_level_t level, const char *module, const char *event, const char *fields, ...);

#define VG_DEBUG(mod, ev, ...) vg_log(VG_LOG_DEBUG, mod, ev, __VA_ARGS__)
#define VG_INFO(mod, ev, ...) vg_log(VG_LOG_INFO, mod, ev, __VA_ARGS__)
#define VG_WARN(mod, ev, ...) vg_log(VG_LOG_WARN, mod, ev, __VA_ARGS__)
#define VG_ERROR(mod, ev, ...) vg_log(VG_LOG_ERROR, mod, ev, __VA_ARGS__)

/* Redirects log output to fd (tests). Default 2 (stderr). */
void vg_log_set_fd(int fd);

/* Copies `url` to a new string with any password replaced by "***":
 * "rtsp://user:secret@host/x" -> "rtsp://user:***@host/x". Also masks the values of
 * query parameters named password, pass, pwd, token, key, secret, auth.
 * NULL in, NULL out. Caller frees. */
char *vg_redact_url(const char *url);

#endif
