"""Is the machinery running? What the Dashboard's settings page checks and flags: the beat entries
(the dispatcher only runs if beat has it), a worker that ran the dispatcher lately, and whether the
channel's mail server answers.

Each check is cheap and bounded (a keyed read, or one SMTP connection with the send path's
timeout) and returns plain values; none raises for what it finds.
"""

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..email.transport import close_connection, open_connection
from ..exceptions import SendFailed
from ..models import WorkerHeartbeat
from ..settings.formats import SmtpConfig
from .beat import DISPATCH, SCHEDULE, periodic_task_model

# The dispatcher runs every minute; three missed runs mean no worker (or no beat) is running it.
WORKER_SILENCE = timedelta(minutes=3)


@dataclass(frozen=True)
class Health:
    missing_beat_entries: tuple[str, ...]  # task names beat does not run (absent or disabled)
    worker_seen_at: datetime | None  # the dispatcher's last run by a worker

    def worker_silent(self, now: datetime) -> bool:
        return self.worker_seen_at is None or now - self.worker_seen_at > WORKER_SILENCE


def record_heartbeat(task: str, now: datetime) -> None:
    """One upsert statement per periodic run (two workers' first runs cannot collide): the task ran
    on this host at ``now``."""
    WorkerHeartbeat.objects.bulk_create(
        [WorkerHeartbeat(task=task, hostname=socket.gethostname()[:255], at=now)],
        update_conflicts=True,
        unique_fields=["task"],
        update_fields=["hostname", "at"],
    )


def health() -> Health:
    model = periodic_task_model()
    names = [entry.task for entry in SCHEDULE]
    enabled = (
        set(model.objects.filter(name__in=names, enabled=True).values_list("name", flat=True))
        if model is not None
        else set()
    )
    seen = WorkerHeartbeat.objects.filter(task=DISPATCH.task).values_list("at", flat=True).first()
    return Health(tuple(name for name in names if name not in enabled), seen)


def check_mail_server(smtp: SmtpConfig | None) -> str | None:
    """Connect (and log in) to the channel's mail server the way a send does, then hang up; the
    reason it failed, or ``None`` when it answered. Sends nothing."""
    try:
        connection = open_connection(smtp)
    except SendFailed as exc:
        return str(exc)
    close_connection(connection)
    return None
