"""The device protocol that ``@capgo/capacitor-updater`` speaks, without credentials:
``/updates`` (updates.py), ``/stats`` (stats.py), ``/channel_self`` (channel_self.py).

common.py holds the body normalisation and error shapes shared by all three; recording.py what
they remember about devices (after the answer is sent).
"""
