"""Apps (``/app``)."""
