"""Run localstripe for the test session on a loopback port, with its store kept in memory.

`localstripe --port N` binds every interface and pickles its whole store to a fixed file in /tmp on each
write, which parallel test sessions on one machine would share; this launcher binds 127.0.0.1 only and
keeps the store in this process. It binds the port the system picks and prints it once listening, so two
test sessions starting at once can never both believe they own one port.

It also teaches localstripe what Stripe's list endpoints do and reconciliation relies on: PaymentIntents
and Refunds listed newest first and filtered by a `created` range (gt, gte, lt, lte); and it adds
`DELETE /_config/payments`, which forgets every PaymentIntent, Charge and Refund (customers and payment
methods stay), so a reconciliation test starts from a peer whose transactions all belong to it.
Usage: python payments/tests/localstripe_server.py
"""

import asyncio

from aiohttp import web
from localstripe import resources
from localstripe.errors import UserError
from localstripe.server import app

_RANGE = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}


def _listed_by_created(cls):
    original = cls._api_list_all.__func__

    def list_all(klass, url, created=None, limit=None, starting_after=None, **kwargs):
        if created is not None and (not isinstance(created, dict) or set(created) - set(_RANGE)):
            raise UserError(400, "Bad request")
        bounds = [(_RANGE[op], int(value)) for op, value in (created or {}).items()]
        listed = original(klass, url, limit=limit, starting_after=starting_after, **kwargs)
        listed._list = sorted((obj for obj in listed._list if all(test(obj.created, bound) for test, bound in bounds)),
                              key=lambda obj: (obj.created, obj.id), reverse=True)
        return listed

    cls._api_list_all = classmethod(list_all)


async def payments_forget(request):
    for key in [k for k in resources.store if k.split(":", 1)[0] in ("payment_intent", "charge", "refund")]:
        del resources.store[key]
    return web.Response()


async def serve() -> None:
    resources.Store.dump_to_disk = lambda self: None
    _listed_by_created(resources.PaymentIntent)
    _listed_by_created(resources.Refund)
    app.router.add_delete("/_config/payments", payments_forget)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve())
