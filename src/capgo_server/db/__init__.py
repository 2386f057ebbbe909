"""Database plumbing: the declarative base, engines, per-request sessions and migrations."""
