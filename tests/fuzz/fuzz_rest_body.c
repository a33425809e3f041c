/* libFuzzer target: request bodies of POST /api/v1/streams — JSON parsing, then the
 * stream schema and checks shared with the YAML file. Never crash; an error always
 * names a message. */
#include <jansson.h>
#include <stdlib.h>

#include "vigil/common.h"
#include "vigil/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static vg_config_t *cfg;
    if (!cfg) {
        static const char yaml[] = "instance_id: fuzz\nstream_url_template: rtsp://h/{source_id}\n";
        vg_diag_t d = {0};
        VG_CHECK(vg_config_parse(yaml, sizeof(yaml) - 1, "fuzz", ".", &cfg, &d) == 0);
        vg_diag_clear(&d);
    }
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    char *field = NULL, *msg = NULL;
    vg_stream_cfg_t *sc = vg_control_stream_from_json(cfg, body, &field, &msg);
    VG_CHECK(sc || msg);
    if (sc) {
        json_t *back = vg_control_stream_to_json(sc);
        json_decref(back);
    }
    vg_stream_cfg_free(sc);
    free(field);
    free(msg);
    json_decref(body);
    return 0;
}
