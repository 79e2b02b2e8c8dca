"""The series itself: what is due and whether to send (``decisions``, pure), what the hooks record
(``activity``), planning due steps (``dispatch``), sending one message (``delivery``, its order
check right before each send in ``order_check``), opt-outs
(``suppression``), erasure and retention (``retention``), the beat entries (``beat``) and the
checks that the machinery runs (``health``).

May import ``settings``, ``email``, ``experiments``, ``models`` and the shop port; never ``http``
or Saleor.
"""
