"""The pages of the sign-in flow for web apps (`/authorize`): consent, sign in first, and the error
page — plain HTML like `/login`'s, in Spanish (es-AR) or English as the browser prefers, no
script. Every value a request brought is escaped; the pages may not be framed (clickjacking a
consent page would be the whole attack).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Literal
from urllib.parse import urlencode

from brokerbridge.server.authorization import AuthorizationRequest

Language = Literal["es", "en"]

# What each scope lets the web app do, as the user reads it.
_SCOPES: Mapping[Language, Mapping[str, str]] = {
    "es": {
        "market": "ver datos de mercado (precios, libros, operaciones)",
        "account": "ver tu cuenta: saldos, órdenes y ejecuciones",
        "trade": "operar: enviar, cancelar y modificar órdenes",
    },
    "en": {
        "market": "see market data (prices, books, trades)",
        "account": "see your account: balances, orders and fills",
        "trade": "trade: place, cancel and amend orders",
    },
}
_TEXT: Mapping[Language, Mapping[str, str]] = {
    "es": {
        "title": "Autorizar a {client}",
        "asks": "La aplicación web <b>{client}</b> (<code>{origin}</code>) pide acceso a este brokerbridge "
        "con tu sesión ({who}):",
        "key": "clave «{name}»",
        "link": "enlace de acceso",
        "trade_hint": "sólo si lo marcás",
        "lacking": "Pedido, pero tu sesión no lo tiene (no se otorga): {what}.",
        "nothing": "Tu sesión no tiene nada de lo que pide: sólo podés rechazar.",
        "terms": "La aplicación recibe un token de acceso que vence a los {ttl} y puede renovar durante "
        "{span} como máximo. Tu clave y las credenciales del broker nunca salen del bridge.",
        "allow": "Permitir",
        "deny": "Rechazar",
        "back": "Después volvés a <code>{uri}</code>.",
        "sign_in_title": "Iniciá sesión en brokerbridge",
        "sign_in_asks": "La aplicación web <b>{client}</b> (<code>{origin}</code>) pide acceso a este "
        "brokerbridge. Primero iniciá sesión en este navegador con una clave de API del bridge:",
        "key_label": "Clave de API",
        "enter": "Entrar",
        "key_stays": "La clave queda en el bridge: esta página no se la pasa a {client}.",
        "again": '¿Ya iniciaste sesión en este navegador? <a href="{href}">Seguí acá</a> (viniendo de '
        "otro sitio, el navegador manda la sesión recién cuando seguís un enlace de esta página).",
        "or_link": "O abrí en este navegador el enlace de acceso que imprime <code>brokerbridge serve</code> "
        "(uno nuevo: <code>brokerbridge login-link</code>) y volvé a esta página.",
        "error_title": "No se puede autorizar",
        "detail": "Detalle (para quien desarrolla la aplicación):",
        "minutes": "{n} min",
        "hours": "{n} h",
    },
    "en": {
        "title": "Authorize {client}",
        "asks": "The web app <b>{client}</b> (<code>{origin}</code>) asks for access to this brokerbridge "
        "with your session ({who}):",
        "key": "key “{name}”",
        "link": "sign-in link",
        "trade_hint": "only if you tick it",
        "lacking": "Asked for, but your session does not have it (not granted): {what}.",
        "nothing": "Your session has none of what it asks for: you can only deny.",
        "terms": "The app gets an access token that expires after {ttl} and that it may renew for {span} at "
        "most. Your key and the broker's credentials never leave the bridge.",
        "allow": "Allow",
        "deny": "Deny",
        "back": "You then go back to <code>{uri}</code>.",
        "sign_in_title": "Sign in to brokerbridge",
        "sign_in_asks": "The web app <b>{client}</b> (<code>{origin}</code>) asks for access to this "
        "brokerbridge. First sign in in this browser with one of the bridge's API keys:",
        "key_label": "API key",
        "enter": "Sign in",
        "key_stays": "The key stays with the bridge: this page does not hand it to {client}.",
        "again": 'Signed in in this browser already? <a href="{href}">Continue here</a> (coming from '
        "another site, the browser sends the session only once you follow a link of this page).",
        "or_link": "Or open in this browser the sign-in link <code>brokerbridge serve</code> prints (a new "
        "one: <code>brokerbridge login-link</code>) and come back to this page.",
        "error_title": "Cannot authorize",
        "detail": "Details (for the app's developer):",
        "minutes": "{n} min",
        "hours": "{n} h",
    },
}
_STYLE = (
    "body{font:15px system-ui,sans-serif;margin:2em auto;max-width:36em;padding:0 1em;color:#222}"
    "button{font:inherit;padding:.4em 1.2em;margin-right:.6em}li{margin:.3em 0}"
    ".note{color:#555;font-size:90%}.error{color:#a00}"
)


def language(accept_language: str | None) -> Language:
    """Spanish unless the browser prefers English (the dashboard's default is Spanish too)."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("es"):
            return "es"
        if tag.startswith("en"):
            return "en"
    return "es"


def headers(form_target: str | None = None) -> dict[str, str]:
    """The pages' headers: never cached, never framed, no script; `form_target`: the origin a form
    of the page may end up at (Chromium checks form-action on the redirect after the POST)."""
    form_action = "'self'" + (f" {form_target}" if form_target else "")
    return {
        "Cache-Control": "no-store",
        # Not no-referrer: Chromium then sends `Origin: null` with the page's own form posts,
        # which the same-origin check of the forms must refuse. Other origins get no Referer.
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action {form_action}; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
    }


def _page(lang: Language, title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width">'
        f'<link rel="icon" href="/dashboard/favicon.svg" type="image/svg+xml">'
        f"<title>brokerbridge: {escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body><h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def _hidden(fields: Mapping[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields.items()
    )


def _span(lang: Language, seconds: float) -> str:
    text = _TEXT[lang]
    if seconds < 5400:
        return text["minutes"].format(n=max(1, round(seconds / 60)))
    return text["hours"].format(n=round(seconds / 3600))


def consent_page(
    lang: Language,
    request: AuthorizationRequest,
    *,
    fields: Mapping[str, str],
    who: str | None,
    held: frozenset[str],
    ttl: float,
    renew_for: float,
) -> str:
    """The consent form: what the app asks for that the session `held`, `trade` as a box left
    unticked; `fields`: the request's parameters and the login's CSRF token, posted back."""
    text, scopes = _TEXT[lang], _SCOPES[lang]
    client, origin = escape(request.client_id), escape(request.origin)
    asked = [s for s in ("market", "account", "trade") if s in request.scopes]
    granted = [s for s in asked if s in held]
    lacking = [scopes[s] for s in asked if s not in held]
    items = []
    for scope in granted:
        if scope == "trade":
            items.append(
                f'<li><label><input type="checkbox" name="trade" value="on"> {escape(scopes[scope])}</label>'
                f' <span class="note">({text["trade_hint"]})</span></li>'
            )
        else:
            items.append(f"<li>{escape(scopes[scope])}</li>")
    who_text = text["key"].format(name=escape(who)) if who else text["link"]
    body = [f"<p>{text['asks'].format(client=client, origin=origin, who=who_text)}</p>"]
    body.append(f'<form method="post" action="/authorize">{_hidden(fields)}<ul>{"".join(items)}</ul>')
    if lacking:
        body.append(f'<p class="note">{escape(text["lacking"].format(what="; ".join(lacking)))}</p>')
    if granted:
        terms = text["terms"].format(ttl=_span(lang, ttl), span=_span(lang, renew_for))
        body.append(f'<p class="note">{escape(terms)}</p>')
        body.append(f'<button type="submit" name="decision" value="allow">{text["allow"]}</button>')
    else:
        body.append(f'<p class="error">{escape(text["nothing"])}</p>')
    body.append(f'<button type="submit" name="decision" value="deny">{text["deny"]}</button></form>')
    body.append(f'<p class="note">{text["back"].format(uri=escape(request.redirect_uri))}</p>')
    return _page(lang, text["title"].format(client=request.client_id), "\n".join(body))


def sign_in_page(
    lang: Language, request: AuthorizationRequest, *, fields: Mapping[str, str], error: str | None = None
) -> str:
    """Sign in first: an API key form posting to `/authorize/sign-in` (which comes back here), or
    the login link of `serve`."""
    text = _TEXT[lang]
    client, origin = escape(request.client_id), escape(request.origin)
    body = [f"<p>{text['sign_in_asks'].format(client=client, origin=origin)}</p>"]
    if error:
        body.append(f'<p class="error">{escape(error)}</p>')
    body.append(
        f'<form method="post" action="/authorize/sign-in">{_hidden(fields)}'
        f'<p><label>{text["key_label"]}: <input type="password" name="key" autocomplete="off" required '
        f'maxlength="256" size="40"></label> <button type="submit">{text["enter"]}</button></p></form>'
    )
    body.append(f'<p class="note">{text["key_stays"].format(client=client)}</p>')
    body.append(f"<p>{text['again'].format(href=escape('/authorize?' + urlencode(fields)))}</p>")
    body.append(f'<p class="note">{text["or_link"]}</p>')
    return _page(lang, text["sign_in_title"], "\n".join(body))


def error_page(lang: Language, message: str, remedy: str) -> str:
    """A request that cannot go on and must not be redirected (an unchecked redirect_uri)."""
    text = _TEXT[lang]
    body = f"<p>{text['detail']}</p><p><b>{escape(message)}</b></p><p>{escape(remedy)}</p>"
    return _page(lang, text["error_title"], body)
