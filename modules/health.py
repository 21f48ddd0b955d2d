"""/healthz from the modules: each enabled module's check, run in parallel within a time budget.

A check that has not answered when the budget runs out is reported `down` with "no answer within N s"
and left running in its thread: a hung dependency costs the budget, never more.
"""

import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

from django.db import close_old_connections, connections
from django.utils import translation
from django.utils.translation import gettext as _

from modules.definitions import HealthReport, ModuleDefinition
from modules.registry import module_definitions
from modules.selectors import modules_enabled_read


@dataclass(frozen=True)
class HealthSummary:
    status: str  # ok, degraded (some module not ok, every core module up) or down (a core module down)
    http_status: int
    modules: dict


def _check_run(definition: ModuleDefinition, deep: bool, language: str | None) -> HealthReport:
    """One module's check in a worker thread, with a database connection of its own, closed after, and the
    request's language (a thread starts in LANGUAGE_CODE, so its messages would not follow the reader)."""
    close_old_connections()
    try:
        with translation.override(language):
            return definition.health_check(deep)
    except Exception as error:  # a check that breaks reports its module down rather than the endpoint
        with translation.override(language):
            message = _("the health check failed: %(error)s") % {"error": f"{type(error).__name__}: {error}"}
        return HealthReport(status="down", message=message[:300])
    finally:
        connections.close_all()


def _enabled_lookup() -> frozenset[str]:
    close_old_connections()
    try:
        return modules_enabled_read()
    finally:
        connections.close_all()


def _reports(definitions: list[ModuleDefinition], *, deep: bool, budget: float) -> dict[str, HealthReport]:
    checked = [d for d in definitions if d.health_check is not None]
    pool = ThreadPoolExecutor(max_workers=max(1, len(checked)), thread_name_prefix="healthz")
    language = translation.get_language()
    futures = {d.code: pool.submit(_check_run, d, deep, language) for d in checked}
    wait(futures.values(), timeout=budget)
    pool.shutdown(wait=False, cancel_futures=True)
    reports = {}
    for definition in definitions:
        future = futures.get(definition.code)
        if future is None:
            reports[definition.code] = HealthReport(status="ok", message=_("no health check"))
        elif future.done():
            reports[definition.code] = future.result()
        else:
            message = _("no answer within %(seconds)s s") % {"seconds": f"{budget:.1f}"}
            reports[definition.code] = HealthReport(status="down", message=message)
    return reports


def modules_health(*, deep: bool, budget: float) -> HealthSummary:
    """Every enabled module's health, named; 503 only when a core module is down. Which modules are
    enabled is itself read within the budget: when the database does not answer, every module is
    checked and the platform module says why."""
    started = time.monotonic()
    lookup = ThreadPoolExecutor(max_workers=1, thread_name_prefix="healthz")
    future = lookup.submit(_enabled_lookup)
    # One small query: when it takes half the budget the database is the problem, and the checks
    # (the platform module's among them) get the other half to say so.
    done, _pending = wait([future], timeout=budget / 2)
    lookup.shutdown(wait=False, cancel_futures=True)
    enabled = future.result() if done and future.exception() is None else None
    definitions = [d for code, d in sorted(module_definitions().items()) if enabled is None or code in enabled]
    remaining = max(0.0, budget - (time.monotonic() - started))
    reports = _reports(definitions, deep=deep, budget=remaining)
    modules = {code: {"status": r.status, "core": module_definitions()[code].is_core, "message": r.message,
                      **({"details": r.details} if r.details else {})} for code, r in reports.items()}
    core_down = any(m["status"] == "down" and m["core"] for m in modules.values())
    status = "down" if core_down else "ok" if all(m["status"] == "ok" for m in modules.values()) else "degraded"
    return HealthSummary(status=status, http_status=503 if core_down else 200, modules=modules)
