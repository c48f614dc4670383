"""The Janus configuration the conformance tests run: written by the project, never /etc/janus.

`write_config(folder, http_ip=..., http_port=...)` fills `folder` with the files `janus -F
folder` reads and returns the path of janus.jcfg. What it sets, and why:

- ICE-lite (`nat.ice_lite = true`): the gate measures single-port ICE-lite servers; everything
  else in `nat` and `media` is left to Janus's defaults (no STUN or TURN server, no NAT
  mapping, no port range, IPv6 off).
- One plugin, EchoTest, and one transport, plain HTTP bound to `http_ip` only (no HTTPS, no
  admin API). The plugin and transport folders are folders of this config holding a symlink
  to that one library each, so no other plugin, transport, event handler or logger of the
  system's install can load, whatever the install holds.
- Data channels need nothing: Debian's Janus is built with usrsctp and EchoTest echoes them.
- Logging: Janus's default level, timestamps on and colours off because it goes to a file.

`find_janus_libraries()` says where the system's Janus keeps its plugins and transports; a
missing install is a `JanusNotInstalled` with a one-line reason.
"""

from __future__ import annotations

import glob
from pathlib import Path

PLUGIN = "libjanus_echotest.so"
TRANSPORT = "libjanus_http.so"
LIBRARY_GLOBS = ("/usr/lib/*/janus", "/usr/lib/janus", "/usr/local/lib/janus", "/opt/janus/lib/janus")
"""Where Debian (multiarch), a plain `make install` and the upstream /opt prefix put the libraries."""


class JanusNotInstalled(RuntimeError):
    """The Janus install lacks what the tests need."""


def find_janus_libraries() -> Path:
    """The system folder holding Janus's plugins/ and transports/ with EchoTest and HTTP."""
    for pattern in LIBRARY_GLOBS:
        for folder in sorted(glob.glob(pattern)):
            root = Path(folder)
            if (root / "plugins" / PLUGIN).is_file() and (root / "transports" / TRANSPORT).is_file():
                return root
    raise JanusNotInstalled(f"no Janus {PLUGIN} and {TRANSPORT} under {', '.join(LIBRARY_GLOBS)}")


def write_config(folder: Path, *, http_ip: str, http_port: int, libraries: Path | None = None) -> Path:
    """Write the configuration into `folder` (created if needed); return janus.jcfg's path."""
    libraries = libraries or find_janus_libraries()
    folder.mkdir(parents=True, exist_ok=True)
    loaded = {"plugins": libraries / "plugins" / PLUGIN, "transports": libraries / "transports" / TRANSPORT}
    for kind in ("plugins", "transports", "events", "loggers"):
        (folder / kind).mkdir(exist_ok=True)
        if kind in loaded:
            link = folder / kind / loaded[kind].name
            if not link.is_symlink():
                link.symlink_to(loaded[kind])
    main = folder / "janus.jcfg"
    main.write_text(f"""\
general: {{
\tconfigs_folder = "{folder}"
\tplugins_folder = "{folder / 'plugins'}"
\ttransports_folder = "{folder / 'transports'}"
\tevents_folder = "{folder / 'events'}"
\tloggers_folder = "{folder / 'loggers'}"
\tdebug_timestamps = true
\tdebug_colors = false
}}
certificates: {{
}}
media: {{
}}
nat: {{
\tice_lite = true
}}
plugins: {{
}}
transports: {{
}}
loggers: {{
}}
events: {{
\tbroadcast = false
}}
""")
    (folder / "janus.plugin.echotest.jcfg").write_text("general: {\n\tevents = false\n}\n")
    (folder / "janus.transport.http.jcfg").write_text(f"""\
general: {{
\tevents = false
\tjson = "compact"
\tbase_path = "/janus"
\thttp = true
\tport = {http_port}
\tip = "{http_ip}"
\thttps = false
}}
admin: {{
\tadmin_http = false
\tadmin_https = false
}}
""")
    return main
