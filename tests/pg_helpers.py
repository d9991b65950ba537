"""A real PostgreSQL for the tests: each test gets its own database (random name), dropped at the end.

The server is $CODEARENA_TEST_POSTGRES (default: postgresql://postgres@127.0.0.1:5432/postgres, trust auth,
as on the project's machines). Absent server or driver: the test skips with the reason, and fails when
CODEARENA_REQUIRE_POSTGRES=1 (CI sets it)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

ADMIN_URL = os.environ.get("CODEARENA_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _unavailable() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"no PostgreSQL at {ADMIN_URL} ({' '.join(str(exc).split())[:200]})"


def require_postgres() -> str:
    """The admin URL, or skip (fail under CODEARENA_REQUIRE_POSTGRES=1) when PostgreSQL cannot be used."""
    why = _unavailable()
    if why is not None:
        if os.environ.get("CODEARENA_REQUIRE_POSTGRES") == "1":
            pytest.fail(why + " and CODEARENA_REQUIRE_POSTGRES=1")
        pytest.skip(why)
    return ADMIN_URL


def database_url(name: str, admin: str = ADMIN_URL) -> str:
    base, _, _ = admin.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def fresh_database(prefix: str = "codearena_test") -> Iterator[str]:
    """The URL of a new, empty database; dropped afterwards (its open connections too)."""
    import psycopg

    admin = require_postgres()
    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name, admin)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sql(url: str, statement: str, params: tuple = ()) -> list[tuple]:
    """Run one statement on the database at ``url`` (autocommit); its rows, if any."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


class TcpForwarder:
    """A TCP forwarder on 127.0.0.1 we can cut: what stands in for a PostgreSQL outage without restarting
    the shared server. ``stop()`` closes the listener and every forwarded connection (clients see the
    connection drop, new ones are refused); ``start()`` listens again on the same port."""

    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5432) -> None:
        import asyncio
        import socket
        import threading

        self.target = (target_host, target_port)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-forwarder", daemon=True)
        self._thread.start()
        self._server = None
        self._writers: set = set()

    def url(self, database_url: str) -> str:
        """``database_url`` with its host:port replaced by this forwarder's."""
        import re

        return re.sub(r"@[^/]*/", f"@127.0.0.1:{self.port}/", database_url, count=1)

    def _run(self, coro):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def start(self) -> None:
        import asyncio

        async def pipe(reader, writer) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        async def handle(reader, writer) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                writer.close()
                return
            self._writers |= {writer, up_writer}
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
            self._writers -= {writer, up_writer}

        async def listen() -> None:
            self._server = await asyncio.start_server(handle, "127.0.0.1", self.port, reuse_address=True)

        self._run(listen())

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for w in list(self._writers):
                w.transport.abort()  # a dropped connection, as a crashed server gives
            self._writers.clear()

        self._run(close())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
