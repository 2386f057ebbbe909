"""API keys of the calling user (``/apikey``)."""
