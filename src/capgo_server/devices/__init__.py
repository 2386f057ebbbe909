"""Devices and their channel overrides (``/device``)."""
