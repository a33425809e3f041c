/* mqtt_events.c — care events and the retained alarms on MQTT (see mqtt.h): topic
 * names, payload checks, and the alarms value kept for every reconnect. Loop thread
 * only, like the rest of the client; delivery itself (priority, acks, re-sends) is
 * mqtt.c's and outbox.c's. The client owns the strings here; callers' JSON is
 * borrowed and copied. */
#include "mqtt_internal.h"
#include "vigil/common.h"
#include "vigil/log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A topic level: not empty, no separator, no wildcard. */
static bool level_ok(const char *s)
{
    return s && *s && !strpbrk(s, "/+#");
}

/* The prefix may span levels ("site/care") but holds no wildcard and no empty level. */
static bool prefix_ok(const char *s)
{
    return s && *s && !strpbrk(s, "+#") && s[0] != '/' && s[strlen(s) - 1] != '/' &&
           !strstr(s, "//");
}

static bool json_is(const char *text, json_type type)
{
    json_t *j = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    bool ok = j && json_typeof(j) == type;
    json_decref(j);
    return ok;
}

int vg_mqtt_set_instance(vg_mqtt_t *m, const char *topic_prefix, const char *instance_id)
{
    if (!prefix_ok(topic_prefix) || !level_ok(instance_id)) {
        VG_ERROR(MOD, "bad_event_topics", "{s:s?, s:s?}", "topic_prefix", topic_prefix,
                 "instance_id", instance_id);
        return VG_EINVAL;
    }
    vg_mqtt_care_t *c = vg_mqtt_care(m);
    free(c->events_base);
    free(c->alarms_topic);
    c->events_base = vg_xasprintf("%s/events/%s", topic_prefix, instance_id);
    c->alarms_topic = vg_xasprintf("%s/alarms/%s", topic_prefix, instance_id);
    return VG_OK;
}

int vg_mqtt_publish_event(vg_mqtt_t *m, const char *stream_id, const char *json)
{
    vg_mqtt_care_t *c = vg_mqtt_care(m);
    if (!c->events_base || !level_ok(stream_id) || !json_is(json, JSON_OBJECT)) {
        VG_WARN(MOD, "event_refused", "{s:s?, s:s}", "stream_id", stream_id, "reason",
                !c->events_base        ? "no instance set"
                : !level_ok(stream_id) ? "bad stream_id"
                                       : "payload is not a JSON object");
        return VG_EINVAL;
    }
    char *topic = vg_xasprintf("%s/%s", c->events_base, stream_id);
    int rc = vg_mqtt_publish(m, topic, json, strlen(json), 1, false, VG_MQTT_EVENT);
    free(topic);
    return rc;
}

int vg_mqtt_set_alarms(vg_mqtt_t *m, const char *json)
{
    vg_mqtt_care_t *c = vg_mqtt_care(m);
    if (!c->alarms_topic || !json_is(json, JSON_ARRAY)) {
        VG_WARN(MOD, "alarms_refused", "{s:s}", "reason",
                !c->alarms_topic ? "no instance set" : "payload is not a JSON array");
        return VG_EINVAL;
    }
    int rc = vg_mqtt_publish(m, c->alarms_topic, json, strlen(json), 1, true, VG_MQTT_EVENT);
    if (rc == VG_OK) {
        free(c->alarms);
        c->alarms = vg_xstrdup(json);
    }
    return rc;
}

void vg_mqtt_care_on_connect(vg_mqtt_t *m)
{
    vg_mqtt_care_t *c = vg_mqtt_care(m);
    if (c->alarms && c->alarms_topic)
        vg_mqtt_publish(m, c->alarms_topic, c->alarms, strlen(c->alarms), 1, true, VG_MQTT_EVENT);
}

void vg_mqtt_care_free(vg_mqtt_care_t *c)
{
    free(c->events_base);
    free(c->alarms_topic);
    free(c->alarms);
    *c = (vg_mqtt_care_t){0};
}
