"""Organizations (``/organization``) and their audit trail (``/organization/audit``)."""
