#!/usr/bin/env bash
# Installs the Debian packages infra-mgr and its test peers need; does nothing when all are present.
set -euo pipefail

PKGS=(
  python3 python3-venv python3-dev python3-gdbm gcc   # the virtualenv (Debian's Python has gdbm for snmpsim)
  postgresql                                          # PostgreSQL peer for the database tests
  snmp snmpd                                          # net-snmp tools and agent
  rrdtool                                             # the link audit bench's RRD baseline (LibreNMS's store)
  nut-server nut-client                               # NUT upsd + dummy-ups (power lab), upsc/upsrw
  chromium                                            # browser tests
  fonts-dejavu-core fonts-noto-core                   # the dashboard's Latin and Arabic fonts (app.css)
  nodejs npm                                          # front-end assets from the npm registry
)

missing=()
for p in "${PKGS[@]}"; do
  # Node.js may come from elsewhere on the machine: any working npm will do.
  case "$p" in nodejs|npm) command -v npm >/dev/null 2>&1 && continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package's own cluster is not used (tests and the lab start their own server on a free port).
