/* secret.h — reading secrets (HTTP token, MQTT password) from files. Any thread; the
 * callers today are the loop thread at start-up and on SIGHUP. The content is never
 * logged. */
#ifndef VIGIL_SECRET_H
#define VIGIL_SECRET_H

/* Reads the first line of `path`, surrounding whitespace trimmed; `what` names the
 * secret in the log line written when it cannot be read (without its content).
 * Returns the secret (caller frees, preferably after explicit_bzero) or NULL. */
char *vg_secret_read_file(const char *path, const char *what);

#endif
