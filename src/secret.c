/* secret.c — secrets from files: first line, trimmed, the read buffer wiped. Any
 * thread; nothing shared. The caller owns (and should wipe) the returned copy. */
#include "vigil/secret.h"
#include "vigil/common.h"
#include "vigil/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

char *vg_secret_read_file(const char *path, const char *what)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        VG_ERROR("secret", "secret_unreadable", "{s:s, s:s, s:s}", "secret", what, "path", path,
                 "error", strerror(errno));
        return NULL;
    }
    char buf[4096];
    char *line = fgets(buf, sizeof(buf), f);
    fclose(f);
    if (!line) buf[0] = '\0';
    char *s = buf;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    char *out = vg_xstrdup(s);
    explicit_bzero(buf, sizeof(buf));
    return out;
}
