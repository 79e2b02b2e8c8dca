from collections import Counter

from django.core.management.base import BaseCommand

from ...series.delivery import deliver
from ...series.dispatch import dispatch
from ...tasks import enqueue_send


class Command(BaseCommand):
    help = "Run one dispatch cycle now: plan due reminders and send them (in this process by default)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="hand the sends to Celery workers instead of sending them in this process",
        )

    def handle(self, *args, enqueue=False, **options):
        if enqueue:
            self.stdout.write(str(dispatch(send=enqueue_send)))
            return
        # Claims are committed when dispatch() returns, so the sends can run right here.
        result = dispatch(send=lambda message_id: None)
        self.stdout.write(str(result))
        outcomes = Counter(deliver(message_id) for message_id in result.enqueued)
        for status, count in sorted(outcomes.items()):
            self.stdout.write(f"  {status}: {count}")
