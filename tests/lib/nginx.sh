# tests/lib/nginx.sh -- a real, throw-away nginx (Debian's nginx-light) as the
# load balancer in front of replicated HomeIQ tiers (issue 18).
#
# Use (after sourcing common.sh):
#   . "$(dirname "$0")/../lib/nginx.sh"
#   nginx_start CONF_TEMPLATE VAR=value... || bail "nginx starts"
#     CONF_TEMPLATE is deploy/scale/nginx.conf; @VAR@ placeholders are replaced by
#     the given values, @DIR@ by nginx's temp dir. Exports NGINX_PID, NGINX_DIR.
#   nginx_stop
# Fails (does not skip) when /usr/sbin/nginx is missing (scripts/install-deps installs it).

nginx_start() {
  local tpl=$1; shift
  if [ ! -x /usr/sbin/nginx ]; then
    echo "FAIL: /usr/sbin/nginx not found; install Debian's nginx-light (scripts/install-deps)" >&2
    return 1
  fi
  NGINX_DIR=${TEST_TMP:-$(mktemp -d /tmp/homeiq-nginx.XXXXXX)}/nginx
  mkdir -p "$NGINX_DIR"
  local sedargs=(-e "s|@DIR@|$NGINX_DIR|g") kv
  for kv in "$@"; do sedargs+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  sed "${sedargs[@]}" "$tpl" >"$NGINX_DIR/nginx.conf"
  if grep -q '@[A-Z_0-9]*@' "$NGINX_DIR/nginx.conf"; then
    echo "FAIL: nginx.conf placeholders left: $(grep -o '@[A-Z_0-9]*@' "$NGINX_DIR/nginx.conf" | sort -u | tr '\n' ' ')" >&2
    return 1
  fi
  /usr/sbin/nginx -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -g 'daemon off; master_process off;' \
    >"$NGINX_DIR/stdout.log" 2>&1 &
  NGINX_PID=$!
  if declare -p TEST_PIDS >/dev/null 2>&1; then TEST_PIDS+=("$NGINX_PID"); fi
  export NGINX_PID NGINX_DIR
  local i=0
  while (( i < 100 )); do
    [ -s "$NGINX_DIR/nginx.pid" ] && return 0
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
  done
  echo "FAIL: nginx did not start; log:" >&2
  cat "$NGINX_DIR/stdout.log" "$NGINX_DIR/error.log" >&2 2>/dev/null
  return 1
}

nginx_stop() {
  [ -n "${NGINX_PID:-}" ] || return 0
  kill -QUIT "$NGINX_PID" 2>/dev/null || true
  local i=0
  while kill -0 "$NGINX_PID" 2>/dev/null && (( i < 100 )); do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$NGINX_PID" 2>/dev/null || true
  wait "$NGINX_PID" 2>/dev/null || true
  NGINX_PID=
}
