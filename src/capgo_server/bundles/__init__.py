"""Bundles (``/bundle`` and the legacy ``/versions``)."""
