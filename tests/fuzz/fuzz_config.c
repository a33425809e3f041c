/* libFuzzer target: the YAML configuration loader must report, never crash or leak,
 * on any input. */
#include <stddef.h>
#include <stdint.h>

#include "vigil/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vg_diag_t diag = {0};
    vg_config_t *cfg = NULL;
    if (vg_config_parse((const char *)data, size, "fuzz.yaml", "/nonexistent", &cfg, &diag) == 0)
        vg_config_free(cfg);
    vg_diag_clear(&diag);
    return 0;
}
