/* http_static.c — the web page's static files from http.web_root: no path traversal
 * (segments are checked and the resolved path must stay under the root), content
 * types by extension, cache headers. Loop thread; files are small and bounded. */
#include "http_internal.h"
#include "vigil/common.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_STATIC_BYTES VG_LIMIT_STATIC_FILE_BYTES

static const struct {
    const char *ext, *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < VG_ARRAY_LEN(content_types); i++)
        if (strcmp(dot, content_types[i].ext) == 0) return content_types[i].type;
    return "application/octet-stream";
}

/* Rejects "..", empty-but-dot segments, backslashes and control characters. */
static bool safe_path(const char *p)
{
    if (p[0] != '/') return false;
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == '\\') return false;
    const char *seg = p;
    while (*seg) {
        seg++;
        size_t len = strcspn(seg, "/");
        if ((len == 2 && strncmp(seg, "..", 2) == 0) || (len == 1 && seg[0] == '.')) return false;
        seg += len;
    }
    return true;
}

static char *read_small(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_STATIC_BYTES)
        goto out;
    buf = vg_xmalloc((size_t)st.st_size + 1);
    *len = fread(buf, 1, (size_t)st.st_size, f);
out:
    fclose(f);
    return buf;
}

bool vg_http_serve_static(vg_http_req_t *r, const char *root)
{
    const char *path = vg_http_path(r);
    if (!safe_path(path)) return false;
    bool index = path[strlen(path) - 1] == '/';
    char *want = vg_xasprintf("%s%s%s", root, path, index ? "index.html" : "");
    char real_root[PATH_MAX], real_file[PATH_MAX];
    bool served = false;
    if (!realpath(root, real_root) || !realpath(want, real_file)) goto out;
    size_t rl = strlen(real_root);
    if (strncmp(real_file, real_root, rl) != 0 || (real_file[rl] != '/' && real_file[rl]))
        goto out; /* a symlink out of the root */
    size_t len = 0;
    char *body = read_small(real_file, &len);
    if (!body) goto out;
    const char *type = content_type(real_file);
    bool html = strncmp(type, "text/html", 9) == 0;
    vg_http_add_header(r, "Cache-Control", html ? "no-cache" : "public, max-age=300");
    vg_http_reply(r, 200, type, body, len);
    free(body);
    served = true;
out:
    free(want);
    return served;
}
