"""The data channels' behaviour until the voice loop replaces it: every message goes back on
the channel it came on, as it came (text stays text, binary stays binary), so a client can
verify the whole path."""
from __future__ import annotations

import logging

from .datachannel import Channel, DataChannelAssociation, DataChannelError

log = logging.getLogger("rtcgate.server")


def attach(session_id: str, association: DataChannelAssociation) -> None:
    """The shell's `on_datachannel` hook: called once per session, before any packet arrives."""

    def echo(channel: Channel, data: str | bytes) -> None:
        try:
            association.send(channel, data)
        except DataChannelError as exc:
            log.info("session %s: no echo on data channel %r: %s", session_id, channel.label, exc)

    association.on_message = echo
