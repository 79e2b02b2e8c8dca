"""The order check right before each send (invariant 3), for one batch in the order it is sent.

A host answering from its own database (the plugin) is asked about each message alone, just before
it goes out. A host whose every question is a network round trip (the App asking Saleor's API: tens
of milliseconds a request, most of the time a send takes) says how long one answer may stand:
:attr:`Shop.order_answer_window`. Then the check asks about the message about to go out **and the
next ones of the batch** in one request, and a later message relies on that answer only while it is
younger than the window, measured from the moment the question was sent (Saleor's answer is about a
moment after that). A message the answer did not cover, or an older answer, asks again: at most
:data:`AHEAD` messages are asked about at once, about what fits in the window.
"""

import time
from collections.abc import Mapping, Sequence

from ..exceptions import ShopUnavailable
from ..shop import OrderLookup, OrderRef, Shop

AHEAD = 16


def _now() -> float:
    """The machine's monotonic clock, read directly: freezegun freezes ``time.monotonic`` in tests
    that travel in time, and an answer's age is real time whatever the test's clock says."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class OrderCheck:
    """Answers "is there an order for this lookup?" for the messages of one batch, ``lookups[i]``
    being the ``i``-th message's; :meth:`before` is called right before message ``i`` is marked
    handed over. :class:`ShopUnavailable` from the shop propagates (nothing goes out without it);
    any other error of a question about several messages is one of their lookups' (a bad stored
    address, say): the message is then asked about alone, so it costs only its own attempt."""

    def __init__(self, shop: Shop, lookups: Sequence[OrderLookup]):
        self.shop = shop
        self.lookups = lookups
        self.window = getattr(shop, "order_answer_window", 0.0)  # a host written before it: per message
        self.asked_at = -float("inf")
        self.covered: set[OrderLookup] = set()
        self.answer: Mapping[str, OrderRef] = {}

    def before(self, index: int) -> dict[str, OrderRef]:
        """The shop's answer for message ``index``'s lookup (its order by checkout token, if any):
        asked now, or taken from an answer younger than the window that covered that lookup."""
        lookup = self.lookups[index]
        if lookup not in self.covered or _now() - self.asked_at >= self.window:
            ahead = self.lookups[index : index + AHEAD] if self.window > 0 else [lookup]
            try:
                self._ask(ahead)
            except ShopUnavailable:
                raise
            except Exception:
                if len(ahead) == 1:
                    raise
                self._ask([lookup])
        found = self.answer.get(lookup.checkout_token)
        return {lookup.checkout_token: found} if found is not None else {}

    def _ask(self, lookups: Sequence[OrderLookup]) -> None:
        asked_at = _now()
        self.answer = self.shop.find_orders(lookups)
        self.asked_at, self.covered = asked_at, set(lookups)
