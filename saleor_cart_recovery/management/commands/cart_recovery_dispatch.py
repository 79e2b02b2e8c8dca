from collections import Counter

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from ...models import MessageStatus
from ...series.delivery import deliver_batch
from ...series.dispatch import SEND_BATCH, backlog, dispatch
from ...tasks import enqueue_send
from .. import LanguageCommand

# What became of each message sent here, one line per status in the command's language (the keys
# are deliver_batch's statuses; "missing": deleted meanwhile).
OUTCOMES = {
    MessageStatus.SENT: pgettext_lazy("reminder status", "sent"),
    MessageStatus.SKIPPED: pgettext_lazy("reminder status", "skipped"),
    MessageStatus.FAILED: pgettext_lazy("reminder status", "failed"),
    MessageStatus.SCHEDULED: pgettext_lazy("reminder status", "scheduled"),
    MessageStatus.SENDING: pgettext_lazy("reminder status", "sending"),
    "missing": pgettext_lazy("reminder status", "missing"),
}


class Command(LanguageCommand):
    # the help speaks the --help reader\'s language (Django reads it as str)
    help = gettext_lazy(
        "Run one dispatch cycle now: plan due reminders and send them (in this process by default)."
    )  # type: ignore[assignment]

    def add_arguments(self, parser):
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help=gettext_lazy("hand the sends to Celery workers instead of sending them in this process"),
        )

    def handle(self, *args, enqueue: bool = False, **options) -> None:
        if enqueue:
            self.stdout.write(str(dispatch(send=enqueue_send)))
            return
        # The leases are committed when dispatch() returns, so the sends can run right here, in
        # batches as a worker gets them (one SMTP connection per batch and mail server).
        result = dispatch(send=lambda message_ids: None)
        self.stdout.write(str(result))
        outcomes: Counter[str] = Counter()
        for start in range(0, len(result.enqueued), SEND_BATCH):
            outcomes.update(deliver_batch(result.enqueued[start : start + SEND_BATCH]).values())
        for status, count in sorted(outcomes.items()):
            self.stdout.write(f"  {OUTCOMES.get(status, status)}: {count}")
        self.stdout.write(_("backlog after sending: %(backlog)s") % {"backlog": backlog(timezone.now())})
