#!/usr/bin/env bash
# Install the real WebRTC clients the interop tests drive.
# Idempotent: installs only what is missing. In CI (CI=true) a missing
# client that cannot be installed is an error; elsewhere it is a warning,
# and the interop tests that need it are skipped.
set -euo pipefail

CHROMIUM_BIN=/usr/lib/chromium/chromium

say() { printf 'install-clients: %s\n' "$*"; }

give_up() {
    if [[ "${CI:-}" == "true" ]]; then
        say "error: $*" >&2
        exit 1
    fi
    say "warning: $* (interop tests that need it will be skipped)" >&2
    exit 0
}

apt_updated=no
apt_install() {
    if [[ "$(id -u)" -ne 0 ]]; then
        give_up "need root to apt-get install $*; rerun as root"
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        give_up "apt-get not found; install $* with this system's package manager"
    fi
    if [[ "$apt_updated" == no ]]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        apt_updated=yes
    fi
    say "apt-get install -y --no-install-recommends $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# Chromium (libwebrtc): driven headless by tests/interop/test_chromium.py.
if [[ -x "$CHROMIUM_BIN" ]]; then
    say "chromium already installed: $("$CHROMIUM_BIN" --version 2>/dev/null || echo "$CHROMIUM_BIN")"
else
    apt_install chromium
    [[ -x "$CHROMIUM_BIN" ]] || give_up "chromium installed but $CHROMIUM_BIN is missing"
    say "installed $("$CHROMIUM_BIN" --version 2>/dev/null || echo chromium)"
fi

# Later clients go here: Firefox ESR, GStreamer webrtcbin, and the node
# clients (werift, @roamhq/wrtc). Not installed yet.

say "done"
