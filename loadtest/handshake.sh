#!/bin/bash
# Scenario "handshake": full TLS handshakes per second, each with a client
# certificate (P-256 tenant certificate of the demo PKI) and one GET,
# through Debian's nginx alone and through nginx + certval auth_request
# (frontends.nginx), in the same run against the same nginx. Clients:
# `openssl s_time -new` (a new session, so a full handshake, on every
# connection), LT_CLIENTS processes in parallel (default 2).
# The certval side is checked: certval must have answered one auth_request
# per measured request. Bounded: about 70 s (SMOKE=1: a few seconds).
. "$(dirname "$0")/lib.sh"

NGINX=${LT_NGINX:-/usr/sbin/nginx}
[ -x "$NGINX" ] || { echo "handshake: $NGINX is missing (apt-get install nginx)" >&2; exit 1; }
CLIENTS=${LT_CLIENTS:-2}
if [ "$SMOKE" = 1 ]; then DUR=1; ROUNDS=1; else DUR=10; ROUNDS=${LT_ROUNDS:-3}; fi

free_port() { "$LT_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/certval-handshake-XXXXXX")
NGINX_PID=""
cleanup() {
  [ -z "$NGINX_PID" ] || { kill -TERM "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; }
  lt_server_stop
  rm -rf "$DIR"
}
trap cleanup EXIT

"$LT_CTL" demo-pki --dir "$DIR/pki" --listen 127.0.0.1:0 >/dev/null
AUTH_PORT=$(free_port); METRICS_PORT=$(free_port)
LT_SERVER_YAML="frontends: {nginx: {listen: \"127.0.0.1:$AUTH_PORT\"}}
metrics: {listen: \"127.0.0.1:$METRICS_PORT\"}"
lt_server_start "$DIR/pki"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$DIR/server.key" \
  -out "$DIR/server.crt" -days 2 -subj /CN=localhost >/dev/null 2>&1
mkdir -p "$DIR/www" && echo ok > "$DIR/www/index.html"
chmod 755 "$DIR" "$DIR/www" # nginx workers may run as another user
# nginx_start: nginx on two ports picked now. A port free when picked can
# be taken before nginx binds it (another test's connection gets it as its
# source port), so a start whose bind fails is tried again on new ports.
nginx_start() {
PLAIN_PORT=$(free_port); AUTHED_PORT=$(free_port)
cat > "$DIR/nginx.conf" <<EOT
worker_processes 1;
error_log stderr error;
events { worker_connections 1024; }
http {
    access_log off;
    upstream certval { server 127.0.0.1:$AUTH_PORT; keepalive 32; }
    ssl_certificate $DIR/server.crt;
    ssl_certificate_key $DIR/server.key;
    ssl_verify_client optional_no_ca;
    ssl_session_cache off;
    ssl_session_tickets off;
    # nginx alone: the handshake with the client certificate, then a
    # small static page.
    server {
        listen 127.0.0.1:$PLAIN_PORT ssl;
        root $DIR/www;
    }
    # nginx + certval: the same, after an auth_request to certval.
    server {
        listen 127.0.0.1:$AUTHED_PORT ssl;
        root $DIR/www;
        # (not "return": it runs before the access phase, auth_request's;
        # and the clients ask for /index.html: an index redirect would
        # run auth_request twice)
        location / { auth_request /_certval; }
        location = /_certval {
            internal;
            proxy_pass http://certval/check;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Client-Cert \$ssl_client_escaped_cert;
            proxy_set_header X-Tenant-Id acme;
        }
    }
}
EOT
"$NGINX" -p "$DIR" -c "$DIR/nginx.conf" -e stderr -g "daemon off; pid $DIR/nginx.pid;" \
  2> "$DIR/nginx.log" &
NGINX_PID=$!
for _ in $(seq 1 100); do
  # A failed bind is logged before the next port listens: checked first.
  grep -q "Address already in use" "$DIR/nginx.log" && break
  "$LT_PY" -c "import socket,sys; socket.create_connection(('127.0.0.1',int(sys.argv[1])),1)" \
    "$AUTHED_PORT" 2>/dev/null && ! grep -q "Address already in use" "$DIR/nginx.log" && return 0
  kill -0 "$NGINX_PID" 2>/dev/null || break
  sleep 0.05
done
kill -TERM "$NGINX_PID" 2>/dev/null # not up in 5 s: stopped, then judged by its log
wait "$NGINX_PID" 2>/dev/null
NGINX_PID=""
return 1
}
started=""
for attempt in 1 2 3 4 5; do
  if nginx_start; then started=1; break; fi
  grep -q "Address already in use" "$DIR/nginx.log" ||
    { echo "handshake: nginx did not start" >&2; cat "$DIR/nginx.log" >&2; exit 1; }
  lt_log "handshake: nginx's port was taken meanwhile (attempt $attempt); new ports"
done
[ -n "$started" ] || { echo "handshake: nginx could not bind in 5 attempts" >&2; cat "$DIR/nginx.log" >&2; exit 1; }

CERT=$DIR/pki/tenant-acme.pem KEY=$DIR/pki/tenant-acme.key
# One request through each first: the certval path must answer 200.
for p in "$PLAIN_PORT" "$AUTHED_PORT"; do
  printf 'GET /index.html HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -quiet -connect "127.0.0.1:$p" -cert "$CERT" \
    -key "$KEY" 2>/dev/null | head -1 | grep -q ' 200 ' ||
    { echo "handshake: port $p does not answer 200" >&2; cat "$DIR/nginx.log" >&2; exit 1; }
done

nginx_decisions() {
  "$LT_PY" - "$METRICS_PORT" <<'PY'
import re, sys, urllib.request
text = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
m = re.search(r'^certval_frontend_decisions_total\{frontend="nginx",decision="REQUIRE_PASSWORD"\} (\d+)', text, re.M)
print(m.group(1) if m else 0)
PY
}

# run PORT LABEL: CLIENTS parallel s_time runs; prints the connections
# they completed and the wall-clock seconds the runs took.
run() {
  local port=$1 label=$2 i total=0 t0 t1
  t0=$(date +%s.%N)
  for i in $(seq 1 "$CLIENTS"); do
    openssl s_time -connect "127.0.0.1:$port" -new -cert "$CERT" -key "$KEY" -www /index.html \
      -time "$DUR" > "$DIR/$label.$i.txt" 2>&1 &
  done
  wait $(jobs -p | grep -v "^$NGINX_PID$" | grep -v "^$LT_SERVER_PID$") 2>/dev/null || true
  t1=$(date +%s.%N)
  for i in $(seq 1 "$CLIENTS"); do
    local n
    n=$(sed -nE 's/^([0-9]+) connections in [0-9.]+s;.*/\1/p' "$DIR/$label.$i.txt" | head -1)
    [ -n "$n" ] || { cat "$DIR/$label.$i.txt" >&2; return 1; }
    total=$((total + n))
  done
  echo "$total $("$LT_PY" -c "print('%.3f' % ($t1 - $t0))")"
}

# Alternating rounds, so that noise from other load on the machine falls on
# both sides alike.
N_PLAIN=0 S_PLAIN=0 N_AUTHED=0 S_AUTHED=0 ANSWERED=0
for r in $(seq 1 "$ROUNDS"); do
  lt_log "handshake: round $r/$ROUNDS, nginx alone, $CLIENTS s_time clients, ${DUR} s"
  read -r n t < <(run "$PLAIN_PORT" plain)
  N_PLAIN=$((N_PLAIN + n)); S_PLAIN=$("$LT_PY" -c "print($S_PLAIN + $t)")
  BEFORE=$(nginx_decisions)
  lt_log "handshake: round $r/$ROUNDS, nginx + certval auth_request, ${DUR} s"
  read -r n t < <(run "$AUTHED_PORT" authed)
  N_AUTHED=$((N_AUTHED + n)); S_AUTHED=$("$LT_PY" -c "print($S_AUTHED + $t)")
  AFTER=$(nginx_decisions)
  ANSWERED=$((ANSWERED + AFTER - BEFORE))
done
# s_time counts the connections it finished, one request each: certval
# answered one auth_request per request (plus at most one unfinished
# connection per client).
if [ "$ANSWERED" -lt "$N_AUTHED" ] || [ "$ANSWERED" -gt $((N_AUTHED + CLIENTS * ROUNDS)) ]; then
  echo "handshake: certval answered $ANSWERED auth_requests for $N_AUTHED requests" >&2
  exit 1
fi
P=$("$LT_PY" -c "print('%.1f' % ($N_PLAIN / $S_PLAIN))")
A=$("$LT_PY" -c "print('%.1f' % ($N_AUTHED / $S_AUTHED))")
lt_summary handshake <<EOT
metric=handshakes_per_s
nginx_alone=$P
nginx_certval=$A
ratio=$(lt_ratio "$A" "$P")
clients=$CLIENTS
rounds=$ROUNDS
handshakes_alone=$N_PLAIN
handshakes_certval=$N_AUTHED
seconds_alone=$S_PLAIN
seconds_certval=$S_AUTHED
certval_answers=$ANSWERED
EOT
