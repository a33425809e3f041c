/* config_stream.c — one stream's configuration on its own: parsed from JSON (commands
 * and the state file go through the same schema table and checks as the YAML file),
 * copied and freed. Pure; loop thread. */
#include "config_internal.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

int vg_config_parse_stream(const vg_config_t *cfg, const char *text, size_t len,
                           vg_stream_cfg_t **out, vg_diag_t *diag)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    ctx_t c = {.name = "params", .dir = cfg->dir, .doc = &doc, .diag = diag};
    vg_stream_cfg_t *s = vg_xcalloc(1, sizeof(*s));
    *out = NULL;
    vg_cfg_apply_defaults(&c, vg_config_stream_schema, s);
    VG_CHECK(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        vg_cfg_report(&c, false, (vg_mark_t){1, 1}, "params are not a valid object");
        yaml_parser_delete(&parser);
        vg_stream_cfg_free(s);
        return VG_EINVAL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE)
        vg_cfg_report(&c, false, (vg_mark_t){1, 1}, "params must be an object");
    else
        vg_cfg_walk(&c, vg_config_stream_schema, s, root, "");
    if (diag->n_errors == 0) vg_cfg_check_stream(&c, cfg, s, "");
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    vg_cfg_ctx_free(&c);
    if (diag->n_errors) {
        vg_stream_cfg_free(s);
        return VG_EINVAL;
    }
    *out = s;
    return VG_OK;
}

vg_stream_cfg_t *vg_stream_cfg_dup(const vg_stream_cfg_t *s)
{
    vg_stream_cfg_t *d = vg_xcalloc(1, sizeof(*d));
    *d = *s;
    d->stream_id = vg_xstrdup(s->stream_id);
    d->url = vg_xstrdup(s->url);
    d->source_id = vg_xstrdup(s->source_id);
    d->rtsp_url_raw = vg_xstrdup(s->rtsp_url_raw);
    d->url_raw = vg_xstrdup(s->url_raw);
    d->workers = vg_xcalloc(s->n_workers ? s->n_workers : 1, sizeof(*d->workers));
    for (size_t i = 0; i < s->n_workers; i++) {
        vg_worker_cfg_t *w = &d->workers[i];
        *w = s->workers[i];
        w->worker_id = vg_xstrdup(w->worker_id);
        w->model_id = vg_xstrdup(w->model_id);
        w->unavailable_reason = vg_xstrdup(w->unavailable_reason);
    }
    d->privacy_masks = vg_privacy_copy(s->privacy_masks, s->n_privacy_masks);
    d->room_id = vg_xstrdup(s->room_id);
    d->zones =
        s->zones ? memcpy(vg_xcalloc(1, sizeof(*s->zones)), s->zones, sizeof(*s->zones)) : NULL;
    d->events =
        s->events ? memcpy(vg_xcalloc(1, sizeof(*s->events)), s->events, sizeof(*s->events)) : NULL;
    d->on_event = s->on_event ? memcpy(vg_xcalloc(VG_EV_NTYPES, sizeof(*s->on_event)), s->on_event,
                                       VG_EV_NTYPES * sizeof(*s->on_event))
                              : NULL;
    return d;
}

void vg_stream_cfg_free(vg_stream_cfg_t *s)
{
    if (!s) return;
    free(s->url);
    for (size_t j = 0; j < s->n_workers; j++)
        free(s->workers[j].unavailable_reason);
    vg_cfg_free_fields(vg_config_stream_schema, s);
    free(s);
}
