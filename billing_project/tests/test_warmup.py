"""Loading the application does the work a process's first request would otherwise do: the URL resolvers
are populated and the module doors worked out before the first request, which then builds neither."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

# Run in a fresh interpreter: this test process has long since populated its resolvers.
FIRST_REQUESTS = """
import json, sys
from unittest import mock
import {entry_point}  # noqa: F401  (loading it is what is tested)
from django.test import Client
from django.urls import URLResolver
import modules.middleware

populated, doors_built = [], []
populate, build = URLResolver._populate, modules.middleware._door_map_build
with mock.patch.object(URLResolver, "_populate", lambda self: populated.append(1) or populate(self)), \\
        mock.patch.object(modules.middleware, "_door_map_build", lambda: doors_built.append(1) or build()):
    statuses = [Client().get(path).status_code for path in ("/admin/login/", "/no-such-page/")]
json.dump({{"populated": len(populated), "doors_built": len(doors_built), "statuses": statuses}}, sys.stdout)
"""


@pytest.mark.parametrize("entry_point", ["billing_project.wsgi", "billing_project.asgi"])
def test_the_first_requests_after_loading_build_no_resolver_and_no_door_map(entry_point):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # these requests read no table
    result = subprocess.run([sys.executable, "-c", FIRST_REQUESTS.format(entry_point=entry_point)], cwd=ROOT,
                            env={**env, "DJANGO_SETTINGS_MODULE": "billing_project.settings"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["statuses"] == [200, 404]
    assert outcome["populated"] == 0
    assert outcome["doors_built"] == 0
