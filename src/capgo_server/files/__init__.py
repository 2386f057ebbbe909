"""Bundle files: resumable (tus) upload and signed download (``/files``)."""
