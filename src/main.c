/* main.c — vigild's command line, start-up and exit. Loads and validates the
 * configuration (from -c FILE or the embedded default), then hands the loop thread to
 * the gateway until a signal stops it. */
#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/gateway.h"
#include "vigil/log.h"

#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: vigild [-c FILE] [--check-config] [--log-level LEVEL] [--version]\n"
                 "  -c, --config FILE    configuration file (default: embedded configuration)\n"
                 "      --check-config   validate the configuration, print problems, exit 0/1\n"
                 "      --log-level L    debug | info | warn | error (overrides the file)\n"
                 "      --version        print the version and exit\n"
                 "  -h, --help           this text\n");
}

static void print_diag(const vg_diag_t *d)
{
    for (size_t i = 0; i < d->n_errors; i++)
        fprintf(stderr, "%s\n", d->errors[i]);
    for (size_t i = 0; i < d->n_warnings; i++)
        fprintf(stderr, "%s\n", d->warnings[i]);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'k'},
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *level = NULL;
    bool check = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            path = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'l':
            level = optarg;
            break;
        case 'V':
            printf("vigild %s\n", VG_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vigild: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    vg_log_level_t lvl;
    if (level && vg_log_level_parse(level, &lvl) != 0) {
        fprintf(stderr, "vigild: --log-level: expected debug | info | warn | error, got '%s'\n",
                level);
        return 2;
    }
    vg_diag_t diag = {0};
    vg_config_t *cfg = NULL;
    int rc = path ? vg_config_load(path, &cfg, &diag)
                  : vg_config_parse(vg_default_config_yaml, strlen(vg_default_config_yaml),
                                    "<embedded>", ".", &cfg, &diag);
    print_diag(&diag);
    vg_diag_clear(&diag);
    if (rc != 0) {
        fprintf(stderr, "vigild: %s: configuration is invalid\n", path ? path : "<embedded>");
        return 1;
    }
    if (check) {
        printf("%s: configuration is valid (%zu streams, %zu models)\n", path ? path : "<embedded>",
               cfg->n_streams, cfg->n_models);
        vg_config_free(cfg);
        return 0;
    }
    /* A daemon that runs for months with many threads: few malloc arenas and big
     * buffers (frames) straight from mmap keep freed memory from lingering as growth. */
    mallopt(M_ARENA_MAX, 2);
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    vg_log_set_level(level ? lvl : cfg->log_level);
    vg_gateway_t *gw = NULL;
    if (vg_gateway_new(cfg, level, &gw) != 0) return 1;
    rc = vg_gateway_run(gw);
    vg_gateway_free(gw);
    return rc;
}
