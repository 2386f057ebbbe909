"""Users. They are created by the operator from the command line, not through the API."""
