"""Channels (``/channel``)."""
