"""Who is calling and what they may do: the one place for authentication and authorization.

* :mod:`.keys` — generating, hashing and finding API keys.
* :mod:`.principal` — resolving the caller from the request (``require_key``).
* :mod:`.roles` — the ten membership roles and their order.
* :mod:`.access` — "may this principal do R in org O", applied by every handler.
* :mod:`.ratelimit` — failed-authentication and per-key request limits.
"""
