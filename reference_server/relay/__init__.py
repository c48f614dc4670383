"""Several worker processes behind one public UDP port: a relay routes by the ICE ufrag.

protocol: the relay ⇄ worker datagram format. routing: the relay's sans-IO core. shell and
http_api: the relay process. worker: the reference server as a worker behind the relay.
"""
