"""capgo-server: a self-hostable, Capgo-compatible live-update server."""

__version__ = "0.1.0"
