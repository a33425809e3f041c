/* mqtt_setup.c — turns the MQTT configuration into libmosquitto session settings:
 * credentials, TLS, last will. Runs once per client, on the loop thread, before the
 * first connect; the password lives only in libmosquitto afterwards. */
#include "mqtt_internal.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/secret.h"

#include <stdlib.h>
#include <string.h>

#define MOD "mqtt"

static int set_credentials(struct mosquitto *mosq, const vg_mqtt_cfg_t *cfg)
{
    bool user = cfg->username && *cfg->username;
    bool pwfile = cfg->password_file && *cfg->password_file;
    if (!user && !pwfile)
        return VG_OK;
    if (!user) {
        VG_ERROR(MOD, "bad_config", "{s:s}", "reason", "mqtt.password_file needs mqtt.username");
        return VG_EINVAL;
    }
    char *pw = NULL;
    if (pwfile && !(pw = vg_secret_read_file(cfg->password_file, "mqtt password")))
        return VG_EIO;
    int rc = mosquitto_username_pw_set(mosq, cfg->username, pw);
    if (pw) {
        explicit_bzero(pw, strlen(pw));
        free(pw);
    }
    return rc == MOSQ_ERR_SUCCESS ? VG_OK : VG_EINVAL;
}

/* An encrypted key would make OpenSSL prompt on the terminal: refuse instead. */
static int no_key_password(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return 0;
}

static int set_tls(struct mosquitto *mosq, const vg_tls_cfg_t *t, bool *tls)
{
    bool ca = t->ca_file && *t->ca_file, cert = t->cert_file && *t->cert_file;
    bool key = t->key_file && *t->key_file;
    if (!ca && !cert && !key)
        return VG_OK;
    if (cert != key) {
        VG_ERROR(MOD, "bad_config", "{s:s}", "reason",
                 "mqtt.tls.cert_file and mqtt.tls.key_file go together");
        return VG_EINVAL;
    }
    /* without a CA file, trust the system's CA directory */
    int rc = mosquitto_tls_set(mosq, ca ? t->ca_file : NULL, ca ? NULL : "/etc/ssl/certs",
                               cert ? t->cert_file : NULL, key ? t->key_file : NULL,
                               no_key_password);
    if (rc != MOSQ_ERR_SUCCESS) {
        VG_ERROR(MOD, "tls_config_failed", "{s:s?, s:s?, s:s?, s:s}", "ca_file",
                 ca ? t->ca_file : NULL, "cert_file", cert ? t->cert_file : NULL, "key_file",
                 key ? t->key_file : NULL, "reason", mosquitto_strerror(rc));
        return VG_EINVAL;
    }
    *tls = true;
    return VG_OK;
}

int vg_mqtt_setup_session(struct mosquitto *mosq, const vg_mqtt_cfg_t *cfg,
                          const vg_mqtt_hooks_t *hooks, bool *tls)
{
    *tls = false;
    int rc = set_credentials(mosq, cfg);
    if (rc == VG_OK)
        rc = set_tls(mosq, &cfg->tls, tls);
    if (rc == VG_OK && hooks->will_topic) {
        const char *p = hooks->will_payload ? hooks->will_payload : "";
        if (mosquitto_will_set(mosq, hooks->will_topic, (int)strlen(p), p, 1, true) !=
            MOSQ_ERR_SUCCESS) {
            VG_ERROR(MOD, "bad_will", "{s:s}", "topic", hooks->will_topic);
            rc = VG_EINVAL;
        }
    }
    return rc;
}
