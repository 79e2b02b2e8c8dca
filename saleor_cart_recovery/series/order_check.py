"""The order check right before each send (invariant 3), for one batch in the order it is sent.

A host answering from its own database (the plugin) is asked about each message alone, just before
it goes out. A host whose every question is a network round trip (the App asking Saleor's API: tens
of milliseconds a request, most of the time a send takes) says how long one answer may stand:
:attr:`Shop.order_answer_window`. Then the check asks about the message about to go out **and the
next ones of the batch** in one request, and a later message relies on that answer only while it is
younger than the window, measured from the moment the question was sent (Saleor's answer is about a
moment after that). A message the answer did not cover, or an older answer, asks again.

The question is the cheapest that answers it in full. The batch's orders were read in full while
it was prepared, so for the messages whose lookup that read covered and found no order, the shop
(``find_orders_since``, when the host offers it) needs to look only at what changed since — one
range of dates, whatever the addresses. Otherwise — a lookup the read did not cover (the checkout's
address changed meanwhile), more changes than the host reads at once, an error — the shop's
:meth:`~.shop.Shop.find_orders` is asked about at most :data:`AHEAD` messages, about what fits in
the window.
"""

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime

from ..exceptions import ShopUnavailable
from ..shop import OrderLookup, OrderRef, Shop

logger = logging.getLogger(__name__)

AHEAD = 16


def _now() -> float:
    """The machine's monotonic clock, read directly: freezegun freezes ``time.monotonic`` in tests
    that travel in time, and an answer's age is real time whatever the test's clock says."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class OrderCheck:
    """Answers "is there an order for this lookup?" for the messages of one batch, ``lookups[i]``
    being the ``i``-th message's and ``read_at[i]`` when the shop's full answer about that lookup
    was asked (``None``: never); :meth:`before` is called right before message ``i`` is marked
    handed over. :class:`ShopUnavailable` from the shop propagates (nothing goes out without it);
    any other error of a question about several messages is one of their lookups' (a bad stored
    address, say): the message is then asked about alone, so it costs only its own attempt."""

    def __init__(self, shop: Shop, lookups: Sequence[OrderLookup], read_at: Sequence[datetime | None]):
        self.shop = shop
        self.lookups = lookups
        self.read_at = read_at
        self.window = shop.order_answer_window
        self.since_read = getattr(shop, "find_orders_since", None)
        self.asked_at = -float("inf")
        self.covered: set[OrderLookup] = set()
        self.answer: Mapping[str, OrderRef] = {}

    def before(self, index: int) -> dict[str, OrderRef]:
        """The shop's answer for message ``index``'s lookup (its order by checkout token, if any):
        asked now, or taken from an answer younger than the window that covered that lookup."""
        lookup = self.lookups[index]
        if lookup not in self.covered or _now() - self.asked_at >= self.window:
            if self.window <= 0:
                self._ask([lookup])
            elif not self._ask_since_read(index):
                self._ask_ahead(index)
        found = self.answer.get(lookup.checkout_token)
        return {lookup.checkout_token: found} if found is not None else {}

    def _ask_since_read(self, index: int) -> bool:
        """Message ``index`` and the rest of the batch whose full read covered it, asked about what
        changed since the earliest of those reads; ``False`` when that cannot answer (then it is
        not asked again for this batch: what changed only grows)."""
        if self.since_read is None or self.read_at[index] is None:
            return False
        rest = [
            (lookup, at)
            for lookup, at in zip(self.lookups[index:], self.read_at[index:], strict=True)
            if at is not None
        ]
        covered = [lookup for lookup, _ in rest]
        asked_at = _now()
        try:
            answer = self.since_read(covered, min(at for _, at in rest))
        except ShopUnavailable:
            raise
        except Exception as exc:
            # An order the host cannot read: find_orders narrows it down to its message.
            logger.warning("cart recovery: asking by address, not for what changed since the read: %r", exc)
            answer = None
        if answer is None:
            self.since_read = None
            return False
        self.answer, self.asked_at, self.covered = answer, asked_at, set(covered)
        return True

    def _ask_ahead(self, index: int) -> None:
        lookup, ahead = self.lookups[index], self.lookups[index : index + AHEAD]
        try:
            self._ask(ahead)
        except ShopUnavailable:
            raise
        except Exception:
            if len(ahead) == 1:
                raise
            self._ask([lookup])

    def _ask(self, lookups: Sequence[OrderLookup]) -> None:
        asked_at = _now()
        self.answer = self.shop.find_orders(lookups)
        self.asked_at, self.covered = asked_at, set(lookups)
