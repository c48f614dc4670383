"""Several worker processes behind one public UDP port: a relay routes by the ICE ufrag.

protocol: the relay ⇄ worker datagram format. routing: the relay's sans-IO core. The relay
process, the worker and their HTTP side are the shell's (`reference_server/shell/relay*.py`).
"""
