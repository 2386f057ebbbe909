"""(stub, to be written) ``/functions/v1/app/{id}``: the app as the CLI checks it."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
