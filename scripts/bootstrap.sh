#!/usr/bin/env bash
# Makes a fresh machine ready for pushcast: the Debian packages a purpose needs, the npm packages of
# package-lock.json, and a build. Idempotent and quick when everything is already there.
#   scripts/bootstrap.sh demo|unit|test|bench
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-demo}

# Debian package → a file that shows it is installed.
declare -A packages=(
  [openssl]=/usr/bin/openssl
)
case "$purpose" in
  unit) packages[libxml2-utils]=/usr/bin/xmllint ;;
  demo|test|bench)
    packages[ffmpeg]=/usr/bin/ffmpeg
    packages[fonts-dejavu-core]=/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf
    ;;&
  demo) ;;
  test|bench)
    packages[chromium]=/usr/bin/chromium
    packages[libxml2-utils]=/usr/bin/xmllint
    packages[nginx-light]=/usr/sbin/nginx
    packages[iproute2]=/usr/sbin/ip
    packages[python3]=/usr/bin/python3   # bench:push's delay line where the kernel has no sch_netem
    packages[nftables]=/usr/sbin/nft       # packet loss in the multicast tests (the kernel has no sch_netem)
    ;;
  *) echo "usage: $0 demo|unit|test|bench" >&2; exit 2 ;;
esac

missing=()
for pkg in "${!packages[@]}"; do
  [ -e "${packages[$pkg]}" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "pushcast: installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "pushcast: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    sudo=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm packages exactly as locked; reinstalled when the lock file changed.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "pushcast: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

bash scripts/build.sh
