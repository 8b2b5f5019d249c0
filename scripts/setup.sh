#!/usr/bin/env bash
# Set up svm_toolkit on a fresh Debian/Ubuntu machine that has Python >= 3.11.
#
#   scripts/setup.sh          create .venv and install svm_toolkit (+ ffmpeg, libchromaprint1 and
#                             espeak-ng from apt-get when they are missing)
#   scripts/setup.sh --dev    the same, plus the test and lint tools, and Chromium with its
#                             driver (apt-get: chromium, chromium-driver) for tests/report
#
# Safe to re-run: every step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
exec 3>&2  # the terminal's stderr, for messages from inside redirected apt-get steps

extras=""
case "${1:-}" in
  "") ;;
  --dev) extras="[dev]" ;;
  *) echo "usage: scripts/setup.sh [--dev]" >&2; exit 2 ;;
esac

as_root() {  # run an apt-get command as root, or explain what to run
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else
    echo "setup: '$*' needs root. Run it yourself (with sudo), then re-run scripts/setup.sh." >&3
    exit 1
  fi
}
apt_updated=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || {
    echo "setup: install $* with your system's package manager, then re-run scripts/setup.sh." >&2
    exit 1
  }
  local log
  log=$(mktemp)
  if { [ -n "$apt_updated" ] || as_root apt-get update -qq; } >"$log" 2>&1 &&
     as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >>"$log" 2>&1; then
    apt_updated=1
    rm -f "$log"
  else
    cat "$log" >&2
    echo "setup: installing $* failed (output above)." >&2
    exit 1
  fi
}

# 1. Python >= 3.11
py=""
for candidate in "${PYTHON:-}" python3.11 python3.12 python3.13 python3; do
  if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    py="$candidate"; break
  fi
done
[ -n "$py" ] || { echo "setup: svm_toolkit needs Python >= 3.11 (set PYTHON=/path/to/python)." >&2; exit 1; }

# 2. System packages: ffmpeg (ffmpeg + ffprobe), Chromaprint (audio fingerprints), espeak-ng
#    (the synthetic speech of the demo and tests), and venv support where Debian splits it out.
missing=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
{ ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null | grep -q 'libchromaprint\.so\.1' || missing+=(libchromaprint1)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} (apt-get)"
  apt_install "${missing[@]}"
  command -v ffprobe >/dev/null 2>&1 || { echo "setup: ffmpeg is still missing after apt-get." >&2; exit 1; }
fi
# (--dev) headless Chromium and ChromeDriver: tests/report opens `svm report`'s page in them.
# Debian's packages; installed on their own so that a system without them (Ubuntu ships snaps)
# still gets everything else: the report tests then fail and name what is missing.
if [ -n "$extras" ]; then
  browser=()
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || browser+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || browser+=(chromium-driver)
  if [ ${#browser[@]} -gt 0 ]; then
    echo "setup: installing ${browser[*]} (apt-get)"
    ( apt_install "${browser[@]}" ) ||
      echo "setup: could not install ${browser[*]}; tests/report needs a Chromium and its chromedriver on PATH." >&2
  fi
fi
if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
  apt_install "python3-venv"
fi

# 3. The virtual environment and the package.
# a .venv left half-made by an interrupted run (no pip yet) is made again
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  rm -rf .venv
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"

# 4. (--dev) The reference implementations the parity tests compare against. Their own
#    requirements pin old torch releases, so they go in without them (what they need to import is
#    in the dev extra): torchaudio 2.11.1 (the newest release; its Kaldi fbank imports beside the
#    project's torch), torchvggish 0.2, pytorchvideo 0.1.5 and imagebind-unofficial 0.1.1 (Meta's
#    ImageBind code as released; the PyPI name "imagebind" is an empty placeholder).
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
    torchaudio==2.11.1 torchvggish==0.2 pytorchvideo==0.1.5 imagebind-unofficial==0.1.1
fi
echo "setup: ready ($(.venv/bin/svm --version); $(ffmpeg -version | head -n 1 | cut -d' ' -f1-3))"
