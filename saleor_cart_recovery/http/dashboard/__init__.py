"""The plugin's pages inside the Saleor Dashboard (an App's extensions load them in an iframe).

``endpoint`` serves the page shell and its assets to anyone (they hold no data) and every
fragment only to the staff user named by the Dashboard's token (AppBridge handshake, sent back by
the page as a Bearer header: never in a URL, no cookie); ``views`` builds each page's plain data
(overview, carts, a cart's story, preview and test send, settings at a glance); ``timeline``
tells a cart's story (numbers and times through the root ``formatting``, in the staff user's locale).
May import every core package below ``http``; never Saleor (the token is checked by the shop port).
"""
