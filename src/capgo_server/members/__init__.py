"""Organization members and invitations (``/organization/members``)."""
