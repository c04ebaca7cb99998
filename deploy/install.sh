#!/usr/bin/env bash
# Installs swarmlet's system dependencies, builds it, puts `swarmlet` on the PATH and (where
# systemd runs) installs and starts the swarmlet.service unit. Debian 12, as root, from the
# repository root:   sudo ./deploy/install.sh [--no-service]
# Safe to run again: every step makes things so, whatever is there now.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: sudo ./deploy/install.sh [--no-service] [--help]

Installs and builds swarmlet on Debian 12 (run as root from anywhere; it finds the repo):
  - apt packages: etcd-server protobuf-compiler gcc libc6-dev nftables iproute2 util-linux bsdutils ca-certificates,
    crun skopeo umoci (oci images), buildah (image build), tini (run --init), and the tools tests and benchmarks use
    (chromium among them, for the dashboard's browser test)
  - checks Node.js 20+ and npm are present (Debian 12's own nodejs is 18: not enough)
  - stops and disables Debian's etcd.service (swarmlet runs its own etcd member on :2379/:2380)
  - npm ci (npm install without a package-lock.json) and npm run build
  - links /usr/local/bin/swarmlet -> <repo>/bin/swarmlet
  - with systemd: installs /etc/systemd/system/swarmlet.service, enables and starts it

Options:
  --no-service   do not enable or start swarmlet.service (same as SWARMLET_NO_SERVICE=1)
  -h, --help     show this help
EOF
}

log() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

NO_SERVICE="${SWARMLET_NO_SERVICE:-0}"
ARGS=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --no-service) NO_SERVICE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
MIN_NODE_MAJOR=20
# Build: protoc, and gcc for the agent's small native helper (native/: libnftables from nftables).
# Runtime: etcd, nft, ip, nsenter; crun + skopeo + umoci for oci images, buildah for `image build`. Tests and benchmarks:
# bsdutils has util-linux's `script`: the pty of tty tasks and of exec -t; tini's static build is
# `run --init`'s init (bound at /sbin/docker-init, as docker's); perl (essential) writes task logs.
# docker-registry, busybox-static and apache2-utils (htpasswd) for a local registry and image,
# tmux for the terminal tests, dnsutils (dig), iperf3, dnsperf, dnsmasq-base, wrk and sockperf (TCP_RR) for the reference figures,
# chromium for the dashboard's browser test (headless, driven by puppeteer-core).
APT_PACKAGES=(etcd-server protobuf-compiler gcc libc6-dev nftables iproute2 util-linux bsdutils ca-certificates crun skopeo umoci tini buildah
  docker-registry busybox-static apache2-utils tmux dnsutils curl iperf3 dnsperf dnsmasq-base wrk sockperf chromium)
LINK=/usr/local/bin/swarmlet
UNIT_SRC="$REPO/deploy/swarmlet.service"
UNIT_DST=/etc/systemd/system/swarmlet.service

[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0 ${ARGS[*]:-}"
{ [ -f "$REPO/package.json" ] && [ -f "$REPO/bin/swarmlet" ]; } || die "$REPO does not look like the swarmlet repository"
command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian 12"

has_systemd() { [ -d /run/systemd/system ]; }

# npm runs as the owner of the checkout, so a `sudo` install leaves no root-owned files in a
# user's working tree.
REPO_OWNER="$(stat -c %U "$REPO")"
as_repo_owner() {
  if [ "$REPO_OWNER" != root ] && [ "$REPO_OWNER" != UNKNOWN ] && command -v runuser >/dev/null; then
    local home
    home="$(getent passwd "$REPO_OWNER" | cut -d: -f6)"
    runuser -u "$REPO_OWNER" -- env HOME="${home:-/tmp}" "$@"
  else
    "$@"
  fi
}

node_major() {
  command -v node >/dev/null || return 1
  local v
  v="$(node -p 'process.versions.node' 2>/dev/null)" || return 1
  printf '%s\n' "${v%%.*}"
}

# --- apt packages ---------------------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
apt-get update -qq

# --- Node.js ----------------------------------------------------------------------------------
major="$(node_major || echo 0)"
if [ "$major" -lt "$MIN_NODE_MAJOR" ]; then
  # Only apt's nodejs if a repository the admin already configured (e.g. NodeSource) offers 20+.
  candidate="$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ {print $2}')"
  cand_major="$(printf '%s\n' "$candidate" | sed -E 's/^([0-9]+:)?([0-9]+).*/\2/;t;s/.*/0/')"
  if [ "${cand_major:-0}" -ge "$MIN_NODE_MAJOR" ] 2>/dev/null; then
    log "installing nodejs $candidate from the configured apt repositories"
    apt-get install -y -qq nodejs >/dev/null
    hash -r
    major="$(node_major || echo 0)"
    [ "$major" -ge "$MIN_NODE_MAJOR" ] || die "installed nodejs $candidate, but \`node\` on the PATH is still $(command -v node || echo missing) ($(node -v 2>/dev/null || echo none)); put Node.js ${MIN_NODE_MAJOR}+ first on the PATH"
  else
    found="none"; [ "$major" -gt 0 ] && found="v$(node -p 'process.versions.node')"
    cat >&2 <<EOF
error: swarmlet needs Node.js ${MIN_NODE_MAJOR}+ (found: ${found}); Debian 12's own nodejs package is 18.
Install Node.js ${MIN_NODE_MAJOR} or newer first, then run this script again, for example:
  - NodeSource: https://github.com/nodesource/distributions  (adds an apt repository; then this
    script installs nodejs from it), or
  - nvm: https://github.com/nvm-sh/nvm, then \`nvm install 20\`; run this script with your PATH:
      sudo env PATH="\$PATH" ./deploy/install.sh
EOF
    exit 1
  fi
fi
command -v npm >/dev/null || die "npm not found next to node $(command -v node): install npm (it ships with Node.js from NodeSource and nvm)"
log "node $(node -v), npm $(npm -v)"

log "apt-get install ${APT_PACKAGES[*]}"
apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null

# --- Debian's etcd ----------------------------------------------------------------------------
# swarmlet supervises its own etcd member on 127.0.0.1:2379 (and the advertise address :2380);
# the distro unit would hold those ports.
if has_systemd; then
  if systemctl is-enabled --quiet etcd.service 2>/dev/null || systemctl is-active --quiet etcd.service 2>/dev/null; then
    log "stopping and disabling Debian's etcd.service (swarmlet runs its own etcd member)"
    systemctl disable --now etcd.service >/dev/null 2>&1 || systemctl stop etcd.service
  fi
  # docker-registry is installed for the tests, which start their own; the distro's would sit on :5000.
  if systemctl is-enabled --quiet docker-registry.service 2>/dev/null || systemctl is-active --quiet docker-registry.service 2>/dev/null; then
    log "stopping and disabling Debian's docker-registry.service (tests run their own registry)"
    systemctl disable --now docker-registry.service >/dev/null 2>&1 || systemctl stop docker-registry.service
  fi
fi
# Anyone still on 127.0.0.1:2379 that is not an etcd member started by a swarmlet daemon?
if command -v ss >/dev/null; then
  for pid in $(ss -Hltnp 'sport = :2379' 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    ppid="$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)"
    parent="$(tr '\0' ' ' <"/proc/$ppid/cmdline" 2>/dev/null || true)"
    case "$parent $cmd" in
      *swarmlet*|*cli/main.js*) ;;
      *) warn "port 2379 is held by pid $pid (${cmd:-unknown}), not by swarmlet; stop it before \`swarmlet init\` or \`swarmlet join\` as a manager (Debian's etcd: /etc/init.d/etcd stop)" ;;
    esac
  done
fi

# --- build ------------------------------------------------------------------------------------
cd "$REPO"
# npm ci deletes node_modules first: skip it when npm's record of the installed tree is newer
# than package.json and the lock file (rm -rf node_modules to force a clean install).
if [ -f package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
    && [ node_modules/.package-lock.json -nt package.json ]; then
  log "node_modules is up to date with package-lock.json; skipping npm ci"
elif [ -f package-lock.json ]; then
  log "npm ci"
  as_repo_owner npm ci --no-audit --no-fund --loglevel=error
else
  log "npm install (no package-lock.json)"
  as_repo_owner npm install --no-audit --no-fund --loglevel=error
fi
log "npm run build"
as_repo_owner npm run --silent build

# --- CLI on the PATH --------------------------------------------------------------------------
chmod 0755 "$REPO/bin/swarmlet"
if [ "$(readlink "$LINK" 2>/dev/null || true)" != "$REPO/bin/swarmlet" ]; then
  if [ -e "$LINK" ] && [ ! -L "$LINK" ]; then
    die "$LINK exists and is not a symlink; move it away and run again"
  fi
  log "linking $LINK -> $REPO/bin/swarmlet"
  ln -sfn "$REPO/bin/swarmlet" "$LINK"
fi
"$LINK" --help >/dev/null || die "$LINK --help failed: the build did not produce a working CLI"

# --- service ----------------------------------------------------------------------------------
if has_systemd; then
  node_bin="$(command -v node)"
  case "$node_bin" in
    /usr/bin/node|/usr/local/bin/node|/bin/node) ;;
    *) warn "node is $node_bin, outside systemd's PATH: the unit will not find it; link it with: ln -s $node_bin /usr/local/bin/node" ;;
  esac
  if ! cmp -s "$UNIT_SRC" "$UNIT_DST"; then
    log "installing $UNIT_DST"
    install -m 0644 "$UNIT_SRC" "$UNIT_DST"
  fi
  systemctl daemon-reload
  if [ "$NO_SERVICE" = 1 ]; then
    log "not enabling swarmlet.service (--no-service); start it with: systemctl enable --now swarmlet"
  else
    systemctl enable --quiet swarmlet.service
    if systemctl is-active --quiet swarmlet.service; then
      log "restarting swarmlet.service (new build)"
      systemctl restart swarmlet.service
    else
      log "starting swarmlet.service"
      systemctl start swarmlet.service
    fi
    sleep 1
    systemctl is-active --quiet swarmlet.service || warn "swarmlet.service is not active: journalctl -u swarmlet"
  fi
else
  log "systemd is not running: start the daemon by hand, as root:"
  printf '      swarmlet daemon &        # logs to stderr; SWARMLET_LOG_LEVEL=debug for more\n'
fi

log "done: $(command -v swarmlet || echo "$LINK") is ready; try \`swarmlet --help\`"
