"""The job engine's own upkeep, run by the workers on a schedule (docs/jobs.md)."""

import logging

from django.conf import settings
from procrastinate.contrib.django import app

logger = logging.getLogger(__name__)

# Periodic jobs go to their own queue, served by the `scheduler` process (Procfile), so a backlog of
# emails never delays a tick; every worker defers them, the database keeps one job per tick.
PERIODIC_QUEUE = "periodic"


@app.periodic(cron="* * * * *", periodic_id="jobs_stalled_requeue")
@app.task(name="core.jobs_stalled_requeue", queue=PERIODIC_QUEUE, pass_context=True)
async def jobs_stalled_requeue(context, timestamp: int) -> int:
    """Put back in the queue every job whose worker stopped sending heartbeats (killed, machine lost).

    Such a job is `doing` forever otherwise; requeued, another worker runs it from the start, so every
    task is written to be safe to run again (billing claims, unique email log rows)."""
    manager = context.app.job_manager
    stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=settings.JOBS_STALLED_AFTER_SECONDS)
    for job in stalled:
        logger.warning("requeueing job %s (%s): its worker stopped", job.id, job.task_name)
        await manager.retry_job(job)
    return len(stalled)


@app.periodic(cron="17 * * * *", periodic_id="jobs_finished_delete")
@app.task(name="core.jobs_finished_delete", queue=PERIODIC_QUEUE, pass_context=True)
async def jobs_finished_delete(context, timestamp: int) -> None:
    """Finished jobs stay visible in the admin for JOBS_KEEP_HOURS, then go."""
    await context.app.job_manager.delete_old_jobs(nb_hours=settings.JOBS_KEEP_HOURS, include_failed=False)
