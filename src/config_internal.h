/* config_internal.h — the schema types shared by config.c (walker) and
 * config_check.c (cross-key validation). Private to the config module. */
#ifndef VIGIL_CONFIG_INTERNAL_H
#define VIGIL_CONFIG_INTERNAL_H

#include "vigil/common.h"
#include "vigil/config.h"

#include <jansson.h>
#include <yaml.h>

typedef enum {
    K_STR,      /* char * */
    K_PATH,     /* char *, resolved against the config file's folder */
    K_INT,      /* int within [min, max] */
    K_DBL,      /* double within [min, max] */
    K_BOOL,     /* bool */
    K_ENUM,     /* int index into names */
    K_ENUM_STR, /* char *, one of names */
    K_OBJ,      /* nested mapping; sub-struct at off */
    K_LIST,     /* list of mappings; array pointer at off, size_t count at count_off */
    K_JSON,     /* any YAML value, converted to JSON and given to `parse` (zones, events) */
} field_kind_t;

enum {
    F_REQUIRED = 1 << 0,
    F_ID = 1 << 1,           /* [A-Za-z0-9_.-]{1,64} */
    F_FILE = 1 << 2,         /* when non-empty, must be a readable file */
    F_MARK = 1 << 3,         /* record the value's position at mark_off */
    F_ENV = 1 << 4,          /* "$VAR" / "${VAR}" takes the value from the environment */
    F_OPTIONAL_OBJ = 1 << 5, /* nested mapping with no defaults (e.g. roi) */
};

typedef struct schema schema_t;

typedef struct {
    const char *name;
    field_kind_t kind;
    size_t off;
    const char *def; /* default, as YAML scalar text; NULL for none */
    double min, max;
    const char *const *names; /* K_ENUM, K_ENUM_STR: NULL-terminated */
    const schema_t *sub;      /* K_OBJ, K_LIST */
    size_t count_off;         /* K_LIST */
    size_t mark_off;          /* F_MARK */
    unsigned flags;
    const char *hint; /* appended to a range error */
    /* K_JSON: parses the value (borrowed; `key` names it in errors) into the pointer at
     * off (allocated; freed with free()); 0, or VG_EINVAL with err naming the field. */
    int (*parse)(const json_t *value, const char *key, void **dst, vg_jerr_t *err);
} field_t;

struct schema {
    const char *what;
    const field_t *fields;
    size_t n_fields;
    size_t size; /* element size when used in a K_LIST */
    bool has_mark;
    size_t mark_off; /* where list elements record their own position */
};

typedef struct {
    const char *name; /* file name used in messages */
    const char *dir;
    yaml_document_t *doc;
    vg_diag_t *diag;
    char **keys; /* every key walked, with its position, for cross-key messages */
    vg_mark_t *marks;
    size_t n_keys;
} ctx_t;

extern const schema_t vg_config_root_schema;
extern const char *const vg_config_worker_types[]; /* by vg_worker_type_t, NULL-terminated */
extern const schema_t *const vg_config_stream_schema;
extern const schema_t *const vg_config_worker_schema;

void vg_cfg_report(ctx_t *c, bool warning, vg_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void vg_cfg_apply_defaults(ctx_t *c, const schema_t *s, void *base);
void vg_cfg_free_fields(const schema_t *s, void *base);
void vg_cfg_ctx_free(ctx_t *c);
void vg_cfg_walk(ctx_t *c, const schema_t *s, void *base, yaml_node_t *map, const char *path);
/* Position of `key` ("http.listen") in the file, {0, 0} if it was not given. */
vg_mark_t vg_cfg_mark(const ctx_t *c, const char *key);
char *vg_cfg_resolve_path(const char *dir, const char *p);

/* config_json.c: K_JSON values */
vg_mark_t vg_cfg_node_mark(const yaml_node_t *n);
void vg_cfg_walk_json(ctx_t *c, const field_t *f, void *base, yaml_node_t *v, const char *key);
int vg_cfg_parse_zones(const json_t *v, const char *key, void **dst, vg_jerr_t *err);
int vg_cfg_parse_events(const json_t *v, const char *key, void **dst, vg_jerr_t *err);
int vg_cfg_parse_on_event(const json_t *v, const char *key, void **dst, vg_jerr_t *err);
json_t *vg_cfg_on_event_to_json(const vg_escalation_t *on_event);
/* Cross-key validation and resolution; reports through c. */
void vg_cfg_check(ctx_t *c, vg_config_t *cfg);
void vg_cfg_check_stream(ctx_t *c, const vg_config_t *cfg, vg_stream_cfg_t *s, const char *key);
void vg_cfg_check_worker(ctx_t *c, const vg_config_t *cfg, vg_worker_cfg_t *w, const char *key);

#endif
