"""The Saleor adapter: the only code besides ``plugin.py`` that imports Saleor."""
