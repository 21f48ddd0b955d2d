"""Run localstripe for the test session on one loopback port, with its store kept in memory.

`localstripe --port N` binds every interface and pickles its whole store to a fixed file in /tmp on each
write, which parallel test sessions on one machine would share; this launcher binds 127.0.0.1 only and
keeps the store in this process. Usage: python payments/tests/localstripe_server.py PORT
"""

import sys

from aiohttp import web
from localstripe import resources
from localstripe.server import app


def main(port: int) -> None:
    resources.Store.dump_to_disk = lambda self: None
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main(int(sys.argv[1]))
