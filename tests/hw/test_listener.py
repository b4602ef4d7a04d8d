"""The batch listener: a burst of connects is accepted in one wake-up of the event loop, on asyncio and on
uvloop (whose own server accepts one connection per loop iteration); out of file descriptors it pauses
and resumes; the central system accepts chargers through it. Real sockets on localhost."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, ClassVar

import pytest

from controller.hw.listener import BatchListener, listening_sockets
from controller.runtime import eventloop
from tests.config.ownerrepo import owner, station
from tests.integration.harness import csms, desired_of, run, wait_until

LOOPS = ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(not eventloop.uvloop_available(),
                                                                      reason="uvloop is not installed"))]


class Counting(asyncio.Protocol):
    made: ClassVar[list[Counting]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        Counting.made.append(self)


def on_loop(choice: str, coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    Counting.made = []
    eventloop.run(coro(), choice)


def connect_blocking(port: int, n: int) -> list[socket.socket]:
    """`n` TCP connects the kernel completes into the listen backlog while the server's loop is blocked."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        socks.append(s)
    return socks


async def iterations(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.mark.parametrize("choice", LOOPS)
def test_a_burst_of_connects_is_accepted_in_one_wake_up_of_the_loop(choice: str) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        listener = BatchListener(loop, Counting, listening_sockets("127.0.0.1", 0, 512))
        await listener.start_serving()
        port = listener.sockets[0].getsockname()[1]
        clients = connect_blocking(port, 200)  # the loop is blocked meanwhile: all wait in the backlog
        try:
            await iterations(3)
            assert listener.accepted == 200
            await wait_until(lambda: len(Counting.made) == 200, 5, "every connection made")
            if choice == "uvloop":  # why: uvloop's own server takes one connection per loop iteration
                own = await loop.create_server(Counting, "127.0.0.1", 0, backlog=512)
                more = connect_blocking(own.sockets[0].getsockname()[1], 200)
                before = len(Counting.made)
                await iterations(3)
                assert len(Counting.made) - before < 20
                own.close()
                for s in more:
                    s.close()
        finally:
            for s in clients:
                s.close()
            listener.close()
            await listener.wait_closed()
        assert listener.sockets == () and not listener.is_serving()

    on_loop(choice, scenario)


@pytest.mark.parametrize("choice", LOOPS)
def test_out_of_file_descriptors_accepting_pauses_and_every_connection_is_accepted_later(choice: str) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        listener = BatchListener(loop, Counting, listening_sockets("127.0.0.1", 0, 128))
        await listener.start_serving()
        port = listener.sockets[0].getsockname()[1]
        # the clients live in another process: only the server's descriptors count against its limit
        child = subprocess.Popen(
            [sys.executable, "-c", "import socket, sys, time\n"
             f"s = [socket.create_connection(('127.0.0.1', {port})) for _ in range(30)]\n"
             "print('ok', flush=True); time.sleep(30)"], stdout=subprocess.PIPE)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 4, hard))
            assert child.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 10)
            assert line.startswith(b"ok")
            await wait_until(lambda: listener.pauses >= 1, 5, "accepting paused")
            assert listener.accepted < 30 and not listener.is_serving()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        try:
            await wait_until(lambda: listener.accepted == 30 and len(Counting.made) == 30, 5, "all accepted")
            assert listener.is_serving()
        finally:
            child.kill()
            child.wait()
            for proto in Counting.made:
                proto.transport.close()
            listener.close()
            await listener.wait_closed()

    on_loop(choice, scenario)


def test_listening_on_a_port_in_use_says_which_address() -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=rf"127\.0\.0\.1.*{port}.*in use"):
            listening_sockets("127.0.0.1", port, 16)
    finally:
        taken.close()


def test_the_central_system_accepts_chargers_through_the_batch_listener(tmp_path: Path) -> None:
    desired = desired_of(owner(), station("st-1"), station("st-2"))

    async def scenario() -> None:
        async with csms(tmp_path, desired) as h, h.charger("ST-1") as a, h.charger("ST-2") as b:
            await a.wait_online(5)
            await b.wait_online(5)
            assert h.central.listener is not None and h.central.listener.accepted >= 2

    run(scenario())


@pytest.mark.parametrize("choice", LOOPS)
def test_each_wake_up_accepts_at_most_the_batch_and_the_rest_follow(choice: str) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        listener = BatchListener(loop, Counting, listening_sockets("127.0.0.1", 0, 512), batch=50)
        await listener.start_serving()
        clients = connect_blocking(listener.sockets[0].getsockname()[1], 200)
        try:
            await iterations(3)
            assert 50 <= listener.accepted <= 150 and listener.accepted % 50 == 0
            await wait_until(lambda: len(Counting.made) == 200, 5, "every connection made")
        finally:
            for s in clients:
                s.close()
            listener.close()
            await listener.wait_closed()

    on_loop(choice, scenario)
