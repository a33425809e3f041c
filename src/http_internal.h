/* http_internal.h — shared between http.c and http_static.c. Loop thread only. */
#ifndef VIGIL_HTTP_INTERNAL_H
#define VIGIL_HTTP_INTERNAL_H

#include "vigil/http.h"

/* Serves GET `path` from `root` if such a file exists inside root; returns false
 * (without replying) when there is no such file. Files over 4 MiB are refused. */
bool vg_http_serve_static(vg_http_req_t *r, const char *root);

#endif
