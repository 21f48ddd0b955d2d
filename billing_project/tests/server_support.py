"""What tests that start real servers or commands in subprocesses share: the test database's URL for
their environment, and whether a loopback port already answers."""

import socket

from django.db import connection


def database_url_of_the_tests() -> str:
    """DATABASE_URL of the database this test runs on, for a subprocess to use the same one."""
    db = connection.settings_dict
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def port_listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
