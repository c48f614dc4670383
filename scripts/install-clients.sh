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
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -q
        apt_updated=yes
    fi
    say "apt-get install -y --no-install-recommends $*"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@"
}

# Chromium (libwebrtc): driven headless by tests/interop/test_chromium.py.
if [[ -x "$CHROMIUM_BIN" ]]; then
    say "chromium already installed: $("$CHROMIUM_BIN" --version 2>/dev/null || echo "$CHROMIUM_BIN")"
else
    apt_install chromium
    [[ -x "$CHROMIUM_BIN" ]] || give_up "chromium installed but $CHROMIUM_BIN is missing"
    say "installed $("$CHROMIUM_BIN" --version 2>/dev/null || echo chromium)"
fi

# --- Interop matrix clients (rtcgate interop, tests/interop/test_matrix.py) -----------
# Firefox ESR, GStreamer webrtcbin (driven from the system python3 with gi), dumpcap (the
# matrix captures the servers' ports on lo), and the node clients werift and @roamhq/wrtc,
# pinned in toolkit/interop/node/package.json and package-lock.json and installed by `npm ci`
# into rtcgate's per-user cache (toolkit/interop/node_clients.py; the node drivers run them
# from there, in a checkout and in an installed rtcgate alike). The apt packages come from
# the Debian release (firefox-esr follows its ESR branch, GStreamer 1.22 and libnice 0.1.21
# are Debian 12's); the reports record the versions that ran.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INTEROP_APT_PACKAGES=(
    firefox-esr
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
    gstreamer1.0-nice gstreamer1.0-tools
    python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0
    tshark
)
interop_missing() {
    if [[ "${CI:-}" == "true" ]]; then
        say "error: $*" >&2
        exit 1
    fi
    say "warning: $* (rtcgate interop reports that client as not installed; its tests are skipped)" >&2
}
interop_gstreamer_ok() {
    /usr/bin/python3 -c "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstWebRTC', '1.0'); \
from gi.repository import Gst; Gst.init(None); \
assert all(Gst.ElementFactory.find(e) for e in ('webrtcbin', 'nicesrc', 'opusenc', 'opusdec', 'dtlssrtpenc'))" \
        >/dev/null 2>&1
}
interop_node_clients() {  # npm ci into the cache when a pinned package is missing; prints the folder
    PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" python3 -m toolkit.interop.node_clients
}
install_interop_clients() {
    local missing=()
    [[ -x /usr/lib/firefox-esr/firefox-esr ]] || missing+=(firefox-esr)
    interop_gstreamer_ok || missing+=(gstreamer)
    command -v dumpcap >/dev/null 2>&1 || missing+=(tshark)
    if [[ ${#missing[@]} -eq 0 ]]; then
        say "interop apt clients already installed: $(/usr/lib/firefox-esr/firefox-esr --version 2>/dev/null)," \
            "GStreamer $(gst-launch-1.0 --gst-version 2>/dev/null | awk '{print $NF}'), dumpcap"
    elif [[ "$(id -u)" -ne 0 ]]; then
        interop_missing "need root to apt-get install ${missing[*]} (packages: ${INTEROP_APT_PACKAGES[*]})"
    elif ! command -v apt-get >/dev/null 2>&1; then
        interop_missing "apt-get not found; install ${missing[*]} with this system's package manager" \
            "(Debian names: ${INTEROP_APT_PACKAGES[*]})"
    else
        apt_install "${INTEROP_APT_PACKAGES[@]}"
        [[ -x /usr/lib/firefox-esr/firefox-esr ]] || interop_missing "firefox-esr installed but /usr/lib/firefox-esr/firefox-esr is missing"
        interop_gstreamer_ok || interop_missing "GStreamer installed but webrtcbin is not usable from /usr/bin/python3"
    fi

    local node_folder  # @roamhq/wrtc's native binary comes in an optional dependency: require() proves it is there
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        interop_missing "node or npm not found: install Node.js 18 or newer (with npm) for werift and @roamhq/wrtc"
    elif node_folder="$(interop_node_clients)" \
        && (cd "$node_folder" && node -e 'require("@roamhq/wrtc")') >/dev/null 2>&1; then
        say "interop node clients installed as pinned (werift, @roamhq/wrtc) in $node_folder"
    else
        interop_missing "installing the node clients (npm ci into rtcgate's cache) failed"
    fi
}
install_interop_clients
# --- end of interop matrix clients -----------------------------------------------------

# --- Third-party answerers (tests/answerers/test_third_party.py) -----------------------
# werift, pinned in tests/answerers/package.json and package-lock.json, installed with
# `npm ci` when node_modules is missing. aiortc comes with the Python dependencies.
ANSWERERS_DIR="$REPO_ROOT/tests/answerers"
answerers_missing() {
    if [[ "${CI:-}" == "true" ]]; then
        say "error: $*" >&2
        exit 1
    fi
    say "warning: $* (the werift answerer's test will be skipped)" >&2
}
if [[ -d "$ANSWERERS_DIR/node_modules/werift" ]]; then
    say "answerers' npm dependencies already installed in tests/answerers/node_modules"
elif ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    answerers_missing "node or npm not found: install Node.js (with npm) to run the werift answerer"
else
    say "npm ci in tests/answerers"
    (cd "$ANSWERERS_DIR" && npm ci --no-audit --no-fund --loglevel=error) \
        || answerers_missing "npm ci in tests/answerers failed"
fi

# Janus (janus.plugin.echotest behind tests/answerers/janus/whip_shim.py), Debian's build
# (libnice, OpenSSL 3, libsrtp2, usrsctp). The tests write their own configuration and run it
# inside a network namespace they create, so iproute2 (ip netns) is needed as well. Debian's
# package ships a systemd unit; the tests never use it or /etc/janus.
janus_missing() {
    if [[ "${CI:-}" == "true" ]]; then
        say "error: $*" >&2
        exit 1
    fi
    say "warning: $* (the Janus answerer's tests will be skipped)" >&2
}
janus_echotest() {  # the folders tests/answerers/janus/janus_config.py looks in
    compgen -G "/usr/lib/*/janus/plugins/libjanus_echotest.so" \
        || compgen -G "/usr/lib/janus/plugins/libjanus_echotest.so" \
        || compgen -G "/usr/local/lib/janus/plugins/libjanus_echotest.so" \
        || compgen -G "/opt/janus/lib/janus/plugins/libjanus_echotest.so"
}
janus_ok() { command -v janus >/dev/null 2>&1 && janus_echotest >/dev/null; }
if janus_ok && command -v ip >/dev/null 2>&1; then
    say "janus already installed: $(janus --help 2>/dev/null | head -n 1), and ip (iproute2)"
elif [[ "$(id -u)" -ne 0 ]]; then
    janus_missing "need root to apt-get install janus iproute2"
elif ! command -v apt-get >/dev/null 2>&1; then
    janus_missing "apt-get not found; install janus (1.1 or newer) and iproute2 with this system's package manager"
else
    apt_install janus iproute2
    janus_ok || janus_missing "janus installed but its EchoTest plugin (libjanus_echotest.so) is missing"
    command -v ip >/dev/null 2>&1 || janus_missing "iproute2 installed but ip is missing"
fi
# --- end of third-party answerers -----------------------------------------------------

say "done"
