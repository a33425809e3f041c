/* Unit tests for control.c, driving the real control, stream registry, inference pool
 * and loop queue on a libevent base owned by the test (the "loop thread" is the test's
 * thread). Streams point at a closed RTSP port, so captures only ever fail to connect;
 * nothing is mocked. Covered: every command's bad parameters are rejected with the
 * field named (a table), add_stream keeps to the shard, a repeated command_id gets the same outcome
 * without being applied again (also while in progress), and a reconfigure with one bad field
 * changes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/common.h"
#include "vigil/config.h"
#include "vigil/control.h"
#include "vigil/infer.h"
#include "vigil/jobs.h"
#include "vigil/log.h"
#include "vigil/loopq.h"
#include "vigil/stream.h"

#define CAM "rtsp://127.0.0.1:1/cam"

typedef struct {
    struct event_base *base;
    vg_loopq_t *q;
    vg_jobs_t *jobs;
    vg_config_t *cfg;
    vg_infer_t *pool;
    vg_streams_t *ss;
    vg_control_t *c;
    json_t *acks; /* every ack, in order, each {"to": requester, "final": bool, "ack": ...} */
    int changed;
} fx_t;

static vg_streams_t *the_streams; /* the pool's result callback has no argument for it */

static void on_result(void *arg, vg_infer_result_t *r)
{
    (void)arg;
    vg_streams_post_result(the_streams, r);
}

static void on_status(void *arg, const char *status)
{
    (void)arg;
    (void)status;
}

static void on_changed(void *arg, const char *stream_id, bool removed)
{
    (void)stream_id;
    (void)removed;
    ((fx_t *)arg)->changed++;
}

static int setup(void **state)
{
    fx_t *fx = vg_xcalloc(1, sizeof(*fx));
    const char *shared = getenv("VIGIL_SHARED_DIR");
    char *yaml = vg_xasprintf("instance_id: t\nmqtt: {enabled: false}\nmodels_dir: %s/models\n"
                              "models:\n"
                              "  - {model_id: body, config: yolo-fastest-1.1_body.cfg, "
                              "weights: yolo-fastest-1.1_body.weights}\n"
                              "  - {model_id: broken, config: yolo-fastest-1.1_body.cfg, "
                              "weights: body.names}\n",
                              shared ? shared : "../shared");
    vg_diag_t d = {0};
    int rc = vg_config_parse(yaml, strlen(yaml), "t", ".", &fx->cfg, &d);
    for (size_t i = 0; i < d.n_errors; i++)
        print_error("%s\n", d.errors[i]);
    vg_diag_clear(&d);
    free(yaml);
    assert_int_equal(rc, 0);
    fx->base = event_base_new();
    fx->q = vg_loopq_new(fx->base);
    fx->jobs = vg_jobs_new(fx->q);
    vg_infer_cfg_t ic = {.instance_id = "t",
                         .threads = 1,
                         .models = fx->cfg,
                         .on_result = on_result,
                         .jobs = fx->jobs};
    assert_int_equal(vg_infer_new(&ic, &fx->pool), 0);
    vg_streams_opts_t so = {.cfg = fx->cfg, .q = fx->q, .pool = fx->pool, .jobs = fx->jobs};
    fx->ss = the_streams = vg_streams_new(&so);
    vg_control_opts_t co = {.cfg = fx->cfg,
                            .streams = fx->ss,
                            .pool = fx->pool,
                            .q = fx->q,
                            .on_status = on_status,
                            .on_changed = on_changed,
                            .arg = fx};
    fx->c = vg_control_new(&co);
    fx->acks = json_array();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    vg_streams_shutdown(fx->ss);
    vg_jobs_stop(fx->jobs);
    vg_loopq_drain(fx->q);
    vg_infer_free(fx->pool);
    vg_loopq_drain(fx->q);
    vg_control_free(fx->c);
    vg_streams_free(fx->ss);
    vg_loopq_free(fx->q);
    vg_jobs_free(fx->jobs);
    event_base_free(fx->base);
    vg_config_free(fx->cfg);
    json_decref(fx->acks);
    free(fx);
    return 0;
}

/* ---- helpers ---- */

typedef struct {
    fx_t *fx;
    const char *name;
} requester_t;

static void on_ack(void *arg, const json_t *ack, bool final)
{
    requester_t *r = arg;
    json_array_append_new(r->fx->acks, json_pack("{s:s, s:b, s:O}", "to", r->name, "final", final,
                                                 "ack", (json_t *)ack));
}

/* Submits a raw payload from `who` (stream_id: the topic's stream, or NULL). */
static void submit_as(requester_t *who, const char *stream_id, const char *payload)
{
    vg_origin_t o = {.source = "test", .who = who->name, .stream_id = stream_id};
    vg_control_submit(who->fx->c, payload, strlen(payload), &o, on_ack, who);
}

/* The last final ack `to` got (borrowed), or NULL. */
static json_t *last_final(fx_t *fx, const char *to)
{
    for (size_t i = json_array_size(fx->acks); i-- > 0;) {
        json_t *a = json_array_get(fx->acks, i);
        if (json_is_true(json_object_get(a, "final")) &&
            strcmp(json_string_value(json_object_get(a, "to")), to) == 0)
            return json_object_get(a, "ack");
    }
    return NULL;
}

static size_t count_acks(fx_t *fx, const char *command_id, const char *status)
{
    size_t n = 0, i;
    json_t *a;
    json_array_foreach(fx->acks, i, a)
    {
        json_t *ack = json_object_get(a, "ack");
        const char *id = json_string_value(json_object_get(ack, "command_id"));
        if (id && strcmp(id, command_id) == 0 &&
            strcmp(json_string_value(json_object_get(ack, "status")), status) == 0)
            n++;
    }
    return n;
}

/* Runs the loop until `done(fx)` or 30 s passed. */
static bool run_until(fx_t *fx, bool (*done)(fx_t *fx, const void *arg), const void *arg)
{
    for (double end = vg_now_mono() + 30; vg_now_mono() < end;) {
        event_base_loop(fx->base, EVLOOP_NONBLOCK);
        if (done(fx, arg)) return true;
        usleep(2000);
    }
    return false;
}

static bool has_final_for(fx_t *fx, const void *id)
{
    return count_acks(fx, id, "completed") + count_acks(fx, id, "failed") > 0;
}

static void add_stream(fx_t *fx, const char *id)
{
    char *json = vg_xasprintf("{\"stream_id\": \"%s\", \"url\": \"%s\", \"fps\": 1, "
                              "\"workers\": [{\"type\": \"person_detector\", \"spec\": "
                              "{\"model_id\": \"body\"}}, {\"type\": \"motion_detector\"}]}",
                              id, CAM);
    json_t *obj = json_loads(json, 0, NULL);
    char *field = NULL, *msg = NULL;
    vg_stream_cfg_t *sc = vg_control_stream_from_json(fx->cfg, obj, &field, &msg);
    if (!sc) print_error("%s: %s\n", field ? field : "-", msg ? msg : "-");
    assert_non_null(sc);
    assert_int_equal(vg_streams_add(fx->ss, sc, false), 0);
    vg_stream_cfg_free(sc);
    json_decref(obj);
    free(json);
}

static const vg_stream_cfg_t *cfg_of(fx_t *fx, const char *id)
{
    vg_stream_t *s = vg_streams_find(fx->ss, id);
    assert_non_null(s);
    return vg_stream_cfg(s);
}

/* The whole stream configuration as JSON text, to compare before and after. */
static char *cfg_text(fx_t *fx, const char *id)
{
    json_t *j = vg_control_stream_to_json(cfg_of(fx, id));
    char *t = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    return t;
}

/* ---- validation: every command's bad params, rejected with the field named ---- */

typedef struct {
    const char *topic_stream; /* stream of the topic, or NULL (instance topic) */
    const char *payload;
    const char *code;
    const char *field; /* NULL: the ack's error.field is null */
} bad_case_t;

static const bad_case_t bad_cases[] = {
    {NULL, "{", "invalid_json", NULL},
    {NULL, "[1]", "invalid_json", NULL},
    {NULL, "{\"command_id\": \"x\"}", "missing_param", "command"},
    {NULL, "{\"command\": \"explode\"}", "unknown_command", "command"},
    {NULL, "{\"command\": \"restart\", \"command_id\": 5}", "invalid_param", "command_id"},
    {NULL, "{\"command\": \"restart\", \"command_id\": \"\"}", "invalid_param", "command_id"},
    {NULL, "{\"command\": \"restart\", \"params\": []}", "invalid_param", "params"},
    {NULL, "{\"command\": \"restart\", \"params\": {\"x\": 1}}", "unknown_param", "x"},
    {NULL, "{\"command\": \"restart\", \"stream_id\": \"nope\"}", "unknown_stream", "stream_id"},
    /* set_fps */
    {"a", "{\"command\": \"set_fps\"}", "missing_param", "max_fps"},
    {"a", "{\"command\": \"set_fps\", \"params\": {\"max_fps\": 0}}", "invalid_param", "max_fps"},
    {"a", "{\"command\": \"set_fps\", \"params\": {\"max_fps\": 31}}", "invalid_param", "max_fps"},
    {"a", "{\"command\": \"set_fps\", \"params\": {\"max_fps\": \"5\"}}", "invalid_param",
     "max_fps"},
    {"a", "{\"command\": \"set_fps\", \"params\": {\"max_fps\": 5, \"fps\": 5}}", "unknown_param",
     "fps"},
    {NULL, "{\"command\": \"set_fps\", \"params\": {\"max_fps\": 5}}", "missing_param",
     "stream_id"},
    {"nope", "{\"command\": \"set_fps\", \"params\": {\"max_fps\": 5}}", "unknown_stream",
     "stream_id"},
    /* set_confidence */
    {"a", "{\"command\": \"set_confidence\"}", "missing_param", "confidence_threshold"},
    {"a", "{\"command\": \"set_confidence\", \"params\": {\"confidence_threshold\": 1.5}}",
     "invalid_param", "confidence_threshold"},
    {"a", "{\"command\": \"set_confidence\", \"params\": {\"confidence_threshold\": -0.1}}",
     "invalid_param", "confidence_threshold"},
    {"a",
     "{\"command\": \"set_confidence\", \"params\": {\"confidence_threshold\": 0.5, "
     "\"worker_id\": \"no such\"}}",
     "invalid_param", "worker_id"},
    {"a",
     "{\"command\": \"set_confidence\", \"params\": {\"confidence_threshold\": 0.5, "
     "\"worker_id\": \"ghost\"}}",
     "invalid_param", "worker_id"},
    /* change_model */
    {"a", "{\"command\": \"change_model\"}", "missing_param", "model_id"},
    {"a", "{\"command\": \"change_model\", \"params\": {\"model_id\": \"a/b\"}}", "invalid_param",
     "model_id"},
    {"a", "{\"command\": \"change_model\", \"params\": {\"model_id\": \"ghost\"}}", "unknown_model",
     "model_id"},
    {"a",
     "{\"command\": \"change_model\", \"params\": {\"model_id\": \"body\", \"worker_id\": "
     "\"motion_detector\"}}",
     "unknown_model", "model_id"},
    /* set_roi */
    {"a", "{\"command\": \"set_roi\", \"params\": {\"x\": 0, \"y\": 0, \"w\": 10}}",
     "missing_param", "h"},
    {"a", "{\"command\": \"set_roi\", \"params\": {\"x\": -1, \"y\": 0, \"w\": 10, \"h\": 10}}",
     "invalid_param", "x"},
    {"a", "{\"command\": \"set_roi\", \"params\": {\"x\": 0.5, \"y\": 0, \"w\": 10, \"h\": 10}}",
     "invalid_param", "x"},
    {"a", "{\"command\": \"set_roi\", \"params\": {\"x\": 0, \"y\": 0, \"w\": 0, \"h\": 10}}",
     "invalid_param", "w"},
    {"a", "{\"command\": \"set_roi\", \"params\": {\"x\": 0, \"y\": 0, \"w\": 10, \"h\": 100001}}",
     "invalid_param", "h"},
    /* reconfigure */
    {"a", "{\"command\": \"reconfigure\"}", "missing_param", "params"},
    {"a", "{\"command\": \"reconfigure\", \"params\": {\"fps\": 0}}", "invalid_param", "fps"},
    {"a", "{\"command\": \"reconfigure\", \"params\": {\"roi\": 5}}", "invalid_param", "roi"},
    {"a", "{\"command\": \"reconfigure\", \"params\": {\"roi\": {\"x\": 0, \"y\": 0, \"w\": 5}}}",
     "invalid_param", "roi.h"},
    {"a", "{\"command\": \"reconfigure\", \"params\": {\"max_fps\": 2}}", "unknown_param",
     "max_fps"},
    /* add_stream */
    {NULL, "{\"command\": \"add_stream\", \"params\": {\"url\": \"" CAM "\"}}", "missing_param",
     "stream_id"},
    {NULL,
     "{\"command\": \"add_stream\", \"params\": {\"stream_id\": \"b\", \"url\": \"" CAM
     "\", \"fps\": 100}}",
     "invalid_param", "fps"},
    {NULL,
     "{\"command\": \"add_stream\", \"params\": {\"stream_id\": \"b c\", \"url\": \"" CAM "\"}}",
     "invalid_param", "stream_id"},
    {NULL,
     "{\"command\": \"add_stream\", \"params\": {\"stream_id\": \"b\", \"url\": \"" CAM
     "\", \"workers\": [{\"type\": \"juggler\"}]}}",
     "invalid_param", "workers[0].type"},
    {NULL,
     "{\"command\": \"add_stream\", \"params\": {\"stream_id\": \"b\", \"url\": \"" CAM
     "\", \"colour\": \"red\"}}",
     "invalid_param", "colour"},
    {NULL,
     "{\"command\": \"add_stream\", \"params\": {\"stream_id\": \"b\", \"url\": \"" CAM
     "\", \"enabled\": false}}",
     "invalid_param", "enabled"},
    {NULL,
     "{\"command\": \"add_stream\", \"params\": {\"stream_id\": \"a\", \"url\": \"" CAM "\"}}",
     "stream_exists", "stream_id"},
    /* remove_stream */
    {NULL, "{\"command\": \"remove_stream\"}", "missing_param", "stream_id"},
    {NULL, "{\"command\": \"remove_stream\", \"params\": {\"stream_id\": \"nope\"}}",
     "unknown_stream", "stream_id"},
    {NULL, "{\"command\": \"remove_stream\", \"params\": {\"stream_id\": \"a b\"}}",
     "invalid_param", "stream_id"},
};

static void test_validation_table(void **state)
{
    fx_t *fx = *state;
    add_stream(fx, "a");
    char *before = cfg_text(fx, "a");
    requester_t who = {fx, "orchestrator"};
    for (size_t i = 0; i < VG_ARRAY_LEN(bad_cases); i++) {
        const bad_case_t *bc = &bad_cases[i];
        json_array_clear(fx->acks);
        submit_as(&who, bc->topic_stream, bc->payload);
        json_t *ack = last_final(fx, who.name);
        char *text = ack ? json_dumps(ack, JSON_COMPACT) : NULL;
        print_message("# %-100.100s -> %s\n", bc->payload, text ? text : "(no final ack)");
        assert_non_null(ack);
        json_t *err = json_object_get(ack, "error");
        const char *field = json_string_value(json_object_get(err, "field"));
        if (strcmp(json_string_value(json_object_get(ack, "status")), "rejected") != 0 ||
            strcmp(json_string_value(json_object_get(err, "code")), bc->code) != 0 ||
            (bc->field ? !field || strcmp(field, bc->field) != 0 : field != NULL))
            fail_msg("case %zu %s: want %s field %s, got %s", i, bc->payload, bc->code,
                     bc->field ? bc->field : "null", text);
        assert_true(*json_string_value(json_object_get(err, "message")));
        free(text);
        /* nothing changed, nothing was added or removed */
        char *after = cfg_text(fx, "a");
        assert_string_equal(after, before);
        free(after);
        assert_int_equal(vg_streams_count(fx->ss), 1);
    }
    assert_int_equal(fx->changed, 0);
    free(before);
}

/* add_stream runs only this instance's shard: the gateway's `owns` says which. */
static bool owns_here(void *arg, const char *stream_id)
{
    (void)arg;
    return strncmp(stream_id, "here", 4) == 0;
}

static void test_add_stream_shard(void **state)
{
    fx_t *fx = *state;
    vg_control_free(fx->c);
    vg_control_opts_t co = {.cfg = fx->cfg,
                            .streams = fx->ss,
                            .pool = fx->pool,
                            .q = fx->q,
                            .on_status = on_status,
                            .on_changed = on_changed,
                            .owns = owns_here,
                            .arg = fx};
    fx->c = vg_control_new(&co);
    requester_t who = {fx, "who"};
    submit_as(&who, NULL,
              "{\"command\": \"add_stream\", \"params\": {\"stream_id\": \"there\", \"url\": "
              "\"" CAM "\"}}");
    json_t *ack = last_final(fx, "who");
    json_t *err = json_object_get(ack, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "wrong_shard");
    assert_string_equal(json_string_value(json_object_get(err, "field")), "stream_id");
    assert_int_equal(vg_streams_count(fx->ss), 0);
    submit_as(&who, NULL,
              "{\"command\": \"add_stream\", \"params\": {\"stream_id\": \"here1\", \"url\": "
              "\"" CAM "\"}}");
    assert_string_equal(json_string_value(json_object_get(last_final(fx, "who"), "status")),
                        "completed");
    assert_non_null(vg_streams_find(fx->ss, "here1"));
}

/* ---- idempotency: the same command_id gets the same outcome, applied once ---- */

static void test_repeat_same_outcome(void **state)
{
    fx_t *fx = *state;
    add_stream(fx, "a");
    requester_t one = {fx, "one"}, two = {fx, "two"};
    const char *c1 = "{\"command\": \"set_fps\", \"command_id\": \"c1\", \"params\": "
                     "{\"max_fps\": 2}}";
    submit_as(&one, "a", c1);
    json_t *first = json_deep_copy(last_final(fx, "one"));
    assert_string_equal(json_string_value(json_object_get(first, "status")), "completed");
    assert_true(cfg_of(fx, "a")->fps == 2);
    submit_as(&one, "a",
              "{\"command\": \"set_fps\", \"command_id\": \"c2\", \"params\": {\"max_fps\": 3}}");
    assert_true(cfg_of(fx, "a")->fps == 3);
    int changed = fx->changed;
    /* the repeat, from the same and from another requester: the earlier ack, nothing applied */
    submit_as(&one, "a", c1);
    assert_true(json_equal(last_final(fx, "one"), first));
    submit_as(&two, "a", c1);
    assert_true(json_equal(last_final(fx, "two"), first));
    assert_true(cfg_of(fx, "a")->fps == 3);
    assert_int_equal(fx->changed, changed);
    /* a repeat whose payload differs is still the same command: answered, not applied */
    submit_as(&two, "a",
              "{\"command\": \"set_fps\", \"command_id\": \"c1\", \"params\": {\"max_fps\": 9}}");
    assert_true(json_equal(last_final(fx, "two"), first));
    assert_true(cfg_of(fx, "a")->fps == 3);
    /* a rejection is an outcome too */
    const char *bad = "{\"command\": \"set_fps\", \"command_id\": \"r1\", \"params\": "
                      "{\"max_fps\": 99}}";
    submit_as(&one, "a", bad);
    json_t *rej = json_deep_copy(last_final(fx, "one"));
    assert_string_equal(json_string_value(json_object_get(rej, "status")), "rejected");
    submit_as(&two, "a", bad);
    assert_true(json_equal(last_final(fx, "two"), rej));
    /* each submission got exactly one final ack; repeats got no "received" of the original */
    assert_int_equal(count_acks(fx, "c1", "completed"), 4);
    assert_int_equal(count_acks(fx, "c1", "received"), 1);
    json_decref(first);
    json_decref(rej);
}

/* Without a command_id every command is new. */
static void test_no_id_never_repeats(void **state)
{
    fx_t *fx = *state;
    add_stream(fx, "a");
    requester_t one = {fx, "one"};
    submit_as(&one, "a", "{\"command\": \"set_fps\", \"params\": {\"max_fps\": 2}}");
    const char *id1 = json_string_value(json_object_get(last_final(fx, "one"), "command_id"));
    char *keep = vg_xstrdup(id1);
    submit_as(&one, "a", "{\"command\": \"set_fps\", \"params\": {\"max_fps\": 4}}");
    json_t *ack = last_final(fx, "one");
    assert_string_equal(json_string_value(json_object_get(ack, "status")), "completed");
    assert_string_not_equal(json_string_value(json_object_get(ack, "command_id")), keep);
    assert_true(cfg_of(fx, "a")->fps == 4);
    free(keep);
}

/* A repeat while the original is still in progress (a model loading off the loop): the
 * repeater gets "received" now and the same final outcome later; applied once. */
static void test_repeat_in_progress(void **state)
{
    fx_t *fx = *state;
    add_stream(fx, "a");
    requester_t one = {fx, "one"}, two = {fx, "two"};
    const char *cm = "{\"command\": \"change_model\", \"command_id\": \"m1\", \"params\": "
                     "{\"model_id\": \"body\", \"worker_id\": \"person_detector\"}}";
    submit_as(&one, "a", cm);
    assert_null(last_final(fx, "one"));
    submit_as(&two, "a", cm);
    submit_as(&one, "a", cm); /* the original requester again: no second final ack */
    assert_null(last_final(fx, "two"));
    assert_int_equal(count_acks(fx, "m1", "received"), 3);
    /* another change to the busy stream is refused meanwhile */
    submit_as(&two, "a",
              "{\"command\": \"set_fps\", \"command_id\": \"f1\", \"params\": {\"max_fps\": 4}}");
    json_t *busy = last_final(fx, "two");
    assert_string_equal(json_string_value(json_object_get(json_object_get(busy, "error"), "code")),
                        "busy");
    assert_true(run_until(fx, has_final_for, "m1"));
    for (double end = vg_now_mono() + 0.3; vg_now_mono() < end; usleep(2000))
        event_base_loop(fx->base, EVLOOP_NONBLOCK); /* let anything else queued arrive */
    json_t *a1 = last_final(fx, "one"), *a2 = last_final(fx, "two");
    assert_string_equal(json_string_value(json_object_get(a1, "status")), "completed");
    assert_true(json_equal(a1, a2));
    assert_int_equal(count_acks(fx, "m1", "completed"), 2); /* one each, not three */
}

/* ---- all or nothing ---- */

static void expect_unchanged(fx_t *fx, requester_t *who, const char *payload, const char *code,
                             const char *field)
{
    char *before = cfg_text(fx, "a");
    submit_as(who, "a", payload);
    json_t *ack = last_final(fx, who->name);
    json_t *err = json_object_get(ack, "error");
    assert_string_equal(json_string_value(json_object_get(ack, "status")), "rejected");
    assert_string_equal(json_string_value(json_object_get(err, "code")), code);
    assert_string_equal(json_string_value(json_object_get(err, "field")), field);
    char *after = cfg_text(fx, "a");
    assert_string_equal(after, before);
    free(before);
    free(after);
}

static void test_reconfigure_all_or_nothing(void **state)
{
    fx_t *fx = *state;
    add_stream(fx, "a");
    requester_t who = {fx, "who"};
    int changed = fx->changed;
    expect_unchanged(fx, &who,
                     "{\"command\": \"reconfigure\", \"params\": {\"fps\": 3, "
                     "\"confidence_threshold\": 0.7, \"roi\": {\"x\": 0, \"y\": 0, \"w\": 0, "
                     "\"h\": 10}}}",
                     "invalid_param", "roi.w");
    expect_unchanged(fx, &who,
                     "{\"command\": \"reconfigure\", \"params\": {\"fps\": 3, "
                     "\"confidence_threshold\": 2}}",
                     "invalid_param", "confidence_threshold");
    expect_unchanged(fx, &who,
                     "{\"command\": \"reconfigure\", \"params\": {\"fps\": 3, \"model_id\": "
                     "\"ghost\"}}",
                     "unknown_model", "model_id");
    expect_unchanged(fx, &who,
                     "{\"command\": \"reconfigure\", \"params\": {\"fps\": 3, \"worker_id\": "
                     "\"ghost\", \"confidence_threshold\": 0.2}}",
                     "invalid_param", "worker_id");
    expect_unchanged(fx, &who,
                     "{\"command\": \"reconfigure\", \"params\": {\"fps\": 3, \"colour\": 1}}",
                     "unknown_param", "colour");
    assert_int_equal(fx->changed, changed);
    /* a good one applies every field at once */
    submit_as(&who, "a",
              "{\"command\": \"reconfigure\", \"params\": {\"fps\": 3, \"confidence_threshold\": "
              "0.7, \"roi\": {\"x\": 8, \"y\": 4, \"w\": 100, \"h\": 50}}}");
    assert_string_equal(json_string_value(json_object_get(last_final(fx, "who"), "status")),
                        "completed");
    const vg_stream_cfg_t *sc = cfg_of(fx, "a");
    assert_true(sc->fps == 3);
    const vg_worker_cfg_t *person = &sc->workers[0], *motion = &sc->workers[1];
    assert_int_equal(person->type, VG_WORKER_PERSON);
    assert_true(person->confidence_threshold == 0.7);
    assert_int_equal(person->roi.x, 8);
    assert_int_equal(person->roi.h, 50);
    assert_int_equal(motion->roi.w, 0); /* without worker_id: the detectors only */
    assert_int_equal(fx->changed, changed + 1);
}

/* A model that fails to load: "failed", and the running configuration is the old one. */
static void test_failed_model_changes_nothing(void **state)
{
    fx_t *fx = *state;
    add_stream(fx, "a");
    requester_t who = {fx, "who"};
    char *before = cfg_text(fx, "a");
    submit_as(&who, "a",
              "{\"command\": \"reconfigure\", \"command_id\": \"b1\", \"params\": {\"fps\": 3, "
              "\"model_id\": \"broken\"}}");
    assert_true(run_until(fx, has_final_for, "b1"));
    json_t *ack = last_final(fx, "who");
    assert_string_equal(json_string_value(json_object_get(ack, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(json_object_get(ack, "error"), "field")),
                        "model_id");
    char *after = cfg_text(fx, "a");
    assert_string_equal(after, before);
    free(before);
    free(after);
    /* and the stream takes changes again */
    submit_as(&who, "a", "{\"command\": \"set_fps\", \"params\": {\"max_fps\": 4}}");
    assert_string_equal(json_string_value(json_object_get(last_final(fx, "who"), "status")),
                        "completed");
}

int main(void)
{
    evthread_use_pthreads();
    int devnull = open("/dev/null", O_WRONLY);
    vg_log_set_fd(devnull); /* every rejection logs a warning */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_validation_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_stream_shard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeat_same_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_id_never_repeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeat_in_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconfigure_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_model_changes_nothing, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    close(devnull);
    return rc;
}
