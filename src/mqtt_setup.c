/* mqtt_setup.c — turns the MQTT configuration into libmosquitto session settings:
 * credentials, TLS, last will. Runs once per client, on the loop thread, before the
 * first connect; the password lives only in libmosquitto afterwards.
 *
 * TLS: mqtt.c connects to the address it resolved off the loop (libmosquitto would
 * otherwise resolve the name itself, on the loop), so the name to verify travels in
 * our own SSL_CTX, handed to libmosquitto without its defaults (MOSQ_OPT_SSL_CTX): CA,
 * client certificate and key are loaded here, once; OpenSSL checks the peer against
 * the configured host name (or IP address) during the handshake; an info callback
 * puts the name in the ClientHello's SNI, replacing the address libmosquitto set.
 * libmosquitto holds its own reference to the SSL_CTX; the name the SSL_CTX points at
 * is the client's copy (vg_mqtt_t), freed after mosquitto_destroy(). */
#include "mqtt_internal.h"
#include "vigil/common.h"
#include "vigil/log.h"
#include "vigil/resolve.h"
#include "vigil/secret.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

static int set_credentials(struct mosquitto *mosq, const vg_mqtt_cfg_t *cfg)
{
    bool user = cfg->username && *cfg->username;
    bool pwfile = cfg->password_file && *cfg->password_file;
    if (!user && !pwfile) return VG_OK;
    if (!user) {
        VG_ERROR(MOD, "bad_config", "{s:s}", "reason", "mqtt.password_file needs mqtt.username");
        return VG_EINVAL;
    }
    char *pw = NULL;
    if (pwfile && !(pw = vg_secret_read_file(cfg->password_file, "mqtt password"))) return VG_EIO;
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

/* Before the ClientHello is written: the configured name as SNI (libmosquitto set
 * the address we connected to). Numeric hosts carry no name and send none of ours. */
static void sni_by_name(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_START)) return;
    const char *name = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (name) SSL_set_tlsext_host_name((SSL *)ssl, name);
}

/* Says why a broker's certificate was refused (libmosquitto only logs "certificate
 * verify failed"). Loop thread, inside mosquitto_loop_read(). */
static int log_verify(int ok, X509_STORE_CTX *x)
{
    if (!ok)
        VG_WARN(MOD, "tls_verify_failed", "{s:i, s:s}", "depth", X509_STORE_CTX_get_error_depth(x),
                "reason", X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)));
    return ok;
}

static int tls_fail(const char *field, const char *value)
{
    char reason[256];
    ERR_error_string_n(ERR_get_error(), reason, sizeof(reason));
    ERR_clear_error();
    VG_ERROR(MOD, "tls_config_failed", "{s:s, s:s, s:s}", "field", field, "value", value, "reason",
             reason);
    return VG_EINVAL;
}

/* CA (the system's when no ca_file), client certificate and key, peer verification
 * against host. */
static int configure_ctx(SSL_CTX *ctx, const vg_tls_cfg_t *t, const char *host)
{
    bool ca = t->ca_file && *t->ca_file, cert = t->cert_file && *t->cert_file;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_default_passwd_cb(ctx, no_key_password);
    if (ca ? SSL_CTX_load_verify_file(ctx, t->ca_file) != 1
           : SSL_CTX_set_default_verify_paths(ctx) != 1)
        return tls_fail("mqtt.tls.ca_file", ca ? t->ca_file : "(system CA store)");
    if (cert && SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1)
        return tls_fail("mqtt.tls.cert_file", t->cert_file);
    if (cert && (SSL_CTX_use_PrivateKey_file(ctx, t->key_file, SSL_FILETYPE_PEM) != 1 ||
                 SSL_CTX_check_private_key(ctx) != 1))
        return tls_fail("mqtt.tls.key_file", t->key_file);
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
    bool numeric = vg_resolve_is_numeric(host);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if ((numeric ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
                 : X509_VERIFY_PARAM_set1_host(param, host, 0)) != 1)
        return tls_fail("mqtt.host", host);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, log_verify);
    SSL_CTX_set_app_data(ctx, numeric ? NULL : (void *)host);
    SSL_CTX_set_info_callback(ctx, sni_by_name);
    return VG_OK;
}

static int set_tls(struct mosquitto *mosq, const vg_tls_cfg_t *t, const char *host, bool *tls)
{
    bool ca = t->ca_file && *t->ca_file, cert = t->cert_file && *t->cert_file;
    bool key = t->key_file && *t->key_file;
    if (!ca && !cert && !key) return VG_OK;
    if (cert != key) {
        VG_ERROR(MOD, "bad_config", "{s:s}", "reason",
                 "mqtt.tls.cert_file and mqtt.tls.key_file go together");
        return VG_EINVAL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    VG_CHECK(ctx);
    int rc = configure_ctx(ctx, t, host);
    /* as given: libmosquitto's defaults would reload files and check the address */
    if (rc == VG_OK &&
        (mosquitto_void_option(mosq, MOSQ_OPT_SSL_CTX, ctx) != MOSQ_ERR_SUCCESS ||
         mosquitto_int_option(mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0) != MOSQ_ERR_SUCCESS)) {
        VG_ERROR(MOD, "tls_config_failed", "{s:s}", "reason", "libmosquitto without TLS");
        rc = VG_EINVAL;
    }
    SSL_CTX_free(ctx); /* libmosquitto keeps its own reference */
    *tls = rc == VG_OK;
    return rc;
}

int vg_mqtt_setup_session(struct mosquitto *mosq, const vg_mqtt_cfg_t *cfg, const char *host,
                          const vg_mqtt_hooks_t *hooks, bool *tls)
{
    *tls = false;
    int rc = set_credentials(mosq, cfg);
    if (rc == VG_OK) rc = set_tls(mosq, &cfg->tls, host, tls);
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
