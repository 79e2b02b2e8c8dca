"""The developer GraphQL API: ``types``, ``queries``, ``mutations`` and the endpoint in ``view``."""
