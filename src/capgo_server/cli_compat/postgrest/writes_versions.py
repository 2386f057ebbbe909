"""The CLI's PostgREST writes on ``app_versions`` (plan §1.3 T11 to T14, §4.4).

T11 declares a bundle before its upload and T12 names where the upload went: both are the
upload path of ``cli_compat/uploads.py``. T13 soft-deletes a bundle as ``DELETE /bundle`` does,
for ``channel delete --delete-bundle``; T14, the CLI's undo of T13 when deleting the channel
then fails, is refused: a deleted bundle's file is gone, so it cannot be restored.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from starlette.background import BackgroundTask

from capgo_server import audit
from capgo_server.auth.access import authorize_app
from capgo_server.auth.principal import WRITE_MODES
from capgo_server.auth.roles import Role
from capgo_server.cli_compat import uploads
from capgo_server.cli_compat.postgrest.context import (
    PgContext,
    PgError,
    PgResult,
    TableHandler,
    no_matching_row,
)
from capgo_server.clock import utcnow
from capgo_server.db.session import release_connection
from capgo_server.models import Bundle, Channel
from capgo_server.storage.cleanup import remove_stored
from capgo_server.validation import is_internal_version_name


async def declare_version(ctx: PgContext) -> PgResult:
    """T11: ``POST app_versions?on_conflict=name,app_id`` → 201, empty."""
    try:
        await uploads.declare_bundle(
            ctx.session,
            ctx.store,
            ctx.principal,
            ctx.body,
            app_id=ctx.query.eq("app_id"),
            name=ctx.query.eq("name"),
        )
    except uploads.DiscardedDraftError:
        await release_connection(ctx.session)  # commits the discarded draft
        raise
    return PgResult(None, 201)


async def name_upload_path(ctx: PgContext) -> PgResult:
    """T12: ``PATCH app_versions {r2_path}`` → 204 once the path is the version's own."""
    await uploads.check_upload_path(
        ctx.session,
        ctx.principal,
        ctx.body,
        app_id=ctx.query.eq("app_id"),
        name=ctx.query.eq("name"),
    )
    return PgResult(None, 204)


async def _authorize_write(ctx: PgContext, app_id: str) -> None:
    await authorize_app(
        ctx.session,
        ctx.principal,
        app_id,
        role=Role.write,
        modes=WRITE_MODES,
        denied=uploads.refused(f"this key may not delete bundles of {app_id}"),
    )


async def delete_version(ctx: PgContext) -> PgResult:
    """T13: ``PATCH app_versions?deleted=eq.false {deleted: true}`` → 204.

    The CLI sends it before deleting the channel that serves the bundle, so one channel may
    still serve it (its devices get no update until that channel is gone); two may not.
    """
    app_id, name = ctx.query.eq("app_id"), ctx.query.eq("name")
    if ctx.query.eq("deleted") != "false" or ctx.body != {"deleted": True}:
        raise PgError(400, "PGRST100", "only {deleted: true} of a live bundle is supported")
    await _authorize_write(ctx, app_id)
    if is_internal_version_name(name):
        raise PgError(
            400,
            "cannot_delete_version",
            f"{name} names the app's native state, not a bundle: it cannot be deleted",
        )
    bundle = await ctx.session.scalar(
        select(Bundle)
        .where(Bundle.app_id == app_id, Bundle.name == name, Bundle.deleted.is_(False))
        .with_for_update()
    )
    if bundle is None:
        raise no_matching_row(f"no live bundle {name} in app {app_id}")
    serving = (
        await ctx.session.scalars(
            select(Channel.name)
            .where(
                Channel.app_id == app_id,
                or_(Channel.version == bundle.id, Channel.rollout_version == bundle.id),
            )
            .order_by(Channel.name)
        )
    ).all()
    if len(serving) > 1:
        raise PgError(
            400,
            "cannot_delete_linked_version",
            f"Channels {', '.join(serving)} serve bundle {name}: set another bundle on all but "
            "the channel being deleted first",
        )
    before = audit.snapshot(bundle)
    bundle.deleted = True
    bundle.deleted_at = utcnow()
    await ctx.session.flush()
    audit.record_row(
        ctx.session,
        bundle,
        "UPDATE",
        org_id=bundle.owner_org,
        user_id=ctx.principal.user_id,
        old=before,
    )
    paths = [bundle.r2_path] if bundle.r2_path else []
    # The file goes once the deletion is committed (after the response), as with DELETE /bundle.
    return PgResult(None, 204, BackgroundTask(remove_stored, ctx.store, paths=paths))


async def restore_versions(ctx: PgContext) -> PgResult:
    """T14: ``PATCH app_versions?name=in.(…) {deleted: false}``: refused, after the same
    authorization as T13 (a foreign app learns nothing)."""
    await _authorize_write(ctx, ctx.query.eq("app_id"))
    raise PgError(
        400,
        "restore_not_supported",
        "Restoring deleted bundles is not supported: a deleted bundle's file is removed when it "
        "is deleted. Upload the bundle again under a new version.",
    )


#: Handlers by shape name ("T1".."T14").
HANDLERS: dict[str, TableHandler] = {
    "T11": declare_version,
    "T12": name_upload_path,
    "T13": delete_version,
    "T14": restore_versions,
}
