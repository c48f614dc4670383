"""Why the core dropped a datagram or freed a session: the label values of its metrics.

`DropReason` labels `rtcgate_drops_total{reason=...}`; `CloseReason` labels
`rtcgate_sessions_closed_total{reason=...}` and is the `reason` of a `SessionClosed` event.
Both are StrEnums: a member is its label text wherever it is printed, formatted, hashed,
compared or serialized, so dashboards, alerts and the load tools that parse /metrics see the
same strings as when the reasons were bare strings. A value is a published label: renaming one
breaks whoever counts it (`tests/reference_server/test_reasons.py` holds the list).
"""
from __future__ import annotations

from enum import StrEnum, unique


@unique
class DropReason(StrEnum):
    """Why a datagram was dropped; every drop is counted under exactly one of these."""

    # The demultiplexer: the datagram belongs to no protocol served on the port.
    EMPTY = "empty"
    OVERSIZED = "oversized"
    STUN_SHORT = "stun_short"
    STUN_NO_COOKIE = "stun_no_cookie"
    STUN_BAD_LENGTH = "stun_bad_length"
    DTLS_SHORT = "dtls_short"
    RTP_SHORT = "rtp_short"
    UNKNOWN_FIRST_BYTE = "unknown_first_byte"
    # STUN / ICE-lite.
    STUN_MALFORMED = "stun_malformed"
    STUN_UNSUPPORTED_METHOD = "stun_unsupported_method"
    STUN_UNEXPECTED_RESPONSE = "stun_unexpected_response"
    STUN_NO_FINGERPRINT = "stun_no_fingerprint"
    STUN_BAD_FINGERPRINT = "stun_bad_fingerprint"
    STUN_BAD_REQUEST = "stun_bad_request"
    STUN_UNKNOWN_UFRAG = "stun_unknown_ufrag"
    STUN_BAD_INTEGRITY = "stun_bad_integrity"
    STUN_UNKNOWN_ATTRIBUTE = "stun_unknown_attribute"
    STUN_ROLE_CONFLICT = "stun_role_conflict"
    STUN_ERROR_RATE_LIMITED = "stun_error_rate_limited"
    # DTLS.
    DTLS_UNBOUND = "dtls_unbound"
    DTLS_APPLICATION_DATA = "dtls_application_data"
    # SRTP / SRTCP media.
    RTP_UNBOUND = "rtp_unbound"
    RTP_BEFORE_DTLS = "rtp_before_dtls"
    SRTP_UNPROTECT_FAILED = "srtp_unprotect_failed"
    RTP_MALFORMED = "rtp_malformed"
    RTP_UNEXPECTED_PAYLOAD_TYPE = "rtp_unexpected_payload_type"
    RTCP_UNBOUND = "rtcp_unbound"
    RTCP_BEFORE_DTLS = "rtcp_before_dtls"
    SRTCP_UNPROTECT_FAILED = "srtcp_unprotect_failed"
    RTCP_MALFORMED = "rtcp_malformed"
    # A bug of ours, caught so the datagram path never raises.
    INTERNAL_ERROR = "internal_error"
    # A relay worker's own port (reference_server.shell.relay_worker), counted in the same family.
    RELAY_FOREIGN_SOURCE = "relay_foreign_source"
    RELAY_MALFORMED = "relay_malformed"
    RELAY_WRONG_KIND = "relay_wrong_kind"


@unique
class CloseReason(StrEnum):
    """Why the core freed a session."""

    SIGNALING = "signaling"  # the client's DELETE
    DTLS_FAILED = "dtls_failed"
    DTLS_CLOSED = "dtls_closed"  # close_notify or a fatal error after the handshake
    CONNECT_TIMEOUT = "connect_timeout"  # not DTLS-connected within CoreConfig.connect_timeout
    CONSENT_TIMEOUT = "consent_timeout"  # no authenticated check within CoreConfig.consent_timeout
