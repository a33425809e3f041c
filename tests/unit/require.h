/* require.h — what a unit test does when a tool it needs (promtool, python3-onnx, ...)
 * is missing: it fails, naming the tool and the package that provides it, so CI cannot
 * pass by skipping. A developer without the tool may set VIGIL_ALLOW_SKIP=1 to skip
 * instead. Include after <cmocka.h>. */
#ifndef VIGIL_TEST_REQUIRE_H
#define VIGIL_TEST_REQUIRE_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Skips (with VIGIL_ALLOW_SKIP=1) or fails the current test unless `have`. */
#define VG_TEST_REQUIRE(have, what)                                                                \
    do {                                                                                           \
        if (!(have)) {                                                                             \
            const char *allow_ = getenv("VIGIL_ALLOW_SKIP");                                       \
            if (allow_ && strcmp(allow_, "1") == 0) {                                              \
                print_message("      SKIPPED (VIGIL_ALLOW_SKIP=1): %s\n", what);                   \
                skip();                                                                            \
            }                                                                                      \
            fail_msg("missing: %s (scripts/install-deps.sh installs it; VIGIL_ALLOW_SKIP=1 "       \
                     "skips instead)",                                                             \
                     what);                                                                        \
        }                                                                                          \
    } while (0)

#endif
