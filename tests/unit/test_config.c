/* Unit tests for the config loader: the shipped files load, and every validation rule
 * reports the right line, column and key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/common.h"
#include "vigil/config.h"

static char *src_path(const char *rel)
{
    const char *root = getenv("VIGIL_SOURCE_DIR");
    static char buf[4096];
    snprintf(buf, sizeof(buf), "%s/%s", root ? root : ".", rel);
    return buf;
}

/* Parses `yaml`; asserts failure with one error containing `where` and `what`. */
static void expect_error(const char *yaml, const char *where, const char *what)
{
    vg_diag_t d = {0};
    vg_config_t *c = NULL;
    int rc = vg_config_parse(yaml, strlen(yaml), "t.yaml", "/tmp", &c, &d);
    if (rc == 0) fail_msg("accepted:\n%s", yaml);
    assert_null(c);
    bool found = false;
    for (size_t i = 0; i < d.n_errors; i++)
        if (strstr(d.errors[i], where) && strstr(d.errors[i], what)) found = true;
    if (!found) {
        for (size_t i = 0; i < d.n_errors; i++)
            fprintf(stderr, "  got: %s\n", d.errors[i]);
        fail_msg("no error with '%s' and '%s'", where, what);
    }
    vg_diag_clear(&d);
}

static vg_config_t *expect_ok(const char *yaml)
{
    vg_diag_t d = {0};
    vg_config_t *c = NULL;
    int rc = vg_config_parse(yaml, strlen(yaml), "t.yaml", "/tmp", &c, &d);
    for (size_t i = 0; i < d.n_errors; i++)
        fprintf(stderr, "  error: %s\n", d.errors[i]);
    assert_int_equal(rc, 0);
    assert_non_null(c);
    vg_diag_clear(&d);
    return c;
}

static void test_orion_multi(void **state)
{
    (void)state;
    vg_diag_t d = {0};
    vg_config_t *c = NULL;
    assert_int_equal(vg_config_load(src_path("config/orion_multi.yaml"), &c, &d), 0);
    assert_string_equal(c->instance_id, "orion-cell-3A");
    assert_int_equal(c->n_streams, 4);
    const vg_stream_cfg_t *s = vg_config_find_stream(c, "hab_302");
    assert_non_null(s);
    assert_true(s->fps == 10);
    assert_int_equal(s->n_workers, 2);
    assert_int_equal(s->workers[0].type, VG_WORKER_PERSON);
    assert_true(s->workers[0].confidence_threshold == 0.7);
    assert_int_equal(s->workers[1].type, VG_WORKER_POSE);
    assert_false(s->workers[1].available); /* no pose model: a warning, not an error */
    assert_int_equal(s->workers[1].roi.x, 100);
    assert_int_equal(s->workers[1].roi.w, 400);
    assert_int_equal(d.n_warnings, 1);
    assert_non_null(strstr(d.warnings[0], "pose_estimator"));
    assert_true(vg_config_find_stream(c, "hab_303")->fps == 5);
    assert_int_equal(vg_config_find_stream(c, "hab_304")->workers[1].type, VG_WORKER_FLOW);
    assert_string_equal(c->mqtt.client_id, "vigil-orion-cell-3A");
    const vg_model_cfg_t *m = vg_config_find_model(c, "yolo-fastest-body");
    assert_non_null(m);
    assert_non_null(strstr(m->weights, "shared/models/yolo-fastest-1.1_body.weights"));
    assert_non_null(vg_config_find_model(c, "builtin-hog"));
    vg_config_free(c);
    vg_diag_clear(&d);
}

static void test_demo_config(void **state)
{
    (void)state;
    vg_diag_t d = {0};
    vg_config_t *c = NULL;
    assert_int_equal(vg_config_load(src_path("config/vigil.yaml"), &c, &d), 0);
    vg_config_free(c);
    vg_diag_clear(&d);
}

static void test_defaults(void **state)
{
    (void)state;
    vg_config_t *c =
        expect_ok("instance_id: a\nstreams:\n  - stream_id: s1\n    url: rtsp://h/x.mp4\n");
    assert_true(c->mqtt.enabled);
    assert_int_equal(c->mqtt.port, 1883);
    assert_int_equal(c->mqtt.qos, 1);
    assert_string_equal(c->mqtt.topic_prefix, "care");
    assert_int_equal(c->mqtt.outbox_limit, 10000);
    assert_string_equal(c->http.listen, "127.0.0.1:8080");
    assert_int_equal(c->telemetry_interval_s, 30);
    assert_string_equal(c->capture.rtsp_transport, "tcp");
    assert_true(c->capture.stall_timeout_s == 5);
    assert_true(c->streams[0].enabled);
    assert_string_equal(c->streams[0].url, "rtsp://h/x.mp4");
    assert_int_equal(c->shard_count, 1);
    vg_config_free(c);
}

static void test_source_id_template(void **state)
{
    (void)state;
    vg_config_t *c =
        expect_ok("instance_id: a\nstream_url_template: rtsp://go2rtc:8554/{source_id}\n"
                  "streams:\n  - {stream_id: s1, source_id: 8}\n");
    assert_string_equal(c->streams[0].url, "rtsp://go2rtc:8554/8");
    vg_config_free(c);
}

static void test_person_default_model(void **state)
{
    (void)state;
    vg_config_t *c = expect_ok("instance_id: a\nstreams:\n  - stream_id: s\n    url: rtsp://h/x\n"
                               "    workers: [{type: person_detector}, {type: motion_detector}]\n");
    assert_string_equal(c->streams[0].workers[0].model_id, "builtin-hog");
    assert_string_equal(c->streams[0].workers[1].worker_id, "motion_detector");
    vg_config_free(c);
}

static void test_rules(void **state)
{
    (void)state;
    expect_error("log: {level: info}\n", "t.yaml:1:1:", "missing required key 'instance_id'");
    expect_error("instance_id: \"no spaces\"\n", "t.yaml:1:14:", "key 'instance_id'");
    expect_error("instance_id: a\nmqtt:\n  hots: x\n",
                 "t.yaml:3:3:", "unknown key 'mqtt.hots' (did you mean 'host'?)");
    expect_error("instance_id: a\nzzzz: 1\n", "t.yaml:2:1:", "unknown key 'zzzz'");
    expect_error("instance_id: a\nmqtt: {port: 70000}\n",
                 "t.yaml:2:14:", "key 'mqtt.port': expected an integer from 1 to 65535, got 70000");
    expect_error("instance_id: a\nmqtt: {port: abc}\n", "t.yaml:2:14:", "expected an integer");
    expect_error("instance_id: a\nmqtt: [1]\n", "t.yaml:2:7:", "key 'mqtt': expected a mapping");
    expect_error("instance_id: a\nmqtt: {enabled: maybe}\n",
                 "t.yaml:2:17:", "expected true or false");
    expect_error("instance_id: a\nlog: {level: loud}\n",
                 "t.yaml:2:14:", "expected one of debug | info | warn | error");
    expect_error("instance_id: a\nstreams:\n  - {stream_id: s, url: rtsp://h/x, fps: 31}\n",
                 "t.yaml:3:42:", "key 'streams[0].fps': expected a number from 0.01 to 30");
    expect_error("instance_id: a\nstreams:\n  - {stream_id: s, url: rtsp://h/x, fps: 0}\n",
                 "t.yaml:3:42:", "streams[0].fps");
    expect_error("instance_id: a\nstreams:\n  - {stream_id: s, url: rtsp://h/x}\n  - {stream_id: "
                 "s, url: rtsp://h/y}\n",
                 "t.yaml:4:5:", "'s' is already used by streams[0]");
    expect_error("instance_id: a\nstreams:\n  - stream_id: s\n    url: rtsp://h/x\n    workers:\n"
                 "      - {type: person_detector, spec: {model_id: nope}}\n",
                 "t.yaml:6:50:", "no model 'nope' is defined");
    expect_error("instance_id: a\nstreams:\n  - stream_id: s\n    url: rtsp://h/x\n    workers:\n"
                 "      - {type: person_detector, spec: {confidence_threshold: 2}}\n",
                 "t.yaml:6:62:", "confidence_threshold': expected a number from 0 to 1");
    expect_error("instance_id: a\nstreams:\n  - {stream_id: s, rtsp_url: \"nosuch://x\"}\n",
                 "t.yaml:3:30:", "must start with rtsp:// or rtsps://");
    expect_error("instance_id: a\nmqtt: {password_file: /nonexistent/pw}\n",
                 "t.yaml:2:23:", "cannot read file '/nonexistent/pw'");
    expect_error("instance_id: a\nhttp: {auth_token_file: /nonexistent/tok}\n",
                 "t.yaml:2:25:", "http.auth_token_file");
    expect_error(
        "instance_id: a\nmodels:\n  - {model_id: m, config: a.cfg, weights: /nonexistent.w}\n",
        "t.yaml:3:5:", "cannot read file");
    expect_error(
        "instance_id: a\nstreams:\n  - {stream_id: s, rtsp_url: rtsp://h/x, source_id: 3}\n",
        "t.yaml:3:", "give only one of 'rtsp_url', 'url' and 'source_id'");
    expect_error("instance_id: a\nstreams:\n  - {stream_id: s, source_id: 3}\n",
                 "t.yaml:3:31:", "needs 'stream_url_template'");
    expect_error("instance_id: a\nstreams:\n  - {stream_id: s}\n",
                 "t.yaml:3:5:", "one of 'rtsp_url', 'url' or 'source_id' is required");
    expect_error("instance_id: a\nhttp: {listen: nope}\n", "t.yaml:2:16:", "key 'http.listen'");
    expect_error("instance_id: a\ninstance_id: b\n", "t.yaml:2:1:", "appears twice");
    expect_error("instance_id: a\nstreams:\n  - {stream_id: s, url: rtsp://h/x,\n",
                 "t.yaml:", "YAML syntax error");
    expect_error("instance_id: a\nstreams:\n  - stream_id: s\n    url: rtsp://h/x\n    workers:\n"
                 "      - {type: person_detector, spec: {roi: {x: 1, y: 2, w: 0, h: 4}}}\n",
                 "t.yaml:6:", "roi.w");
    expect_error("instance_id: a\ncapture: {reconnect_initial_s: 20, reconnect_max_s: 10}\n",
                 "t.yaml:2:", "must not exceed reconnect_max_s");
    expect_error("instance_id: a\nshard: {index: 3, count: 3}\n", "t.yaml:2:", "shard.index");
    expect_error("instance_id: a\nstreams:\n  - {stream_id: s, url: null}\n",
                 "t.yaml:3:", "is empty");
}

static void test_reports_every_problem(void **state)
{
    (void)state;
    const char *yaml = "instance_id: a\nmqtt: {port: 0, qos: 5}\nlog: {level: x}\n";
    vg_diag_t d = {0};
    vg_config_t *c = NULL;
    assert_int_not_equal(vg_config_parse(yaml, strlen(yaml), "t.yaml", ".", &c, &d), 0);
    assert_int_equal(d.n_errors, 3);
    vg_diag_clear(&d);
}

/* instance_id and shard.index may name an environment variable (one pod per shard). */
static void test_env_values(void **state)
{
    (void)state;
    setenv("VG_TEST_POD", "vigil-2", 1);
    setenv("VG_TEST_INDEX", "2", 1);
    unsetenv("VG_TEST_UNSET");
    vg_config_t *c = expect_ok("instance_id: $VG_TEST_POD\n"
                               "shard: {index: \"${VG_TEST_INDEX}\", count: 3}\n");
    assert_string_equal(c->instance_id, "vigil-2");
    assert_int_equal(c->shard_index, 2);
    assert_int_equal(c->shard_count, 3);
    vg_config_free(c);
    expect_error("instance_id: $VG_TEST_UNSET\n", "t.yaml:1:", "VG_TEST_UNSET is not set");
    setenv("VG_TEST_POD", "bad id", 1);
    expect_error("instance_id: $VG_TEST_POD\n", "t.yaml:1:", "instance_id");
    expect_error("instance_id: a\nshard: {index: $VG_TEST_INDEX, count: 2}\n",
                 "t.yaml:2:", "shard.index");
}

static void test_check_url(void **state)
{
    (void)state;
    const char *why;
    assert_int_equal(vg_config_check_url("rtsp://cam/x", false, &why), 0);
    assert_int_equal(vg_config_check_url("rtsps://user:pw@cam:322/x", false, &why), 0);
    static const char *const bad[] = {"http://169.254.169.254/latest",
                                      "https://cam/x",
                                      "file:///etc/passwd",
                                      "/etc/passwd",
                                      "concat:/a.mp4|/b.mp4",
                                      "subfile,,start,0,end,9,,:/etc/passwd",
                                      "data:text/plain,x",
                                      "tcp://127.0.0.1:9",
                                      "RTSP://cam/x",
                                      "rtsp://",
                                      "nope://x",
                                      "",
                                      "rtsp://a\nb",
                                      "crypto:/x",
                                      "./x.mp4",
                                      "x.mp4",
                                      "hls+http://x/y.m3u8",
                                      "async:rtsp://x"};
    for (size_t i = 0; i < VG_ARRAY_LEN(bad); i++) {
        why = NULL;
        assert_int_not_equal(vg_config_check_url(bad[i], false, &why), 0);
        assert_non_null(why);
    }
    /* with capture.allow_files: absolute paths, and nothing FFmpeg reads as a protocol */
    assert_int_equal(vg_config_check_url("/tmp/x.mp4", true, &why), 0);
    assert_int_not_equal(vg_config_check_url("file:/tmp/x.mp4", true, &why), 0);
    assert_int_not_equal(vg_config_check_url("concat:/a|/b", true, &why), 0);
    assert_int_not_equal(vg_config_check_url("/a/concat:/b", true, &why), 0);
    assert_int_not_equal(vg_config_check_url("x.mp4", true, &why), 0);
    assert_int_not_equal(vg_config_check_url("http://h/x", true, &why), 0);
}

/* Every entry point shares the file's rules: a stream URL outside rtsp(s) is refused
 * naming the key, files need capture.allow_files, a template must build rtsp URLs. */
static void test_url_rules(void **state)
{
    (void)state;
    expect_error("instance_id: a\nstreams:\n  - {stream_id: s, url: /etc/passwd}\n",
                 "t.yaml:3:25:", "key 'streams[0].url': URL '/etc/passwd' must start with rtsp://");
    expect_error("instance_id: a\nstreams:\n  - {stream_id: s, url: \"http://169.254.169.254/\"}\n",
                 "t.yaml:3:25:", "key 'streams[0].url'");
    vg_config_t *c = expect_ok("instance_id: a\ncapture: {allow_files: true}\n"
                               "streams:\n  - {stream_id: s, url: /tmp/x.mp4}\n");
    assert_true(c->capture.allow_files);
    vg_config_free(c);
    c = expect_ok("instance_id: a\n");
    assert_false(c->capture.allow_files);
    vg_config_free(c);
    expect_error("instance_id: a\ncapture: {allow_files: true}\n"
                 "streams:\n  - {stream_id: s, url: \"concat:/a|/b\"}\n",
                 "t.yaml:4:25:", "key 'streams[0].url'");
    expect_error("instance_id: a\nstream_url_template: \"http://x/{source_id}\"\n",
                 "t.yaml:2:22:", "key 'stream_url_template'");
    expect_error("instance_id: a\nstream_url_template: \"{source_id}\"\n"
                 "streams:\n  - {stream_id: s, source_id: x}\n",
                 "t.yaml:", "stream_url_template");
}

/* Masks are fractions of the frame; pixel masks are refused naming the key; at most
 * VG_LIMIT_MASKS_PER_STREAM. */
static void test_privacy_masks(void **state)
{
    (void)state;
    vg_config_t *c = expect_ok("instance_id: a\nstreams:\n  - stream_id: s\n    url: rtsp://h/x\n"
                               "    privacy_masks: [{x: 0.5, y: 0, w: 0.5, h: 0.25}]\n");
    assert_int_equal(c->streams[0].n_privacy_masks, 1);
    assert_true(c->streams[0].privacy_masks[0].x == 0.5 &&
                c->streams[0].privacy_masks[0].h == 0.25);
    vg_config_free(c);
    expect_error("instance_id: a\nstreams:\n  - stream_id: s\n    url: rtsp://h/x\n"
                 "    privacy_masks: [{x: 0, y: 0, w: 200, h: 120}]\n",
                 "t.yaml:5:", "key 'streams[0].privacy_masks[0].w': expected a number from");
    expect_error("instance_id: a\nstreams:\n  - stream_id: s\n    url: rtsp://h/x\n"
                 "    privacy_masks: [{x: 0, y: 0, w: 200, h: 120}]\n",
                 "t.yaml:5:", "fractions of the frame");
    expect_error("instance_id: a\nstreams:\n  - stream_id: s\n    url: rtsp://h/x\n"
                 "    privacy_masks: [{x: 0.75, y: 0, w: 0.5, h: 0.5}]\n",
                 "t.yaml:3:", "key 'streams[0].privacy_masks[0].w': the mask reaches past");
    char yaml[8192] = "instance_id: a\nstreams:\n  - stream_id: s\n    url: rtsp://h/x\n"
                      "    privacy_masks:\n";
    for (int i = 0; i <= VG_LIMIT_MASKS_PER_STREAM; i++)
        strcat(yaml, "      - {x: 0, y: 0, w: 0.1, h: 0.1}\n");
    expect_error(yaml, "t.yaml:3:", "key 'streams[0].privacy_masks': a stream has at most");
}

/* Workers and views over limits.h are refused where the configuration enters. */
/* A config with one stream of n motion detectors; with views > 0 detector i watches the
 * 8x8 roi at x = (i % views) * 8, so they need min(n, views) distinct views. */
static void workers_yaml(char *yaml, size_t cap, int n, int views)
{
    snprintf(yaml, cap,
             "instance_id: a\nstreams:\n  - stream_id: s\n    url: rtsp://h/x\n"
             "    workers:\n");
    for (int i = 0; i < n; i++) {
        size_t len = strlen(yaml);
        if (views > 0)
            snprintf(yaml + len, cap - len,
                     "      - {type: motion_detector, worker_id: m%d, spec: {roi: {x: %d, y: 0, "
                     "w: 8, h: 8}}}\n",
                     i, (i % views) * 8);
        else
            snprintf(yaml + len, cap - len, "      - {type: motion_detector, worker_id: m%d}\n", i);
    }
}

static void test_limits(void **state)
{
    (void)state;
    char yaml[4096];
    workers_yaml(yaml, sizeof(yaml), VG_LIMIT_WORKERS_PER_STREAM + 1, 0);
    expect_error(yaml, "t.yaml:3:", "key 'streams[0].workers': a stream runs at most 8 workers");
    /* five motion detectors with five rois: five views */
    workers_yaml(yaml, sizeof(yaml), 5, 5);
    expect_error(yaml, "t.yaml:3:", "key 'streams[0].workers': the workers need 5 distinct views");
    /* four views are fine, and workers sharing a view count once */
    workers_yaml(yaml, sizeof(yaml), 8, 4);
    vg_config_t *c = expect_ok(yaml);
    assert_int_equal(vg_config_stream_views(c, &c->streams[0], NULL, 0), 4);
    vg_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orion_multi),
        cmocka_unit_test(test_demo_config),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_source_id_template),
        cmocka_unit_test(test_person_default_model),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_reports_every_problem),
        cmocka_unit_test(test_check_url),
        cmocka_unit_test(test_env_values),
        cmocka_unit_test(test_url_rules),
        cmocka_unit_test(test_privacy_masks),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
