from django.core.management.base import BaseCommand

from ...delivery import deliver
from ...dispatch import dispatch, enqueue_with_celery


class Command(BaseCommand):
    help = "Run one dispatch cycle now: plan due reminders and send them (in this process by default)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--enqueue", action="store_true",
            help="hand the sends to Celery workers instead of sending them in this process",
        )

    def handle(self, *args, enqueue=False, **options):
        outcomes: dict[str, int] = {}

        def send_here(message_id: int) -> None:
            status = deliver(message_id)
            outcomes[status] = outcomes.get(status, 0) + 1

        result = dispatch(send=enqueue_with_celery if enqueue else send_here)
        self.stdout.write(str(result))
        for status, count in sorted(outcomes.items()):
            self.stdout.write(f"  {status}: {count}")
