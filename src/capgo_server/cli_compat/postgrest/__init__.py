"""The fixed set of PostgREST requests the official CLI sends (contract §4.1, §4.2)."""
