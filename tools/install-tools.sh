#!/usr/bin/env bash
# Installs every external command the tests and the main job call (tests/tools.py
# lists them), from Debian's packages, only when missing. Idempotent: a second
# run installs nothing. Prints each tool's version once, when it is first seen
# (kept in .cache/tools-versions.txt), so logs show what a run used.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package
declare -A PACKAGE=(
  [promtool]=prometheus
  [prometheus]=prometheus
  [docker-compose]=docker-compose
  [chromium]=chromium
  [java]=default-jre-headless
  [mvn]=maven
  [hostname]=hostname
  [gcc]=build-essential
  [python3.11-config]=python3.11-dev
)

missing=()
for cmd in "${!PACKAGE[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${PACKAGE[$cmd]}")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
    echo "missing: ${missing[*]} (install them with apt-get as root)" >&2; exit 1
  fi
  SUDO=$([[ $(id -u) -eq 0 ]] && echo "" || echo sudo)
  mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "installing Debian packages: ${pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

version() {
  # The Debian package's version where the command comes from one, else the command's own word.
  local v
  v=$(dpkg-query -W -f '${Version}' "${PACKAGE[$1]}" 2>/dev/null || true)
  if [[ -n $v ]]; then echo "${PACKAGE[$1]} $v"; else "$1" -version 2>&1 | head -1; fi
}

mkdir -p .cache
seen=.cache/tools-versions.txt
touch "$seen"
for cmd in $(printf '%s\n' "${!PACKAGE[@]}" | sort); do
  command -v "$cmd" >/dev/null || { echo "$cmd still missing after install" >&2; exit 1; }
  line="$cmd: $(version "$cmd")"
  grep -qxF "$line" "$seen" || { echo "tool $line"; echo "$line" >> "$seen"; }
done
