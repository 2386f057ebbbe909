"""``capgo-server bundle upload|list|delete``: the developer's side, an API client of a server.

``upload`` zips a built web folder (or takes a zip as is), sends it through the tus endpoint
``/files/upload/attachments/`` with a progress bar on stderr, resumes after interrupted
connections, and with ``--channel`` sets the new bundle on that channel (created if missing).
Results go to stdout; progress and errors to stderr. Every error is one line ``error: ...``
with exit code 1.

``commands`` holds the typer commands, ``api`` the calls to the server's public API and their
error messages, ``upload`` the zipping and the tus upload.
"""

from capgo_server.bundle_cli.commands import bundle_cli

__all__ = ["bundle_cli"]
