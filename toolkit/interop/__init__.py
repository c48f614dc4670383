"""The interop matrix: real WebRTC clients (Chromium, Firefox ESR, GStreamer webrtcbin, aiortc,
werift, @roamhq/wrtc) against a WHIP server, judged cell by cell.

`drivers/` launches each client on the shared scenario (`js/scenario.mjs` for the JavaScript
clients, `gst/` and `clients/` for the Python ones), `wire` reads the sessions back out of a
loopback capture, `judge` turns a client's report into cells, `matrix` runs it all, and
`report` writes interop.{json,md,html}. `rtcgate interop` is the command.
"""
