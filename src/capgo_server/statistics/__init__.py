"""Usage statistics: daily roll-ups (rollups.py), the queries over them (service.py), the
``/statistics`` routes (endpoints.py) and their SVG charts (graph.py)."""
