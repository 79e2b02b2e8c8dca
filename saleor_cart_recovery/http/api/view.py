"""The developer API's endpoint: a graphene 2 schema of its own on the plugin's ``graphql`` path.

Saleor's GraphQL schema is a fixed list, so the plugin answers on its own URL
(``/plugins/channel/<slug>/saleor_cart_recovery/graphql``), for staff and apps with
MANAGE_CHECKOUTS or MANAGE_PLUGINS only (Saleor's own tokens, see :class:`..base.StaffEndpoint`);
``updateSettings`` needs MANAGE_PLUGINS.
Queries raise GraphQL errors for invalid arguments; mutations answer user errors in their
payload's ``errors``.
"""

import json
import logging
from dataclasses import dataclass

import graphene
from django.utils.translation import gettext as _
from graphql import GraphQLError
from graphql.error import format_error

from ...languages import from_accept_language, speaking
from ..base import StaffEndpoint, json_response
from .mutations import Mutation
from .queries import Query
from .types import ApiContext

logger = logging.getLogger(__name__)

schema = graphene.Schema(query=Query, mutation=Mutation)


class BadRequest(ValueError):
    """The HTTP body is not a GraphQL request (answered with 400 before anything runs)."""


@dataclass(frozen=True)
class Operation:
    query: str
    variables: dict | None
    operation_name: str | None


def parse_body(body: bytes) -> Operation:
    """``{"query", "variables", "operationName"}`` from a POST body; raises :class:`BadRequest`."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(_("The body is not JSON.")) from None
    if not isinstance(data, dict):
        raise BadRequest(
            _('The body must be a JSON object: {"query": …, "variables": …, "operationName": …}.')
        )
    query, variables, name = data.get("query"), data.get("variables"), data.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest(_("Must provide a query string."))
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest(_("variables must be a JSON object."))
    if name is not None and not isinstance(name, str):
        raise BadRequest(_("operationName must be a string."))
    return Operation(query, variables, name)


def execute(operation: Operation, channel_slug: str, request=None) -> tuple[dict, int]:
    """The JSON response and its HTTP status: 400 when the document cannot run (syntax, unknown
    field, wrong variable types), else 200 with ``data`` and any ``errors``."""
    result = schema.execute(
        operation.query,
        context_value=ApiContext(channel_slug, request),
        variable_values=operation.variables,
        operation_name=operation.operation_name,
    )
    response: dict = {"data": result.data}
    if result.errors:
        response["errors"] = [_format(error) for error in result.errors]
    return response, 400 if result.invalid else 200


def _format(error: Exception) -> dict:
    original = getattr(error, "original_error", None)
    if isinstance(error, GraphQLError) and (original is None or isinstance(original, GraphQLError)):
        return format_error(error)
    # A bug, not the caller's mistake: say nothing about its internals, log it whole (Saleor
    # silences graphql-core's own error log).
    failure = original or error
    logger.error("cart recovery API: %r", failure, exc_info=(type(failure), failure, failure.__traceback__))
    formatted = format_error(error) if isinstance(error, GraphQLError) else {}
    return {**formatted, "message": _("Internal error; the server log has the details.")}


class GraphQLEndpoint(StaffEndpoint):
    """POST ``{"query", "variables", "operationName"}`` as JSON; every answer is JSON, a body that
    is no GraphQL request gets 400."""

    methods = ("POST",)

    def refuse(self, message, status):
        return json_response({"errors": [{"message": message}]}, status)

    def post(self, request, channel_slug):
        # errors a person reads (a setting's problem, a preview's) speak the caller's Accept-Language;
        # names a program reads (fields, enum values, cursors) stay as they are
        with speaking(from_accept_language(request.headers.get("Accept-Language"))):
            try:
                operation = parse_body(request.body)
            except BadRequest as exc:
                return json_response({"errors": [{"message": str(exc)}]}, 400)
            return json_response(*execute(operation, channel_slug, request))
