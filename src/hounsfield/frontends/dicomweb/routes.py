"""The DICOMweb resource tree (PS3.18 10.4-10.6), mounted at /dicom-web and, for explicit
partitions, at /dicom-web/partitions/{partition}."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from hounsfield.domain.model import Level
from hounsfield.frontends.dicomweb import changefeed, qido, rendered, stow, wado, wadouri
from hounsfield.frontends.dicomweb.context import Context
from hounsfield.frontends.http.core import Request, Response, Router

ContextHandler = Callable[[Request, Context], Awaitable[Response]]

STUDY = "/studies/{study}"
SERIES = STUDY + "/series/{series}"
INSTANCE = SERIES + "/instances/{sop}"


def _routes() -> list[tuple[str, tuple[str, ...], ContextHandler]]:
    return [
        ("/studies", ("POST",), stow.store),
        (STUDY, ("POST",), stow.store),
        ("/studies", ("GET",), partial(qido.search, level=Level.STUDY)),
        ("/series", ("GET",), partial(qido.search, level=Level.SERIES)),
        ("/instances", ("GET",), partial(qido.search, level=Level.IMAGE)),
        (STUDY + "/series", ("GET",), partial(qido.search, level=Level.SERIES)),
        (STUDY + "/instances", ("GET",), partial(qido.search, level=Level.IMAGE)),
        (SERIES + "/instances", ("GET",), partial(qido.search, level=Level.IMAGE)),
        (STUDY, ("GET",), wado.retrieve_instances),
        (SERIES, ("GET",), wado.retrieve_instances),
        (INSTANCE, ("GET",), wado.retrieve_instances),
        (STUDY + "/metadata", ("GET",), wado.retrieve_metadata),
        (SERIES + "/metadata", ("GET",), wado.retrieve_metadata),
        (INSTANCE + "/metadata", ("GET",), wado.retrieve_metadata),
        (INSTANCE + "/frames/{frames}", ("GET",), wado.retrieve_frames),
        (INSTANCE + "/bulkdata/{path:path}", ("GET",), wado.retrieve_bulkdata),
        (STUDY + "/rendered", ("GET",), rendered.rendered_collection),
        (SERIES + "/rendered", ("GET",), rendered.rendered_collection),
        (INSTANCE + "/rendered", ("GET",), rendered.rendered_instance),
        (INSTANCE + "/frames/{frames}/rendered", ("GET",), rendered.rendered_frames),
        (STUDY + "/thumbnail", ("GET",), rendered.thumbnail),
        (SERIES + "/thumbnail", ("GET",), rendered.thumbnail),
        (INSTANCE + "/thumbnail", ("GET",), rendered.thumbnail),
        (INSTANCE + "/frames/{frames}/thumbnail", ("GET",), rendered.thumbnail),
        (STUDY, ("DELETE",), wado.delete),
        (SERIES, ("DELETE",), wado.delete),
        (INSTANCE, ("DELETE",), wado.delete),
        ("/wado", ("GET",), wadouri.wado),
        ("/changefeed", ("GET",), changefeed.feed),
        ("/changefeed/latest", ("GET",), changefeed.latest),
    ]


def add_dicomweb_routes(router: Router, ctx: Context, prefix: str = "/dicom-web") -> None:
    for base in (prefix, prefix + "/partitions/{partition}"):
        for template, methods, handler in _routes():

            async def bound(request: Request, handler: ContextHandler = handler) -> Response:
                return await handler(request, ctx)

            router.add(base + template, methods, bound)

    async def wado_uri(request: Request) -> Response:
        return await wadouri.wado(request, ctx)

    # PS3.18 9: WADO-URI is also served at the root, where older viewers look for it.
    router.add("/wado", ("GET",), wado_uri)
