#!/usr/bin/env bash
# Install the Debian packages a Garrison target needs, only those missing.
#   scripts/system-packages.sh build  # a C compiler for the package's one extension (before pip installs it)
#   scripts/system-packages.sh run    # WeasyPrint's libraries, Graphviz, fonts
#   scripts/system-packages.sh test   # the above plus chromium (browser tests) and poppler-utils (PDF checks)
#   scripts/system-packages.sh bench  # the run packages plus wrk (service load benchmarks)
set -euo pipefail

build_packages=(gcc libc6-dev)
run_packages=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core graphviz)
test_packages=("${run_packages[@]}" chromium poppler-utils)
bench_packages=("${run_packages[@]}" wrk)

case "${1:-run}" in
  build) wanted=("${build_packages[@]}") ;;
  run) wanted=("${run_packages[@]}") ;;
  test) wanted=("${test_packages[@]}") ;;
  bench) wanted=("${bench_packages[@]}") ;;
  *) echo "usage: $0 build|run|test|bench" >&2; exit 2 ;;
esac

missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Garrison needs these system packages (install them with your package manager): ${missing[*]}" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "Garrison needs these Debian packages; as root run: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
echo "Installing system packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
