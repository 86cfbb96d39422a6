"""The requester's status page: ``/t/<token>``, its forms and attachment downloads.

Every route here starts the same way: take a rate-limit token for the
client, then resolve the view token to a ticket.  Anything that does not
resolve (unknown, revoked, expired, a ticket number, junk) gets the same
plain 404 page, so the response says nothing about which case it was.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from servicedesk.web import texts
from servicedesk.web.context import WEB_TEMPLATES, WebContext, client_address, web_context
from store import actions, views
from store.db import transaction
from store.models import Ticket

CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
NOTICES = {"feedback": "feedback_given", "comment": "comment_done", "stale": "form_stale"}


def render(
    context: WebContext, name: str, lang: str, status: int = 200, **values: Any
) -> HTMLResponse:
    html = context.templates.get_template(name).render(lang=lang, t=texts.words(lang), **values)
    return HTMLResponse(html, status_code=status)


def not_found(request: Request) -> HTMLResponse:
    """The one 404 for everything: no ticket number, no hint why."""
    lang = texts.pick_language(request.query_params.get("lang"), "")
    words = texts.words(lang)
    return render(
        web_context(request), "not_found.html", lang, 404, switch=(),
        heading=words["not_found"], text=words["not_found_text"],
    )  # fmt: skip


def too_many(request: Request, context: WebContext) -> HTMLResponse:
    lang = texts.pick_language(request.query_params.get("lang"), "")
    words = texts.words(lang)
    response = render(
        context, "not_found.html", lang, 429, switch=(),
        heading=words["too_many"], text=words["too_many_text"],
    )  # fmt: skip
    response.headers["Retry-After"] = str(context.limiter.retry_after(client_address(request)))
    return response


async def _lookup(request: Request, context: WebContext) -> Ticket | Response:
    """The ticket for the path's token, or the response to send instead (429 or 404)."""
    if not context.limiter.allow(client_address(request)):
        return too_many(request, context)
    token = request.path_params["token"]
    async with context.runtime.sessions() as session:
        ticket = await views.ticket_by_view_token(
            session, token, days_after_close=context.days_after_close
        )
    return ticket if ticket is not None else not_found(request)


def _base_path(token: str) -> str:
    return f"/t/{token}"


async def ticket_page(request: Request) -> Response:
    context = web_context(request)
    if not context.limiter.allow(client_address(request)):
        return too_many(request, context)
    token = request.path_params["token"]
    async with context.runtime.sessions() as session:  # one connection for the whole page
        ticket = await views.ticket_by_view_token(
            session, token, days_after_close=context.days_after_close
        )
        if ticket is None:
            return not_found(request)
        timeline = await views.public_timeline(session, ticket.id)
        feedback = await views.feedback_for(session, ticket.id)
    lang = texts.pick_language(request.query_params.get("lang"), ticket.language)
    notice_key = NOTICES.get(request.query_params.get("done", ""))
    words = texts.words(lang)
    subcategory = ticket.subcategory if ticket.subcategory != ticket.category else ""
    return render(
        context, "ticket.html", lang,
        switch=[(code, texts.LANGUAGE_NAMES[code]) for code in texts.LANGUAGES],
        ticket=ticket,
        number=context.runtime.numbering.format(ticket.id),
        status_name=texts.status_name(ticket.status, lang),
        status_next=texts.status_next(ticket.status, lang),
        status_names={s: texts.status_name(s, lang) for s in texts.STATUS},
        category=texts.category_name(ticket.category, lang),
        subcategory=texts.category_name(subcategory, lang) if subcategory else "",
        organisation=texts.organisation_name(ticket.organisation, lang),
        contact=texts.contact_line(ticket.category, lang),
        password_hint=ticket.subcategory == "it.password",
        timeline=timeline,
        feedback=feedback,
        feedback_form=ticket.status in ("resolved", "closed"),
        comment_form=ticket.status != "closed",
        feedback_nonce=context.nonces.issue(token, "feedback"),
        comment_nonce=context.nonces.issue(token, "comment"),
        form_action=_base_path(token),
        notice=words[notice_key] if notice_key else "",
    )  # fmt: skip


async def _read_form(request: Request, limit: int) -> dict[str, str] | None:
    """A urlencoded body of at most ``limit`` bytes as single values; None when too big.

    Parsed here rather than with python-multipart: the page only ever posts
    a few short fields, and no file upload path means no upload to abuse.
    """
    declared = request.headers.get("content-length", "")
    if re.fullmatch(r"[0-9]{1,15}", declared) and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items() if values}


async def ticket_post(request: Request) -> Response:
    """Feedback or a comment; always answered with a redirect back to the page (PRG)."""
    context = web_context(request)
    found = await _lookup(request, context)
    if not isinstance(found, Ticket):
        return found
    token = request.path_params["token"]
    form = await _read_form(request, context.max_form_bytes)
    if form is None:
        return Response("Request too large", status_code=413, media_type="text/plain")
    kind = form.get("form", "")
    lang = texts.pick_language(form.get("lang"), found.language)
    done = "stale"
    if kind in ("feedback", "comment") and context.nonces.check(form.get("nonce", ""), token, kind):
        done = await _apply(context, token, kind, form)
    query = urlencode({"lang": lang, "done": done} if done else {"lang": lang})
    return RedirectResponse(f"{_base_path(token)}?{query}", status_code=303)


async def _apply(context: WebContext, token: str, kind: str, form: dict[str, str]) -> str:
    """Run the form's action in one transaction; the notice to show ("" for none)."""
    try:
        async with transaction(context.runtime.sessions, writer=True) as session:
            ticket = await views.ticket_by_view_token(
                session, token, days_after_close=context.days_after_close, for_update=True
            )
            if ticket is None:
                return ""
            if kind == "feedback":
                if form.get("helpful") not in ("yes", "no"):
                    return ""
                await actions.record_feedback(
                    session, ticket, form["helpful"] == "yes", form.get("comment", "")
                )
                return "feedback"
            await actions.requester_comment(session, ticket, form.get("text", ""))
            return "comment"
    except actions.ActionError:
        return ""


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the RFC 5987 UTF-8 name."""
    cleaned = (
        "".join(ch for ch in filename if ch.isprintable() and ch not in '"\\/') or "attachment"
    )
    fallback = cleaned.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(cleaned, safe='')}"


async def attachment(request: Request) -> Response:
    context = web_context(request)
    found = await _lookup(request, context)
    if not isinstance(found, Ticket):
        return found
    async with context.runtime.sessions() as session:
        row = await views.requester_attachment(
            session, found.id, int(request.path_params["attachment_id"])
        )
        content = (
            None
            if row is None
            else await views.attachment_content(session, row, context.attachments_dir)
        )
    if row is None or content is None:
        return not_found(request)
    media_type = row.content_type.lower().strip()
    if not CONTENT_TYPE.match(media_type):
        media_type = "application/octet-stream"
    headers = {
        "Content-Disposition": content_disposition(row.filename),
        # Even if a browser ignored the disposition, the file gets no script and no origin.
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    if isinstance(content, Path):
        return FileResponse(content, media_type=media_type, headers=headers)
    return Response(content, media_type=media_type, headers=headers)


async def stylesheet(_request: Request) -> Response:
    return FileResponse(
        WEB_TEMPLATES / "style.css",
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )
