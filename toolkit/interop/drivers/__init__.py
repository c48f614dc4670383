"""One driver per real client, in the matrix's order: key → driver class."""
from __future__ import annotations

from toolkit.interop.drivers.aiortc_driver import AiortcDriver
from toolkit.interop.drivers.chromium import ChromiumDriver
from toolkit.interop.drivers.firefox import FirefoxDriver
from toolkit.interop.drivers.gstreamer import GStreamerDriver
from toolkit.interop.drivers.werift import WeriftDriver
from toolkit.interop.drivers.wrtc import WrtcDriver

DRIVERS = {driver.name: driver for driver in (ChromiumDriver, FirefoxDriver, GStreamerDriver, AiortcDriver,
                                              WeriftDriver, WrtcDriver)}
