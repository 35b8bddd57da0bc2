"""What limits and bans count as one network, and as one client (transport/context.py)."""

from __future__ import annotations

import secrets

from chatsupport.client.terminal import ws_url
from chatsupport.transport.context import CLIENT_ID, AddressKeys, network_of


def test_an_ipv6_address_counts_as_its_64() -> None:
    keys = AddressKeys(secrets.token_bytes(32))
    assert keys.of("2001:db8:1:2:aaaa::1") == keys.of("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert keys.of("2001:db8:1:2::1") != keys.of("2001:db8:1:3::1")
    assert network_of("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert network_of("fe80::1%eth0") == "fe80::/64"


def test_an_ipv4_address_counts_alone_also_when_mapped_into_ipv6() -> None:
    keys = AddressKeys(secrets.token_bytes(32))
    assert keys.of("::ffff:192.0.2.7") == keys.of("192.0.2.7")
    assert keys.of("192.0.2.7") != keys.of("192.0.2.8")
    assert network_of("not an address") == "not an address"


def test_keys_are_keyed_hashes_apart_for_networks_and_clients() -> None:
    one, other = AddressKeys(secrets.token_bytes(32)), AddressKeys(secrets.token_bytes(32))
    assert one.of("192.0.2.7") != other.of("192.0.2.7")  # another operator's key
    assert "192.0.2.7" not in one.of("192.0.2.7")
    assert one.client("192.0.2.7") != one.of("192.0.2.7")
    assert len(one.client("tab-4f0c2a9e7d1b5c3a")) == 32


def test_the_terminal_client_sends_a_random_id_that_the_server_accepts() -> None:
    url = ws_url("http://127.0.0.1:8080/ws", True, "Zm9vYmFyYmF6cXV4cXV1eA")
    assert url == "ws://127.0.0.1:8080/ws?client=Zm9vYmFyYmF6cXV4cXV1eA&resume=1"
    assert CLIENT_ID.match("Zm9vYmFyYmF6cXV4cXV1eA")
    assert not CLIENT_ID.match("short") and not CLIENT_ID.match("x" * 65)
    assert not CLIENT_ID.match("with space and more chars")
