#!/usr/bin/env bash
# Runs the reverse-proxy configurations shipped for schools (deploy/apache, deploy/nginx) for the
# tests: Debian's apache2 and nginx, a self-signed certificate, and the shipped site file with
# only its ports, server name, certificate paths and the portal's address replaced.
#
#   scripts/start-reverse-proxies.sh install
#       apt-get installs apache2, nginx and openssl when missing (scripts/test.sh calls this).
#   scripts/start-reverse-proxies.sh start apache|nginx --dir DIR --port PORT --http-port PORT \
#       --backend HOST:PORT
#       starts one proxy in the background, everything under DIR (config, certificate, logs,
#       pid file `DIR/pid`); prints its https URL. Fails with the proxy's own error otherwise.
#   scripts/start-reverse-proxies.sh stop --dir DIR
#       stops the proxy started with DIR (by its pid file).
#
# The tests (crates/portal/tests/portal/reverse_proxy.rs, browser_real.rs) start one proxy per
# test on free ports, so parallel tests never share one, and nothing stays running afterwards.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly SCHOOL_HOST="desktop.school.example"
readonly SCHOOL_BACKEND="127.0.0.1:5006"
readonly SCHOOL_CERT="/etc/ssl/certs/iserv-remote-desktop.pem"
readonly SCHOOL_KEY="/etc/ssl/private/iserv-remote-desktop.key"
readonly APACHE_MODULES="/usr/lib/apache2/modules"

die() {
    echo "start-reverse-proxies: $*" >&2
    exit 1
}

install_packages() {
    local missing=()
    command -v apache2 >/dev/null 2>&1 || [[ -x /usr/sbin/apache2 ]] || missing+=(apache2)
    command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    if ((${#missing[@]})); then
        [[ $EUID -eq 0 ]] || die "installing ${missing[*]} needs root"
        apt-get update
        # Debian starts the packaged services on port 80; the tests use their own instances.
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    fi
    /usr/sbin/apache2 -v | head -n1
    /usr/sbin/nginx -v 2>&1
}

# A certificate for localhost and 127.0.0.1, new per proxy (P-256: generated in milliseconds).
make_cert() {
    local dir=$1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null \
        || die "openssl could not create a certificate"
}

# The shipped site file with the school's names replaced by the test's, and a check that each
# replacement happened (a changed shipped file must not silently test something else).
render_site() {
    local kind=$1 dir=$2 port=$3 http_port=$4 backend=$5 src out
    src="$ROOT/deploy/$kind/iserv-remote-desktop.conf"
    out="$dir/site.conf"
    [[ -f "$src" ]] || die "$src is missing"
    sed -e "s|https://$SCHOOL_HOST|https://localhost:$port|g" \
        -e "s|$SCHOOL_HOST|localhost|g" \
        -e "s|$SCHOOL_BACKEND|$backend|g" \
        -e "s|$SCHOOL_CERT|$dir/cert.pem|g" \
        -e "s|$SCHOOL_KEY|$dir/key.pem|g" \
        -e "s|<VirtualHost \*:443>|<VirtualHost 127.0.0.1:$port>|" \
        -e "s|<VirtualHost \*:80>|<VirtualHost 127.0.0.1:$http_port>|" \
        -e "s|listen 443 ssl;|listen 127.0.0.1:$port ssl;|" \
        -e "s|listen 80;|listen 127.0.0.1:$http_port;|" \
        "$src" >"$out"
    local left
    left="$(grep -v '^[[:space:]]*#' "$out" | grep -nE "$SCHOOL_HOST|:5006|\*:443|\*:80|listen (443|80)|/etc/ssl" || true)"
    [[ -z "$left" ]] || die "deploy/$kind/iserv-remote-desktop.conf has lines the test cannot adapt:
$left"
}

start_apache() {
    local dir=$1 port=$2 http_port=$3
    mkdir -p "$dir/logs"
    cat >"$dir/apache2.conf" <<EOF
# Test main configuration: the modules the shipped site file needs, then that file.
ServerRoot /etc/apache2
Define APACHE_LOG_DIR $dir/logs
PidFile $dir/pid
Mutex file:$dir default
ErrorLog $dir/logs/error.log
LogLevel warn
LogFormat "%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"" combined
LoadModule mpm_event_module $APACHE_MODULES/mod_mpm_event.so
LoadModule authz_core_module $APACHE_MODULES/mod_authz_core.so
LoadModule alias_module $APACHE_MODULES/mod_alias.so
LoadModule headers_module $APACHE_MODULES/mod_headers.so
LoadModule socache_shmcb_module $APACHE_MODULES/mod_socache_shmcb.so
LoadModule ssl_module $APACHE_MODULES/mod_ssl.so
LoadModule proxy_module $APACHE_MODULES/mod_proxy.so
LoadModule proxy_http_module $APACHE_MODULES/mod_proxy_http.so
SSLSessionCache shmcb:$dir/ssl_scache(512000)
Listen 127.0.0.1:$port
Listen 127.0.0.1:$http_port
ServerName localhost
Include $dir/site.conf
EOF
    if [[ $EUID -eq 0 ]]; then
        printf 'User www-data\nGroup www-data\n' >>"$dir/apache2.conf"
        chown www-data "$dir/logs"
    fi
    /usr/sbin/apache2 -f "$dir/apache2.conf" -t >"$dir/configtest.log" 2>&1 \
        || die "apache2 refuses the configuration: $(cat "$dir/configtest.log")"
    /usr/sbin/apache2 -f "$dir/apache2.conf" -k start \
        || die "apache2 did not start: $(tail -n 20 "$dir/logs/error.log" 2>/dev/null)"
}

start_nginx() {
    local dir=$1
    mkdir -p "$dir/logs" "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
# Test main configuration: the shipped site file in the http context, as Debian includes it.
pid $dir/pid;
error_log $dir/logs/error.log warn;
worker_processes 1;
events { worker_connections 256; }
http {
    access_log $dir/logs/access.log;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    include $dir/site.conf;
}
EOF
    /usr/sbin/nginx -c "$dir/nginx.conf" -t >"$dir/configtest.log" 2>&1 \
        || die "nginx refuses the configuration: $(cat "$dir/configtest.log")"
    /usr/sbin/nginx -c "$dir/nginx.conf" \
        || die "nginx did not start: $(tail -n 20 "$dir/logs/error.log" 2>/dev/null)"
}

# Waits (up to 10 s) until the proxy answers on its port.
wait_listening() {
    local port=$1 tries=0
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        tries=$((tries + 1))
        ((tries < 200)) || die "nothing listens on 127.0.0.1:$port after 10 s"
        sleep 0.05
    done
}

stop_proxy() {
    local dir=$1 pid
    [[ -f "$dir/pid" ]] || return 0
    pid="$(cat "$dir/pid")"
    [[ "$pid" =~ ^[0-9]+$ ]] || die "$dir/pid does not hold a process id"
    kill -TERM "$pid" 2>/dev/null || true
}

cmd="${1:-}"
shift || true
kind="" dir="" port="" http_port="" backend=""
if [[ "$cmd" == start ]]; then
    kind="${1:-}"
    shift || true
fi
while (($#)); do
    case "$1" in
        --dir) dir="$2" ;;
        --port) port="$2" ;;
        --http-port) http_port="$2" ;;
        --backend) backend="$2" ;;
        *) die "unknown argument $1" ;;
    esac
    shift 2
done

case "$cmd" in
    install)
        install_packages
        ;;
    start)
        [[ "$kind" == apache || "$kind" == nginx ]] || die "start apache|nginx, not '$kind'"
        [[ -n "$dir" && "$port" =~ ^[0-9]+$ && "$http_port" =~ ^[0-9]+$ && "$backend" =~ ^[^[:space:]]+:[0-9]+$ ]] \
            || die "start needs --dir DIR --port N --http-port N --backend HOST:PORT"
        mkdir -p "$dir"
        dir="$(cd "$dir" && pwd)"
        make_cert "$dir"
        render_site "$kind" "$dir" "$port" "$http_port" "$backend"
        "start_$kind" "$dir" "$port" "$http_port"
        wait_listening "$port"
        echo "https://localhost:$port"
        ;;
    stop)
        [[ -n "$dir" ]] || die "stop needs --dir DIR"
        stop_proxy "$dir"
        ;;
    *)
        die "usage: $0 install | start apache|nginx --dir DIR --port N --http-port N --backend HOST:PORT | stop --dir DIR"
        ;;
esac
