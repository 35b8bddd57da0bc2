"""Optional TLS (`--tls-cert`/`--tls-key`) on both the HTTP/WebSocket port and the text port."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
from pathlib import Path

from websockets.asyncio.client import connect

from ..certs import make_certificate
from ..helpers import WAIT, ServerProcess, TextClient, require, start_server


async def test_tls_on_both_interfaces(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    server = await start_server(tls_cert=cert, tls_key=key)
    client_ctx = ssl.create_default_context(cafile=cert)
    try:
        assert server.urls["http"].startswith("https://")
        reader, writer = await asyncio.open_connection("127.0.0.1", server.tcp_port, ssl=client_ctx)
        greeting = (await asyncio.wait_for(reader.readline(), 5)).decode()
        assert greeting.startswith("*** Welcome")
        async with connect(f"wss://127.0.0.1:{server.http_port}/ws", ssl=client_ctx) as ws:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert welcome["type"] == "welcome"
            writer.write(b"over tls\n")
            await writer.drain()
            for _ in range(10):
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if frame["type"] == "message":
                    assert frame["text"] == "over tls"
                    break
            else:
                raise AssertionError("message over TLS not delivered")
        writer.close()
    finally:
        await server.stop()


async def tls_text_client(port: int, cert: str) -> TextClient:
    context = ssl.create_default_context(cafile=cert)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    return TextClient(reader, writer)


async def test_a_plain_client_of_the_tls_text_port_is_told_in_one_line(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    server = await start_server(tls_cert=cert, tls_key=key)
    try:
        # One who types first (nc, then a line), and one who waits to be greeted.
        typist = await TextClient.open(server.tcp_port, greet=False)
        await typist.send("hello?")
        waiter = await TextClient.open(server.tcp_port, greet=False)
        for plain in (typist, waiter):
            line = await plain.line()
            assert line == (
                "!! This port speaks TLS, not plain text; use openssl s_client -quiet -connect "
                f"127.0.0.1:{server.tcp_port} (or another TLS client), or the web page."
            )
            assert await plain.closed()
        assert not server.peers  # nobody was let in, named or counted
        # The port still serves TLS, and a line sent right after the handshake arrives.
        listener = await tls_text_client(server.tcp_port, cert)
        await listener.line()
        eager = await tls_text_client(server.tcp_port, cert)
        await eager.send("said at once")
        assert (await listener.expect(lambda s: s.startswith("<"))).endswith("> said at once")
    finally:
        await server.stop()


async def test_the_suggested_openssl_command_works(tmp_path: Path) -> None:
    openssl = require("openssl")
    cert, key = make_certificate(tmp_path)
    server = await start_server(tls_cert=cert, tls_key=key)
    proc = await asyncio.create_subprocess_exec(
        openssl, "s_client", "-quiet", "-connect", f"127.0.0.1:{server.tcp_port}",
        "-CAfile", cert, "-verify_return_error",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    try:
        other = await tls_text_client(server.tcp_port, cert)
        await other.line()
        greeting = (await asyncio.wait_for(proc.stdout.readline(), WAIT)).decode()
        assert greeting.startswith("*** Welcome"), greeting
        name = greeting.split("You are ", 1)[1].split(",", 1)[0]
        proc.stdin.write(b"hello over openssl\n")
        await proc.stdin.drain()
        assert await other.expect(lambda s: "openssl" in s) == f"<{name}> hello over openssl"
    finally:
        if proc.returncode is None:
            proc.kill()  # by its PID: the process this test started
        await proc.wait()
        await server.stop()


async def test_a_real_serve_process_lets_a_tls_client_in(tmp_path: Path) -> None:
    """`chatsupport serve` runs on uvloop, whose transports are not asyncio's by class and
    start reading only after `connection_made`: the door must neither refuse them nor let
    the ClientHello be read before it looks."""
    cert, key = make_certificate(tmp_path)
    server = ServerProcess("--tcp-port", "0", "--http-port", "0", "--tls-cert", cert,
                           "--tls-key", key).start()  # fmt: skip
    try:
        client = await tls_text_client(server.port("tcps"), cert)
        assert (await client.line()).startswith("*** Welcome")
        await client.close()
    finally:
        _, log = server.stop()
    assert "Traceback" not in log


async def test_a_tls_client_whose_hello_waits_before_the_server_accepts_gets_in(
    tmp_path: Path,
) -> None:
    """A busy server accepts a connection whose ClientHello is already waiting; uvloop reads
    it before the door can pause reading. The door must hand those bytes to the handshake
    (it used to lose them, and the client's handshake was reset). The server process is
    stopped while the client connects and speaks, so the bytes are surely there first."""
    cert, key = make_certificate(tmp_path)
    server = ServerProcess("--tcp-port", "0", "--http-port", "0", "--tls-cert", cert,
                           "--tls-key", key).start()  # fmt: skip
    try:
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            connecting = asyncio.ensure_future(tls_text_client(server.port("tcps"), cert))
            await asyncio.sleep(0.5)  # connected by the kernel, the ClientHello sent
            assert not connecting.done()
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        client = await asyncio.wait_for(connecting, WAIT)
        assert (await client.line()).startswith("*** Welcome")
        await client.close()
    finally:
        _, log = server.stop()
    assert "Traceback" not in log
