"""The asyncio side of the voice loop for a whole server: one model, one driver per session, and
the events channel of each session's data channels wired to the core's voice endpoint."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..core import ServerCore
from ..events import SessionClosed, VoiceAction, VoiceMessage, VoiceStarted
from ..voice.model import Model
from .datachannel import Channel, DataChannelAssociation, DataChannelError
from .datachannel_echo import attach as attach_echo
from .model_driver import ModelDriver

log = logging.getLogger("rtcgate.voice")

EVENTS_LABEL = "oai-events"


class VoiceService:
    def __init__(self, core: ServerCore, model: Model, clock: Callable[[], float], flush: Callable[[], None],
                 events_label: str = EVENTS_LABEL) -> None:
        self.core = core
        self.model = model
        self.clock = clock
        self.flush = flush
        self.events_label = events_label
        self.drivers: dict[str, ModelDriver] = {}
        self.associations: dict[str, DataChannelAssociation] = {}

    def attach_datachannel(self, session_id: str, association: DataChannelAssociation) -> None:
        """The shell's `on_datachannel` hook: the events channel talks to the conversation; any
        other channel keeps the echo behaviour."""
        self.associations[session_id] = association
        attach_echo(session_id, association)
        echo = association.on_message

        def on_open(channel: Channel) -> None:
            if channel.label == self.events_label:
                self.core.voice_channel_opened(session_id, self.clock())
                self.flush()

        def on_message(channel: Channel, data: str | bytes) -> None:
            if channel.label != self.events_label:
                echo(channel, data)
                return
            self.core.voice_event(session_id, data, self.clock())
            self.flush()

        association.on_open = on_open
        association.on_message = on_message

    def handle(self, event) -> bool:
        """Route one core event; False when it is not a voice event."""
        if isinstance(event, VoiceStarted):
            self._start(event.session_id)
        elif isinstance(event, VoiceMessage):
            self._send(event.session_id, event.text)
        elif isinstance(event, VoiceAction):
            driver = self.drivers.get(event.session_id)
            if driver is not None:
                driver.handle(event.action)
        elif isinstance(event, SessionClosed):
            self.associations.pop(event.session_id, None)
            driver = self.drivers.pop(event.session_id, None)
            if driver is not None:
                asyncio.get_running_loop().create_task(driver.aclose())
            return False  # the shell closes the association too
        else:
            return False
        return True

    async def aclose(self) -> None:
        drivers = list(self.drivers.values())
        self.drivers.clear()
        await asyncio.gather(*(driver.aclose() for driver in drivers), return_exceptions=True)

    def _start(self, session_id: str) -> None:
        endpoint = self.core.voice_endpoint(session_id)
        if endpoint is None:
            return

        def on_output() -> None:
            self.core.voice_input(session_id, self.clock())
            self.flush()

        self.drivers[session_id] = ModelDriver(self.model, endpoint.conversation, self.clock, on_output=on_output)

    def _send(self, session_id: str, text: str) -> None:
        association = self.associations.get(session_id)
        if association is None:
            return
        try:
            association.send(self.events_label, text)
        except DataChannelError as exc:
            log.info("session %s: voice event not sent: %s", session_id, exc)
