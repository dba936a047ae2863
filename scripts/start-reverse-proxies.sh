#!/usr/bin/env bash
# Runs the reverse-proxy configurations shipped for schools (deploy/apache, deploy/nginx) for the
# tests: Debian's apache2 and nginx, self-signed certificates, and the shipped site file with
# only its ports, server names, certificate paths and the portal's address replaced.
#
#   scripts/start-reverse-proxies.sh install
#       apt-get installs apache2, nginx and openssl when missing (scripts/test.sh calls this).
#   scripts/start-reverse-proxies.sh start apache|nginx --dir DIR --port PORT --http-port PORT \
#       --backend HOST:PORT [--scheme https|http] [--desktop-domain DOMAIN]
#       starts one proxy in the background, everything under DIR (config, certificates, logs,
#       pid file `DIR/pid`); prints its portal URL. Fails with the proxy's own error otherwise.
#       Like the shipped file, it serves two kinds of names on PORT, both forwarded to BACKEND
#       with the Host unchanged: the portal's (`localhost`) and the desktops' (`*.DOMAIN`, the
#       school's `*.desktops.school.example`). HTTP-PORT only redirects to https.
#         --scheme https (default)  TLS on PORT, as in production; the portal's certificate is
#             for localhost and 127.0.0.1, the desktops' a wildcard for *.DOMAIN.
#             DOMAIN defaults to `desktops.test` (resolve it to 127.0.0.1 in the client:
#             reqwest `.resolve(...)`, Chromium `--host-resolver-rules="MAP *.desktops.test
#             127.0.0.1"`). Portal: public_url https://localhost:PORT,
#             desktop_origin "https://{id}.desktops.test:PORT".
#         --scheme http  the same site without TLS on PORT (SSL directives and HSTS removed,
#             X-Forwarded-Proto http), the dev-mode shape: DOMAIN defaults to `localhost`, whose
#             subdomains browsers resolve to loopback by themselves. Portal: public_url
#             http://localhost:PORT, desktop_origin "http://{id}.localhost:PORT".
#             (HTTP-PORT's redirects still point at https://…:PORT; test redirects with https.)
#       When --scheme or --desktop-domain is given, a second line gives the portal's
#       desktop_origin for this proxy (e.g. `https://{id}.desktops.test:PORT`); without them the
#       output is the portal URL alone, as before.
#   scripts/start-reverse-proxies.sh configtest apache|nginx --dir DIR
#       checks the shipped file as a school installs it (names and ports 443/80 kept, only the
#       certificate paths point at throwaway self-signed ones, the wildcard among them) with
#       `apache2 -t` / `nginx -t`, without starting anything. scripts/check-deploy-files.sh
#       calls this.
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
# The desktops' wildcard server: `*.desktops.school.example` with its own certificate.
readonly SCHOOL_DESKTOP_DOMAIN="desktops.school.example"
readonly SCHOOL_DESKTOP_CERT="/etc/ssl/certs/iserv-remote-desktop-desktops.pem"
readonly SCHOOL_DESKTOP_KEY="/etc/ssl/private/iserv-remote-desktop-desktops.key"
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

# Self-signed certificates, new per proxy (P-256: generated in milliseconds): NAME.pem and
# NAME-key.pem in DIR for the subjectAltName given.
make_cert() {
    local dir=$1 name=$2 cn=$3 san=$4
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
        -subj "/CN=$cn" -addext "subjectAltName=$san" \
        -keyout "$dir/$name-key.pem" -out "$dir/$name.pem" 2>/dev/null \
        || die "openssl could not create a certificate"
}

# The portal's (cert.pem, key.pem: localhost and 127.0.0.1, as before) and the desktops'
# wildcard (desktops.pem, desktops-key.pem).
make_certs() {
    local dir=$1 portal_name=$2 desktop_domain=$3
    make_cert "$dir" cert "$portal_name" "DNS:$portal_name,IP:127.0.0.1"
    mv "$dir/cert-key.pem" "$dir/key.pem"
    make_cert "$dir" desktops "*.$desktop_domain" "DNS:*.$desktop_domain"
}

# The shipped site file with the school's names replaced by the test's, and a check that each
# replacement happened (a changed shipped file must not silently test something else).
render_site() {
    local kind=$1 dir=$2 port=$3 http_port=$4 backend=$5 scheme=$6 desktop_domain=$7 src out
    src="$ROOT/deploy/$kind/iserv-remote-desktop.conf"
    out="$dir/site.conf"
    [[ -f "$src" ]] || die "$src is missing"
    # The desktops' redirects keep the name asked for but drop its port: add the test's.
    sed -e "s|https://$SCHOOL_HOST|https://localhost:$port|g" \
        -e "s|$SCHOOL_HOST|localhost|g" \
        -e "s|$SCHOOL_DESKTOP_DOMAIN|$desktop_domain|g" \
        -e "s|$SCHOOL_BACKEND|$backend|g" \
        -e "s|$SCHOOL_DESKTOP_CERT|$dir/desktops.pem|g" \
        -e "s|$SCHOOL_DESKTOP_KEY|$dir/desktops-key.pem|g" \
        -e "s|$SCHOOL_CERT|$dir/cert.pem|g" \
        -e "s|$SCHOOL_KEY|$dir/key.pem|g" \
        -e "s|<VirtualHost \*:443>|<VirtualHost 127.0.0.1:$port>|" \
        -e "s|<VirtualHost \*:80>|<VirtualHost 127.0.0.1:$http_port>|" \
        -e "s|listen 443 ssl;|listen 127.0.0.1:$port ssl;|" \
        -e "s|listen 80;|listen 127.0.0.1:$http_port;|" \
        -e 's|"https://%{SERVER_NAME}%{REQUEST_URI}"|"https://%{SERVER_NAME}:'"$port"'%{REQUEST_URI}"|' \
        -e 's|https://\$host\$request_uri;|https://$host:'"$port"'$request_uri;|' \
        "$src" >"$out"
    if [[ "$scheme" == http ]]; then
        # The same site without TLS: no certificates, no HSTS, and the scheme the browser used.
        sed -i -E \
            -e '/^[[:space:]]*(SSLEngine|SSLCertificateFile|SSLCertificateKeyFile|SSLProtocol|ssl_certificate|ssl_certificate_key|ssl_protocols)[[:space:]]/d' \
            -e '/Strict-Transport-Security/d' \
            -e 's|RequestHeader set X-Forwarded-Proto "https"|RequestHeader set X-Forwarded-Proto "http"|' \
            -e "s|listen 127\.0\.0\.1:$port ssl;|listen 127.0.0.1:$port;|" \
            "$out"
    fi
    local left
    left="$(grep -v '^[[:space:]]*#' "$out" | grep -nE "$SCHOOL_HOST|$SCHOOL_DESKTOP_DOMAIN|:5006|\*:443|\*:80|listen (443|80)|/etc/ssl" || true)"
    [[ -z "$left" ]] || die "deploy/$kind/iserv-remote-desktop.conf has lines the test cannot adapt:
$left"
    if [[ "$scheme" == http ]]; then
        left="$(grep -v '^[[:space:]]*#' "$out" | grep -nE 'SSL|ssl|"https"' || true)"
        [[ -z "$left" ]] || die "deploy/$kind/iserv-remote-desktop.conf has TLS lines the http test cannot remove:
$left"
    fi
    # Both server kinds must be there, or the test would pass against the portal alone.
    grep -qF "*.$desktop_domain" "$out" \
        || die "deploy/$kind/iserv-remote-desktop.conf has no *.$SCHOOL_DESKTOP_DOMAIN server"
    # The desktops' redirect must carry the test's port (else it leads to port 443).
    grep -qF -e "https://%{SERVER_NAME}:$port%{REQUEST_URI}" -e "https://\$host:$port\$request_uri" "$out" \
        || die "deploy/$kind/iserv-remote-desktop.conf: the desktops' redirect was not adapted to port $port"
}

# The shipped site file exactly as a school installs it (names, ports 443 and 80, the portal's
# address), with only the certificate paths pointing at DIR's throwaway certificates.
render_school_site() {
    local kind=$1 dir=$2 src
    src="$ROOT/deploy/$kind/iserv-remote-desktop.conf"
    [[ -f "$src" ]] || die "$src is missing"
    sed -e "s|$SCHOOL_DESKTOP_CERT|$dir/desktops.pem|g" \
        -e "s|$SCHOOL_DESKTOP_KEY|$dir/desktops-key.pem|g" \
        -e "s|$SCHOOL_CERT|$dir/cert.pem|g" \
        -e "s|$SCHOOL_KEY|$dir/key.pem|g" \
        "$src" >"$dir/site.conf"
    ! grep -v '^[[:space:]]*#' "$dir/site.conf" | grep -q /etc/ssl \
        || die "deploy/$kind/iserv-remote-desktop.conf names certificates other than the known ones"
}

# The main configuration around DIR/site.conf: the modules the shipped site file needs and the
# addresses to listen on (LISTEN...), everything else under DIR.
write_apache_main() {
    local dir=$1 listen
    shift
    mkdir -p "$dir/logs"
    {
        cat <<EOF
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
EOF
        for listen in "$@"; do echo "Listen $listen"; done
        echo "ServerName localhost"
        echo "Include $dir/site.conf"
    } >"$dir/apache2.conf"
    if [[ $EUID -eq 0 ]]; then
        printf 'User www-data\nGroup www-data\n' >>"$dir/apache2.conf"
        chown www-data "$dir/logs"
    fi
}

write_nginx_main() {
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
}

configtest_apache() {
    local dir=$1
    /usr/sbin/apache2 -f "$dir/apache2.conf" -t >"$dir/configtest.log" 2>&1 \
        || die "apache2 refuses the configuration: $(cat "$dir/configtest.log")"
}

configtest_nginx() {
    local dir=$1
    /usr/sbin/nginx -c "$dir/nginx.conf" -t >"$dir/configtest.log" 2>&1 \
        || die "nginx refuses the configuration: $(cat "$dir/configtest.log")"
}

start_apache() {
    local dir=$1 port=$2 http_port=$3
    write_apache_main "$dir" "127.0.0.1:$port" "127.0.0.1:$http_port"
    configtest_apache "$dir"
    /usr/sbin/apache2 -f "$dir/apache2.conf" -k start \
        || die "apache2 did not start: $(tail -n 20 "$dir/logs/error.log" 2>/dev/null)"
}

start_nginx() {
    local dir=$1
    write_nginx_main "$dir"
    configtest_nginx "$dir"
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
kind="" dir="" port="" http_port="" backend="" scheme="" desktop_domain=""
if [[ "$cmd" == start || "$cmd" == configtest ]]; then
    kind="${1:-}"
    shift || true
fi
while (($#)); do
    (($# >= 2)) || die "$1 needs a value"
    case "$1" in
        --dir) dir="$2" ;;
        --port) port="$2" ;;
        --http-port) http_port="$2" ;;
        --backend) backend="$2" ;;
        --scheme) scheme="$2" ;;
        --desktop-domain) desktop_domain="$2" ;;
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
        # Only callers that ask about desktops get the second output line (older ones compare
        # the whole output with the portal URL).
        print_origin=false
        [[ -z "$scheme" && -z "$desktop_domain" ]] || print_origin=true
        scheme="${scheme:-https}"
        [[ "$scheme" == https || "$scheme" == http ]] || die "--scheme is https or http, not '$scheme'"
        if [[ -z "$desktop_domain" ]]; then
            if [[ "$scheme" == https ]]; then desktop_domain=desktops.test; else desktop_domain=localhost; fi
        fi
        # A host name: it goes into the site file and a sed expression as it is.
        [[ "$desktop_domain" =~ ^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$ ]] \
            || die "--desktop-domain needs a DNS name such as desktops.test, not '$desktop_domain'"
        mkdir -p "$dir"
        dir="$(cd "$dir" && pwd)"
        make_certs "$dir" localhost "$desktop_domain"
        render_site "$kind" "$dir" "$port" "$http_port" "$backend" "$scheme" "$desktop_domain"
        "start_$kind" "$dir" "$port" "$http_port"
        wait_listening "$port"
        echo "$scheme://localhost:$port"
        if $print_origin; then echo "$scheme://{id}.$desktop_domain:$port"; fi
        ;;
    configtest)
        [[ "$kind" == apache || "$kind" == nginx ]] || die "configtest apache|nginx, not '$kind'"
        [[ -n "$dir" ]] || die "configtest needs --dir DIR"
        mkdir -p "$dir"
        dir="$(cd "$dir" && pwd)"
        make_certs "$dir" "$SCHOOL_HOST" "$SCHOOL_DESKTOP_DOMAIN"
        render_school_site "$kind" "$dir"
        if [[ "$kind" == apache ]]; then
            write_apache_main "$dir" 443 80
        else
            write_nginx_main "$dir"
        fi
        "configtest_$kind" "$dir"
        cat "$dir/configtest.log"
        ;;
    stop)
        [[ -n "$dir" ]] || die "stop needs --dir DIR"
        stop_proxy "$dir"
        ;;
    *)
        die "usage: $0 install | start apache|nginx --dir DIR --port N --http-port N --backend HOST:PORT [--scheme https|http] [--desktop-domain DOMAIN] | configtest apache|nginx --dir DIR | stop --dir DIR"
        ;;
esac
