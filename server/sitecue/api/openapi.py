"""``GET /openapi.json``: every endpoint, its parameters, bodies and answers, with the schemas
generated from the same msgspec types the endpoints decode and encode."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import __version__, rootpath
from ..catalog import MAX_CATEGORY, MAX_NAME, MAX_PRICE, MAX_URL, PRODUCT_ID
from ..protocol import DecideRequest, DecideResponse, EventsRequest, FormRequest, FormResponse
from .admin import Refused, Reloaded
from .bodies import ErrorBody, FieldErrors, Health
from .catalog import MAX_PAGE as MAX_PRODUCTS
from .catalog import ProductPage, ProductsImported, ProductView
from .contact_events import InboundEvent, Recorded
from .contacts import AttributesBody, ContactExport, ContactView, Imported
from .decisions import MAX_PAGE, DecisionPage
from .deliveries import MAX_PAGE as MAX_DELIVERIES
from .deliveries import DeliveryPage, Retried
from .holdout import HoldoutResults
from .recommendations import ProductsReport
from .reports import MAX_DAYS, Report
from .results import Results
from .submissions import MAX_PAGE as MAX_SUBMISSIONS
from .submissions import SubmissionPage
from .tokens import TokenRequest, Tokens

__all__ = ["openapi", "openapi_endpoint"]

_REF = "#/components/schemas/{name}"


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(kind: type) -> dict[str, Any]:
    return {"$ref": _REF.format(name=kind.__name__)}


def _errors(*statuses: int) -> dict[str, Any]:
    why = {
        400: "the body or a parameter is wrong; the message names it",
        401: "no admin key, or not a valid one",
        403: "not allowed from this origin, or with this key",
        404: "no such site",
        413: "the body is over 16 KiB",
        415: "a body of a content type this endpoint does not read",
        422: "the config was refused",
    }
    return {str(s): {"description": why[s], **_json(_ref(ErrorBody))} for s in statuses}


def _tag_body(kind: type) -> dict[str, Any]:
    """A body the tag sends: JSON, or text/plain from navigator.sendBeacon."""
    schema = _ref(kind)
    return {
        "required": True,
        "content": {"application/json": {"schema": schema}, "text/plain": {"schema": schema}},
    }


def _query(name: str, description: str, schema: dict[str, Any], required: bool = False) -> Any:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


_TEXT = {"type": "string", "minLength": 1, "maxLength": 128}
_MILLIS = {"type": "integer", "minimum": 0, "maximum": 2**53}
_DAY = {"type": "string", "format": "date"}
_ADMIN: list[dict[str, list[str]]] = [{"bearer": []}]
_SITE = _query("site", "the site", _TEXT, required=True)
_CONTACT = {
    "name": "contact",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 128},
}

_PRODUCT_ID = {"type": "string", "pattern": PRODUCT_ID}
_PRODUCT = {"name": "product", "in": "path", "required": True, "schema": _PRODUCT_ID}
_CATEGORY = {"type": "string", "minLength": 1, "maxLength": MAX_CATEGORY}
_COUNT = {"type": "integer", "minimum": 1}
# A product as the site's systems send it: its own fields, and those the site declares.
_PRODUCT_BODY = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
        "url": {"type": "string", "format": "uri", "maxLength": MAX_URL},
        "image": {"type": ["string", "null"], "maxLength": MAX_URL},
        "price": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_PRICE},
        "category": {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_CATEGORY},
        "in_stock": {"type": "boolean", "default": True},
    },
    "required": ["name", "url"],
    "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
}


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


def openapi(root_path: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the whole HTTP surface, served under ``root_path``."""
    types = [DecideRequest, DecideResponse, EventsRequest, DecisionPage, Reloaded, Refused]
    types += [TokenRequest, Tokens, AttributesBody, ContactView, ContactExport, Imported, Results]
    types += [FormRequest, FormResponse, FieldErrors, SubmissionPage, DeliveryPage, Retried]
    types += [InboundEvent, Recorded, HoldoutResults, Report, ProductsReport]
    types += [ProductView, ProductPage, ProductsImported]
    _, components = msgspec.json.schema_components([*types, ErrorBody, Health], ref_template=_REF)
    paths: dict[str, Any] = {
        "/cue.js": {
            "get": {
                "summary": "The tag (compressed, with an ETag)",
                "responses": {
                    "200": {"description": "the script", "content": {"text/javascript": {}}},
                    "304": {"description": "unchanged since the ETag sent"},
                },
            }
        },
        "/cue.{version}.js": {
            "get": {
                "summary": "The tag under its version (the ETag of /cue.js), cached for a year",
                "parameters": [
                    {
                        "name": "version",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {"description": "the script", "content": {"text/javascript": {}}},
                    "304": {"description": "unchanged since the ETag sent"},
                    **_errors(404),
                },
            }
        },
        "/preview.js": {
            "get": {
                "summary": "The preview panel, loaded by the tag on a preview link only",
                "responses": {
                    "200": {"description": "the script", "content": {"text/javascript": {}}}
                },
            }
        },
        "/v1/decide": {
            "post": {
                "summary": "Decide what this page view shows, and update the state cookie",
                "requestBody": _tag_body(DecideRequest),
                "responses": {
                    "200": {"description": "the decisions", **_json(_ref(DecideResponse))},
                    **_errors(400, 403, 404, 413),
                },
            }
        },
        "/v1/events": {
            "post": {
                "summary": "Impressions, clicks, dismissals, conversions and goal events",
                "description": "Feedback only on decisions this server made for this visitor"
                " (their signed ids), dated within the last day; one bad event refuses the"
                " whole batch (400, nothing stored). An event id already stored is not stored"
                " again.",
                "requestBody": _tag_body(EventsRequest),
                "responses": {"204": {"description": "recorded"}, **_errors(400, 403, 404, 413)},
            }
        },
        "/v1/forms": {
            "post": {
                "summary": "A form of a decided widget, submitted",
                "description": "Checked again by the site config; stored (committed before"
                " the answer) with the consent texts shown, counted as the rule's conversion,"
                " creating or updating the contact's answers and linking this browser to it"
                " unverified. Needs a decision this server issued to this visitor for the rule"
                " and variant. A filled honeypot (sc_hp) is answered as success and stored"
                " nowhere. An id already stored is not stored again.",
                "requestBody": _tag_body(FormRequest),
                "responses": {
                    "200": {"description": "stored", **_json(_ref(FormResponse))},
                    "422": {
                        "description": "every wrong field with its problem; nothing stored",
                        **_json(_ref(FieldErrors)),
                    },
                    "429": {
                        "description": "over a rate limit (5 a minute per browser, 3 an hour"
                        " per address); Retry-After says when",
                        **_json(_ref(ErrorBody)),
                    },
                    **_errors(400, 403, 404, 413),
                },
            }
        },
        "/v1/submissions": {
            "get": {
                "summary": "Form submissions, newest first",
                "security": _ADMIN,
                "parameters": [
                    _query("site", "the site whose submissions to list", _TEXT, required=True),
                    _query("rule", "one rule's", _TEXT),
                    _query("contact", "one contact's", _TEXT),
                    _query("from", "epoch ms, inclusive", _MILLIS),
                    _query("to", "epoch ms, exclusive", _MILLIS),
                    _query("cursor", "the `next` of the previous page", {"type": "string"}),
                    _query(
                        "limit",
                        "submissions per page",
                        {"type": "integer", "minimum": 1, "maximum": MAX_SUBMISSIONS},
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "a page; with Accept: application/x-ndjson or text/csv,"
                        " every match",
                        "content": {
                            "application/json": {"schema": _ref(SubmissionPage)},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/v1/decisions": {
            "get": {
                "summary": "The decision log, newest first: the rules shown, and why each rule"
                " that met its conditions was not",
                "security": _ADMIN,
                "parameters": [
                    _query("site", "the site whose decisions to list", _TEXT, required=True),
                    _query("visitor", "one visitor (sc_vid)", _TEXT),
                    _query("contact", "every browser linked to this contact", _TEXT),
                    _query("rule", "decisions where this rule met its conditions", _TEXT),
                    _query("variant", "... that chose this variant", _TEXT),
                    _query(
                        "matched",
                        "... that showed it (true) or did not (false: with a rule, whatever"
                        " the reason; without, nothing was shown)",
                        {"type": "boolean"},
                    ),
                    _query("from", "epoch ms, inclusive", _MILLIS),
                    _query("until", "epoch ms, exclusive", _MILLIS),
                    _query("cursor", "the `next` of the previous page", {"type": "string"}),
                    _query(
                        "limit",
                        "records per page",
                        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "a page; with Accept: application/x-ndjson, every match",
                        "content": {
                            "application/json": {"schema": _ref(DecisionPage)},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(400, 401, 403),
                },
            }
        },
        "/v1/results": {
            "get": {
                "summary": "An experiment's variants: exposures, conversions, uplift, intervals",
                "security": _ADMIN,
                "parameters": [
                    _SITE,
                    _query("rule", "the experiment's rule", _TEXT, required=True),
                ],
                "responses": {
                    "200": {
                        "description": "per variant, and the sample ratio",
                        **_json(_ref(Results)),
                    },
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/v1/reports": {
            "get": {
                "summary": "A rule's numbers per day or ISO week and variant, from the rollups",
                "description": "Every period of the range (zeros included) for every variant:"
                " decisions, visitors first exposed, impressions, clicks, dismissals, form"
                " submissions, conversions and revenue of the period's visitors, and the"
                " click-through rate, conversion rate and revenue per visitor (null without a"
                " denominator). Weeks run Monday to Sunday; the range widens to whole weeks.",
                "security": _ADMIN,
                "parameters": [
                    _SITE,
                    _query("rule", "the rule", _TEXT, required=True),
                    _query("from", "first day, YYYY-MM-DD (UTC; default: to - 29)", _DAY),
                    _query("to", f"last day, included (default today; at most {MAX_DAYS})", _DAY),
                    _query("interval", "one row per day (default) or week", _enum("day", "week")),
                    _query(
                        "format",
                        "json (default), csv or ndjson; else by Accept",
                        _enum("json", "csv", "ndjson"),
                    ),
                    _query(
                        "breakdown",
                        "CSV and NDJSON rows per variant (default) or per variant and strategy"
                        " of the products recommended (JSON has both: rows, strategies)",
                        _enum("variant", "strategy"),
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "the report; as CSV or NDJSON, one row a line",
                        "content": {
                            "application/json": {"schema": _ref(Report)},
                            "text/csv": {"schema": {"type": "string"}},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/v1/recommendations/products": {
            "get": {
                "summary": "A rule's recommended products: clicks, purchases, revenue",
                "description": "Per product, variant and strategy clicked in the range: the"
                " clicks (once per decision and product), the conversions (the same visitor"
                " bought the product within 7 days of their latest click on it) and their"
                " revenue (the catalogue price, else the product's share of the order).",
                "security": _ADMIN,
                "parameters": [
                    _SITE,
                    _query("rule", "the rule", _TEXT, required=True),
                    _query(
                        "since", "first day of clicks, YYYY-MM-DD (UTC; default: until - 29)", _DAY
                    ),
                    _query(
                        "until", f"last day, included (default today; at most {MAX_DAYS})", _DAY
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "per product, variant and strategy",
                        **_json(_ref(ProductsReport)),
                    },
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/v1/results/holdout": {
            "get": {
                "summary": "All personalisation's lift: the global holdout against the rest",
                "security": _ADMIN,
                "parameters": [
                    _SITE,
                    _query("goal", "one goal (default: every goal of the site's rules)", _TEXT),
                ],
                "responses": {
                    "200": {
                        "description": "per group, the uplift, and the sample ratio",
                        **_json(_ref(HoldoutResults)),
                    },
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/v1/reload": {
            "post": {
                "summary": "Recompile every site from disk; a bad config keeps the old serving",
                "security": _ADMIN,
                "responses": {
                    "200": {"description": "reloaded", **_json(_ref(Reloaded))},
                    "422": {"description": "refused, with every problem", **_json(_ref(Refused))},
                    **_errors(401, 403),
                },
            }
        },
        "/v1/tokens": {
            "post": {
                "summary": "Email tokens for a campaign; CSV or NDJSON lists answered as CSV",
                "security": _ADMIN,
                "parameters": [
                    _query("site", "with a CSV or NDJSON body: the site", _TEXT),
                    _query("ttl", "with a CSV or NDJSON body: how long, e.g. 30d", _TEXT),
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref(TokenRequest)},
                        "text/csv": {"schema": {"type": "string"}},
                        "application/x-ndjson": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": {
                        "description": "a token per contact",
                        "content": {
                            "application/json": {"schema": _ref(Tokens)},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(400, 401, 403, 404, 413),
                },
            }
        },
        "/v1/contacts/import": {
            "post": {
                "summary": "Import a customer list (NDJSON or CSV); all lines or none",
                "security": _ADMIN,
                "parameters": [_SITE],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-ndjson": {"schema": {"type": "string"}},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": {"description": "imported", **_json(_ref(Imported))},
                    **_errors(400, 401, 403, 404, 413, 415),
                },
            }
        },
        "/v1/catalog": {
            "get": {
                "summary": "A page of the site's products, by id",
                "security": _ADMIN,
                "parameters": [
                    _SITE,
                    _query("category", "only this category", _CATEGORY),
                    _query("after", "the next of a previous page", _PRODUCT_ID),
                    _query("limit", "at most (100)", {**_COUNT, "maximum": MAX_PRODUCTS}),
                ],
                "responses": {
                    "200": {"description": "the products", **_json(_ref(ProductPage))},
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/v1/catalog/import": {
            "post": {
                "summary": "Import products (NDJSON or CSV); every line checked, all or none",
                "description": "CSV: a header row id,name,url,image,price,category,in_stock"
                " and the site's declared fields (id, name and url required). A product"
                " already held is replaced by the file's. Stored in transactions of 1000.",
                "security": _ADMIN,
                "parameters": [_SITE],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-ndjson": {"schema": {"type": "string"}},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": {"description": "imported", **_json(_ref(ProductsImported))},
                    **_errors(400, 401, 403, 404, 413, 415),
                },
            }
        },
        "/v1/catalog/{product}": {
            **{
                method: {
                    "summary": summary,
                    "security": _ADMIN,
                    "parameters": [_PRODUCT, _SITE],
                    **({"requestBody": _json(_PRODUCT_BODY)} if body else {}),
                    "responses": {
                        "200": {"description": "the product", **_json(_ref(ProductView))},
                        **_errors(400, 401, 403, 404, *((413,) if body else ())),
                    },
                }
                for method, summary, body in (
                    ("get", "The product", False),
                    ("put", "Create the product, or replace it (as the site's)", True),
                )
            },
            "delete": {
                "summary": "Remove the product from the catalogue",
                "security": _ADMIN,
                "parameters": [_PRODUCT, _SITE],
                "responses": {"204": {"description": "removed"}, **_errors(400, 401, 403, 404)},
            },
        },
        "/v1/contacts/{contact}": {
            "parameters": [_CONTACT, _SITE],
            **{
                method: {
                    "summary": summary,
                    "security": _ADMIN,
                    **({"requestBody": _json(_ref(AttributesBody))} if body else {}),
                    "responses": {
                        "200": {"description": "the contact", **_json(_ref(ContactView))},
                        **_errors(400, 401, 403, 404, 413),
                    },
                }
                for method, summary, body in (
                    ("get", "The contact and the browsers linked to it", False),
                    ("put", "Create the contact, or replace its attributes", True),
                    ("patch", "Change some attributes (null removes one)", True),
                )
            },
            "delete": {
                "summary": "Erase the person: contact, links, and who they were in the logs",
                "security": _ADMIN,
                "responses": {"204": {"description": "erased"}, **_errors(400, 401, 403, 404)},
            },
        },
        "/v1/contacts/{contact}/export": {
            "get": {
                "summary": "Everything held about the person (a data-protection request)",
                "security": _ADMIN,
                "parameters": [_CONTACT, _SITE],
                "responses": {
                    "200": {"description": "the export", **_json(_ref(ContactExport))},
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/v1/contacts/{contact}/events": {
            "post": {
                "summary": "Server-side events of the person (a JSON list, or NDJSON)",
                "description": "Each names a trigger the site declares; they count in"
                " triggers.<name>.<window> for every browser verified as the person's, from"
                " its next identification or refresh. All events or none: one bad event is a"
                " 400 naming it. An event whose id the contact already has is a duplicate,"
                " not stored again. At most 1000 events and 1 MiB.",
                "security": _ADMIN,
                "parameters": [_CONTACT, _SITE],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"type": "array", "items": _ref(InboundEvent)}
                        },
                        "application/x-ndjson": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": {"description": "stored", **_json(_ref(Recorded))},
                    **_errors(400, 401, 403, 404, 413, 415),
                },
            }
        },
        "/dashboard": {
            "get": {
                "summary": "The operator's dashboard (HTML): the sign-in form until signed in",
                "responses": {"200": {"description": "a page", "content": {"text/html": {}}}},
            }
        },
        "/dashboard/report.csv": {
            "get": {
                "summary": "A rule's report as CSV (as /v1/reports), for a signed-in operator",
                "parameters": [
                    _SITE,
                    _query("rule", "the rule", _TEXT, required=True),
                    _query("from", "first day, YYYY-MM-DD (UTC; default: to - 29)", _DAY),
                    _query("to", f"last day, included (default today; at most {MAX_DAYS})", _DAY),
                    _query("interval", "one row per day (default) or week", _enum("day", "week")),
                    _query(
                        "breakdown",
                        "rows per variant (default) or per variant and strategy",
                        _enum("variant", "strategy"),
                    ),
                ],
                "responses": {
                    "200": {"description": "the CSV", "content": {"text/csv": {}}},
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/dashboard/preview": {
            "post": {
                "summary": "A preview link for a rule's variant, for a signed-in operator",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "site": {"type": "string"},
                                    "rule": {"type": "string"},
                                    "variant": {"type": "string"},
                                    "url": {"type": "string"},
                                },
                                "required": ["site", "rule", "variant", "url"],
                            }
                        }
                    },
                },
                "responses": {
                    "200": {"description": "a page with the link", "content": {"text/html": {}}},
                    **_errors(400, 401, 403, 413),
                },
            }
        },
        "/dashboard/login": {
            "post": {
                "summary": "Sign in to the dashboard with an admin key",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "properties": {"key": {"type": "string"}},
                                "required": ["key"],
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "the form again, saying why",
                        "content": {"text/html": {}},
                    },
                    "303": {"description": "signed in: to the dashboard"},
                    **_errors(403, 413),
                },
            }
        },
        "/v1/deliveries": {
            "get": {
                "summary": "Webhook messages in the outbox, newest first",
                "description": "Each with its status (pending, delivered, dead), attempts,"
                " the receiver's last status or error and the next try; and the site's"
                " webhooks a 410 disabled (their messages wait as pending).",
                "security": _ADMIN,
                "parameters": [
                    _query("site", "the site whose deliveries to list", _TEXT, required=True),
                    _query("webhook", "one webhook's", _TEXT),
                    _query(
                        "status",
                        "only those in this status",
                        {"enum": ["pending", "delivered", "dead"]},
                    ),
                    _query("cursor", "the `next` of the previous page", {"type": "string"}),
                    _query(
                        "limit",
                        "messages per page",
                        {"type": "integer", "minimum": 1, "maximum": MAX_DELIVERIES},
                    ),
                ],
                "responses": {
                    "200": {"description": "a page", **_json(_ref(DeliveryPage))},
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/v1/deliveries/{id}/retry": {
            "post": {
                "summary": "Send a webhook message again, now",
                "description": "Due at once, with a new day of tries; re-enables its webhook"
                " if a 410 disabled it (its waiting messages get a new day too).",
                "security": _ADMIN,
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                    _SITE,
                ],
                "responses": {
                    "200": {"description": "due now", **_json(_ref(Retried))},
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/dashboard/deliveries/{id}/retry": {
            "post": {
                "summary": "The dashboard's retry button (form field site; own origin only)",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "303": {"description": "due now: back to the dashboard"},
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/dashboard/logout": {
            "post": {
                "summary": "Sign out of the dashboard",
                "responses": {
                    "303": {"description": "signed out: to the sign-in form"},
                    **_errors(403),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1", **_json({"type": "object"})}},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics; site series only for the key's sites",
                "security": _ADMIN,
                "parameters": [_query("site", "only this site's series", _TEXT)],
                "responses": {
                    "200": {"description": "text format 0.0.4", "content": {"text/plain": {}}},
                    **_errors(400, 401, 403),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Whether this node and its store answer",
                "responses": {
                    "200": {
                        "description": "ok, or degraded: the store fails, records are spooled",
                        **_json(_ref(Health)),
                    },
                    "503": {"description": "the store is unavailable", **_json(_ref(Health))},
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "sitecue", "version": __version__},
        # Relative to where the document is served: the node's root path (a proxy's /sc).
        "servers": [{"url": root_path or "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@lru_cache(maxsize=16)
def _document(root_path: str) -> bytes:
    """Encoded once per root path (a node has one; the demo two)."""
    return msgspec.json.encode(openapi(root_path))


async def openapi_endpoint(request: Request) -> Response:
    return Response(_document(rootpath.of(request.scope)), media_type="application/json")
