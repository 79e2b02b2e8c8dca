"""Honest measurement: arm assignment (holdout, subject variant, cadence, automatic winner) in
``assignment``, statistics in ``stats``, the report scan in ``report`` and its outputs
(``report_json``, ``report_table``, ``report_html``).

May import ``settings``, ``models`` and ``templating``; never ``series``, ``email``, ``http`` or Saleor.
"""
