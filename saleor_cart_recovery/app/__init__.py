"""The App host: Cart Recovery as a Saleor App (a web service Saleor calls with signed webhooks and
that calls Saleor's GraphQL API with an app token), beside the plugin host (:mod:`..saleor_host`).
It implements the same shop port over HTTP and imports no Saleor code."""
