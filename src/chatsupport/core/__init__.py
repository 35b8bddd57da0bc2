"""The I/O-free core: rooms, sessions, commands, limits and order.

Nothing under this package may import a transport, a broker implementation or any
network/I/O library; tests/core/test_layering.py enforces it.
"""
