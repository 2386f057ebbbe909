"""``capgo-server bundle upload|promote|list|delete``: the developer's side, an API client.

``upload`` zips a built web folder (or takes a zip as is), sends it through the tus endpoint
``/files/upload/attachments/`` with progress on stderr (a bar in a terminal, a line now and then
in a log), resumes after interrupted connections, and sets the new bundle on ``--channel`` or
the app's default upload channel, which must exist unless ``--create-channel``; ``promote``
sets an uploaded bundle on a channel. Results go to stdout; progress, notes and warnings to
stderr. Every error is one line ``error: ...`` with exit code 1.

``commands`` holds the typer commands, ``api`` the calls to the server's public API and their
error messages, ``channels`` the choice of channel and the promotion, ``upload`` the zipping
and the tus upload, ``progress`` the progress display and the units.
"""

from capgo_server.bundle_cli.commands import bundle_cli

__all__ = ["bundle_cli"]
