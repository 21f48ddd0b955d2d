"""Run localstripe for the test session on a loopback port, with its store kept in memory.

`localstripe --port N` binds every interface and pickles its whole store to a fixed file in /tmp on each
write, which parallel test sessions on one machine would share; this launcher binds 127.0.0.1 only and
keeps the store in this process. It binds the port the system picks and prints it once listening, so two
test sessions starting at once can never both believe they own one port.
Usage: python payments/tests/localstripe_server.py
"""

import asyncio

from aiohttp import web
from localstripe import resources
from localstripe.server import app


async def serve() -> None:
    resources.Store.dump_to_disk = lambda self: None
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve())
