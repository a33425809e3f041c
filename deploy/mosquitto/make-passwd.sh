#!/usr/bin/env bash
# make-passwd.sh DIR — the broker's users for deploy/mosquitto/acl: vigil, orchestrator,
# dashboard. Writes one random password per user to DIR/<user>.password (an existing
# one is kept, so put your own there first) and DIR/passwd, the hashed password file
# mosquitto reads (password_file), made with mosquitto_passwd. DIR is made mode 0700;
# the files in it are 0644 so that the containers' users can read what is mounted
# into them (vigild reads only vigil.password, mosquitto only passwd).
# Give each client its own file: vigild's mqtt.password_file, the orchestrator's and
# dashboards' client settings. Run it again after adding or changing a password.
set -euo pipefail
dir=${1:?usage: make-passwd.sh DIR}
command -v mosquitto_passwd >/dev/null ||
    { echo "make-passwd: mosquitto_passwd not found (Debian: apt install mosquitto)" >&2; exit 1; }
mkdir -p "$dir"
chmod 700 "$dir"
umask 022
new=$dir/passwd.new
: >"$new"
for user in vigil orchestrator dashboard; do
    f=$dir/$user.password
    [ -s "$f" ] || head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$f"
    mosquitto_passwd -b "$new" "$user" "$(head -n 1 "$f")"
done
chmod 644 "$new"
mv "$new" "$dir/passwd"
echo "make-passwd: $dir/passwd for vigil, orchestrator, dashboard (passwords in $dir/<user>.password)"
