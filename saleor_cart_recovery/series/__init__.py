"""The series itself: what is due and whether to send (``decisions``, pure), what the hooks record
(``activity``), planning due steps (``dispatch``), sending one message (``delivery``), opt-outs
(``suppression``) and the beat entry that runs the dispatcher (``beat``).

May import ``settings``, ``email``, ``experiments``, ``models`` and the shop port; never ``http``
or Saleor.
"""
