"""Fleet: many simulated chargers in one process, connected with bounded concurrency.

Role: build N ``SimulatedCharger`` objects (identities from a prefix or a list, a password per station)
and start/stop them together without a thundering herd: at most ``connect_concurrency`` connect and
boot at the same time. Boundary: orchestration only; each charger behaves on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from controller.hw.sim.charger import SimulatedCharger

Passwords = Mapping[str, str] | Callable[[str], str | None] | str | None


def identities_for(count: int, prefix: str = "SIM-") -> list[str]:
    return [f"{prefix}{index:04d}" for index in range(1, count + 1)]


def password_for(passwords: Passwords, identity: str) -> str | None:
    if passwords is None or isinstance(passwords, str):
        return passwords
    if callable(passwords):
        return passwords(identity)
    return passwords.get(identity, passwords.get("*"))


class Fleet:
    def __init__(self, chargers: Sequence[SimulatedCharger], *, connect_concurrency: int = 50) -> None:
        self.chargers = list(chargers)
        self.connect_concurrency = max(1, connect_concurrency)
        self._by_identity = {charger.identity: charger for charger in self.chargers}

    @classmethod
    def build(
        cls,
        url: str,
        count: int = 0,
        *,
        prefix: str = "SIM-",
        identities: Sequence[str] | None = None,
        passwords: Passwords = None,
        connect_concurrency: int = 50,
        **charger_options: Any,
    ) -> Fleet:
        names = list(identities) if identities else identities_for(count, prefix)
        chargers = [
            SimulatedCharger(name, url, password_for(passwords, name), **charger_options) for name in names
        ]
        return cls(chargers, connect_concurrency=connect_concurrency)

    def __len__(self) -> int:
        return len(self.chargers)

    def __iter__(self) -> Iterator[SimulatedCharger]:
        return iter(self.chargers)

    def __getitem__(self, identity: str) -> SimulatedCharger:
        return self._by_identity[identity]

    @property
    def online_count(self) -> int:
        return sum(1 for charger in self.chargers if charger.online)

    async def start(self, *, wait_online: bool = True, timeout: float = 30.0) -> int:
        """Start every charger, ``connect_concurrency`` at a time; return how many came online.

        A charger that is not online within ``timeout`` keeps trying in the background.
        """
        gate = asyncio.Semaphore(self.connect_concurrency)

        async def one(charger: SimulatedCharger) -> None:
            async with gate:
                await charger.start()
                if wait_online:
                    with contextlib.suppress(TimeoutError):
                        await charger.wait_online(timeout)

        await asyncio.gather(*(one(charger) for charger in self.chargers))
        return self.online_count

    async def stop(self) -> None:
        await asyncio.gather(*(charger.stop() for charger in self.chargers))

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
