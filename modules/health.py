"""/healthz from the modules: each enabled module's check, run in parallel within a time budget.

A check that has not answered when the budget runs out is reported `down` with "no answer within N s"
and left running in its thread: a hung dependency costs the budget, never more.
"""

import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

from django.db import close_old_connections, connections

from modules.definitions import HealthReport, ModuleDefinition
from modules.registry import module_definitions
from modules.selectors import modules_enabled_read


@dataclass(frozen=True)
class HealthSummary:
    status: str  # ok, degraded (some module not ok, every core module up) or down (a core module down)
    http_status: int
    modules: dict


def _check_run(definition: ModuleDefinition, deep: bool) -> HealthReport:
    """One module's check in a worker thread, with a database connection of its own, closed after."""
    close_old_connections()
    try:
        return definition.health_check(deep)
    except Exception as error:  # a check that breaks reports its module down rather than the endpoint
        return HealthReport(status="down", message=f"the health check failed: {type(error).__name__}: {error}"[:300])
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
    futures = {d.code: pool.submit(_check_run, d, deep) for d in checked}
    wait(futures.values(), timeout=budget)
    pool.shutdown(wait=False, cancel_futures=True)
    reports = {}
    for definition in definitions:
        future = futures.get(definition.code)
        if future is None:
            reports[definition.code] = HealthReport(status="ok", message="no health check")
        elif future.done():
            reports[definition.code] = future.result()
        else:
            reports[definition.code] = HealthReport(status="down", message=f"no answer within {budget:.1f} s")
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
    done, _ = wait([future], timeout=budget / 2)
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
