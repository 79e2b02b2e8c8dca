"""The order check right before each send (invariant 3), for one batch in the order it is sent.

A host answering from its own database (the plugin) is asked about each message alone, just before
it goes out. A host whose every question is a network round trip (the App asking Saleor's API: tens
of milliseconds a request, most of the time a send takes) says how long one answer may stand:
:attr:`Shop.order_answer_window`. Then the check asks about the message about to go out **and the
next ones of the batch** (at most :data:`AHEAD`) in one request, and a later message relies on that
answer only while it is younger than the window, measured from the moment the question was sent
(Saleor's answer is about a moment after that); a message the answer did not cover, or an older
answer, asks again.

Such a host may also give an asker that runs on another thread (:meth:`Shop.ahead_asker`): once the
answer in use is half its window old, the next messages are asked about in the background while
this thread sends, so the next answer is there when the current one runs out, and no send waits
for Saleor in the common case. Every answer is used under the same rule, whichever thread asked.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ..exceptions import ShopUnavailable
from ..shop import OrderLookup, OrderRef, Shop

AHEAD = 16


def _now() -> float:
    """The machine's monotonic clock, read directly: freezegun freezes ``time.monotonic`` in tests
    that travel in time, and an answer's age is real time whatever the test's clock says."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


@dataclass(frozen=True)
class _Answer:
    asked_at: float
    covered: frozenset[OrderLookup]
    orders: Mapping[str, OrderRef]


def _ask(ask: Callable[[Sequence[OrderLookup]], Mapping[str, OrderRef]], lookups: Sequence[OrderLookup]):
    asked_at = _now()
    return _Answer(asked_at, frozenset(lookups), ask(lookups))


class OrderCheck:
    """Answers "is there an order for this lookup?" for the messages of one batch, ``lookups[i]``
    being the ``i``-th message's; :meth:`before` is called right before message ``i`` is marked
    handed over, :meth:`close` once the batch is done. :class:`ShopUnavailable` from the shop
    propagates (nothing goes out without it); any other error of a question about several messages
    is one of their lookups' (a bad stored address, say): the message is then asked about alone,
    so it costs only its own attempt."""

    def __init__(self, shop: Shop, lookups: Sequence[OrderLookup]):
        self.shop = shop
        self.lookups = lookups
        self.window = getattr(shop, "order_answer_window", 0.0)  # a host written before it: per message
        self.current: _Answer | None = None
        self.pending: Future[_Answer] | None = None
        # made when first needed: the thread, and the asker (which may read the database)
        self._asks_ahead = self.window > 0 and len(lookups) > 1 and hasattr(shop, "ahead_asker")
        self._asker: Callable[[Sequence[OrderLookup]], Mapping[str, OrderRef]] | None = None
        self._pool: ThreadPoolExecutor | None = None

    def before(self, index: int) -> dict[str, OrderRef]:
        """The shop's answer for message ``index``'s lookup (its order by checkout token, if any):
        asked now, or taken from an answer younger than the window that covered that lookup."""
        lookup = self.lookups[index]
        answer = self._fresh(self.current, lookup)
        if answer is None and self.pending is not None:
            answer = self._fresh(self._settle(), lookup)
        if answer is None:
            answer = self.current = self._ask_here(index)
        self._ask_ahead(index + 1)
        found = answer.orders.get(lookup.checkout_token)
        return {lookup.checkout_token: found} if found is not None else {}

    def close(self) -> None:
        """An answer still on its way is not waited for: its thread finishes alone, on its own
        connection to the shop."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _fresh(self, answer: _Answer | None, lookup: OrderLookup) -> _Answer | None:
        if answer is not None and lookup in answer.covered and _now() - answer.asked_at < self.window:
            return answer
        return None

    def _ahead(self, index: int) -> Sequence[OrderLookup]:
        return self.lookups[index : index + AHEAD] if self.window > 0 else self.lookups[index : index + 1]

    def _ask_here(self, index: int) -> _Answer:
        ahead = self._ahead(index)
        try:
            return _ask(self.shop.find_orders, ahead)
        except ShopUnavailable:
            raise
        except Exception:
            if len(ahead) == 1:
                raise
            return _ask(self.shop.find_orders, ahead[:1])

    def _settle(self) -> _Answer | None:
        """The background answer, once it is there; ``None`` when it failed otherwise than by the
        shop being unavailable (the message is then asked about here, where a refused token or a
        bad lookup is dealt with)."""
        pending, self.pending = self.pending, None
        assert pending is not None
        try:
            self.current = pending.result()
        except ShopUnavailable:
            raise
        except Exception:
            return None
        return self.current

    def _ask_ahead(self, index: int) -> None:
        """In the background, about the messages from ``index`` on, once the answer in use is half
        its window old or does not cover the next one (so the next answer arrives about when the
        current one runs out)."""
        if not self._asks_ahead or self.pending is not None or index >= len(self.lookups):
            return
        current = self.current
        if (
            current is not None
            and self.lookups[index] in current.covered
            and _now() - current.asked_at < self.window / 2
        ):
            return
        if self._asker is None:
            self._asker = self.shop.ahead_asker()  # type: ignore[attr-defined]
            if self._asker is None:
                self._asks_ahead = False
                return
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="cart-recovery-order-check")
        assert self._pool is not None
        self.pending = self._pool.submit(_ask, self._asker, self._ahead(index))
