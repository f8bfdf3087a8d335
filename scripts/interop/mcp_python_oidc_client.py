"""Interop through a real upstream OpenID provider: the official MCP Python SDK (PyPI `mcp`) against
our demo MCP server, our server configured with `[users] kind = "oidc"` pointed at panva's
oidc-provider (scripts/oidc-provider, test profile).

The SDK does everything an MCP client does (RFC 9728 discovery, RFC 8414 metadata, RFC 7591
registration, PKCE, the token exchange, the 403 step-up). Only the browser is replaced, and it
knows nothing but HTML forms: it follows the authorization URL to our login page, presses
"Sign in with …" (POST /login/upstream/<name>), lands on the provider's own login page, fills the
form it finds there (the fields are read from the page), approves the provider's consent page if it
shows one, comes back to our callback, approves our consent page and captures the redirect to the
SDK's redirect URI.

    python mcp_python_oidc_client.py MCP_URL UPSTREAM_NAME USERNAME EXPECT
        (the provider password in MCP_PASSWORD)

EXPECT is one of
    admin    the user is in the group mapped to mcp:admin: whoami shows `<name>:<user>` with
             mcp:tools, and the step-up to admin_stats is granted;
    user     the user is allowed but not in that group: whoami shows mcp:tools only, and the step-up
             consent never offers mcp:admin (admin_stats stays refused);
    refused  the user is outside allowed_groups: our refusal page, no code, no token.

Exits non-zero on any failure.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import OAuthClientMetadata

from mcp_python_client import MemoryStorage, structured

REDIRECT_URI = "http://127.0.0.1:8766/callback"
# Redirects followed in one hop sequence (the provider's login → resume → consent → resume chain
# is about six); more means a loop.
MAX_REDIRECTS = 20
# Authorizations the browser takes part in per run; the SDK re-authorizes on a 403 step-up, and a
# loop of refusals must end.
MAX_AUTHORIZATIONS = 3


class Form:
    def __init__(self, action: str, method: str) -> None:
        self.action = action
        self.method = method.lower()
        self.fields: dict[str, str] = {}
        self.types: dict[str, str] = {}
        self.buttons: list[tuple[str | None, str | None, str]] = []


class Forms(HTMLParser):
    """Every <form> of a page with its inputs and buttons (what a browser would submit)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._button: list | None = None
        self.text: list[str] = []
        self._skip = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("style", "script", "title"):
            self._skip += 1
        elif tag == "form":
            self._form = Form(a.get("action") or "", a.get("method") or "get")
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            self._form.fields[a["name"]] = a.get("value") or ""
            self._form.types[a["name"]] = (a.get("type") or "text").lower()
        elif tag == "button" and self._form is not None:
            self._button = [a.get("name"), a.get("value"), ""]

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title"):
            self._skip = max(0, self._skip - 1)
        elif tag == "form":
            self._form = None
        elif tag == "button" and self._button is not None and self._form is not None:
            self._form.buttons.append((self._button[0], self._button[1], self._button[2].strip()))
            self._button = None

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        if self._button is not None:
            self._button[2] += data


class Refused(Exception):
    """Our server showed a refusal page instead of consent."""


class HeadlessBrowser:
    def __init__(self, server_url: str, upstream: str, username: str, password: str) -> None:
        self.server = urljoin(server_url, "/")
        self.upstream = upstream
        self.username = username
        self.password = password
        self.result: AuthorizationCodeResult | None = None
        self.authorizations = 0
        self.scopes_asked: list[str] = []
        # The scopes each of our consent pages listed (None: no page, an earlier consent covered them).
        self.scopes_offered: list[list[str] | None] = []
        self.provider_logins = 0
        self.refusal: str | None = None
        # One cookie jar for the whole run, as a browser keeps: the provider's session makes the
        # second authorization skip its login page.
        self.http = httpx2.AsyncClient(follow_redirects=False, timeout=30.0)

    def ours(self, url: str) -> bool:
        return url.startswith(self.server)

    async def follow(self, resp: httpx2.Response) -> httpx2.Response:
        """Follows redirects until a page (or the SDK's redirect URI, which is not fetched)."""
        for _ in range(MAX_REDIRECTS):
            if resp.status_code not in (301, 302, 303, 307, 308):
                return resp
            location = urljoin(str(resp.url), resp.headers["location"])
            if location.startswith(REDIRECT_URI):
                return resp
            resp = await self.http.get(location)
        raise RuntimeError("too many redirects")

    async def submit(self, page: httpx2.Response, form: Form, fields: dict[str, str],
                     button: tuple[str | None, str | None, str] | None = None) -> httpx2.Response:
        data = dict(form.fields)
        data.update(fields)
        if button is not None and button[0]:
            data[button[0]] = button[1] or ""
        action = urljoin(str(page.url), form.action or str(page.url))
        if form.method != "post":
            raise RuntimeError(f"a {form.method} form at {action}")
        return await self.http.post(action, data=data)

    async def at_provider(self, page: httpx2.Response) -> httpx2.Response:
        """The provider's pages until it sends the browser back to our callback."""
        for _ in range(5):
            if self.ours(str(page.url)):
                return page
            if page.status_code != 200:
                raise RuntimeError(f"the provider answered {page.status_code} at {page.url}: {page.text[:500]}")
            forms = Forms(page.text).forms
            login = next((f for f in forms if "password" in f.types.values()), None)
            if login is not None:
                # Its login form: the text field is the username, the password field the password.
                user_field = next(n for n, t in login.types.items() if t in ("text", "email"))
                pass_field = next(n for n, t in login.types.items() if t == "password")
                self.provider_logins += 1
                page = await self.follow(await self.submit(
                    page, login, {user_field: self.username, pass_field: self.password}))
                if not self.ours(str(page.url)) and "wrong username or password" in page.text:
                    raise RuntimeError("the provider refused the password")
                continue
            # Its consent page: the form that is not the cancel one.
            confirm = [f for f in forms if "abort" not in f.action]
            if len(confirm) != 1:
                raise RuntimeError(f"no login or consent form at the provider's {page.url}: {page.text[:800]}")
            page = await self.follow(await self.submit(page, confirm[0], {}))
        raise RuntimeError("the provider kept showing pages")

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorizations += 1
        if self.authorizations > MAX_AUTHORIZATIONS:
            raise RuntimeError(f"more than {MAX_AUTHORIZATIONS} authorizations: a loop")
        query = parse_qs(urlparse(authorization_url).query)
        self.scopes_asked.append(query.get("scope", [""])[0])
        print(f"  authorization request #{self.authorizations}: scope={query.get('scope')}")
        # Our login page, with the upstream's button.
        page = await self.follow(await self.http.get(authorization_url))
        if page.status_code != 200 or not self.ours(str(page.url)):
            raise RuntimeError(f"expected our login page, got {page.status_code} at {page.url}")
        action = f"/login/upstream/{self.upstream}"
        button = next((f for f in Forms(page.text).forms if f.action.endswith(action)), None)
        if button is None:
            raise RuntimeError(f"no 'Sign in with …' form posting to {action} on our login page:\n{page.text[:2000]}")
        # Upstream and back to our callback.
        started = await self.submit(page, button, {})
        if started.status_code != 303:
            raise RuntimeError(f"{action} answered {started.status_code}: {started.text[:500]}")
        upstream_url = urljoin(str(started.url), started.headers["location"])
        if self.ours(upstream_url):
            raise RuntimeError(f"{action} did not send the browser upstream: {upstream_url}")
        page = await self.at_provider(await self.follow(started))
        path = urlparse(str(page.url)).path
        if path != action.replace("/upstream/", "/callback/"):
            raise RuntimeError(f"the provider sent the browser to {page.url}, not to our callback")
        location = page.headers.get("location", "") if page.status_code == 302 else ""
        if location.startswith(REDIRECT_URI):
            # Finished at once: this user's earlier consent here covers every scope they may grant.
            self.scopes_offered.append(None)
        else:
            # Our consent page (or our refusal page).
            if page.status_code != 200 or "Allow access?" not in page.text:
                parsed = Forms(page.text)
                self.refusal = " ".join(" ".join(parsed.text).split())
                raise Refused(f"{page.status_code}: {self.refusal[:500]}")
            self.scopes_offered.append(re.findall(r"<code>(mcp:[a-z:]+)</code>", page.text))
            consent = next(f for f in Forms(page.text).forms if "decision" in {b[0] for b in f.buttons})
            approve = next(b for b in consent.buttons if b[0] == "decision" and b[1] == "approve")
            done = await self.submit(page, consent, {}, approve)
            location = done.headers.get("location", "")
            if done.status_code != 302 or not location.startswith(REDIRECT_URI):
                raise RuntimeError(f"consent answered {done.status_code} to {location!r}: {done.text[:500]}")
        params = parse_qs(urlparse(location).query)
        if "code" not in params:
            raise RuntimeError(f"no code in the redirect: {location}")
        self.result = AuthorizationCodeResult(
            code=params["code"][0],
            state=params.get("state", [None])[0],
            iss=params.get("iss", [None])[0],
        )

    async def callback_handler(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise RuntimeError("the callback ran before the redirect handler produced a code")
        result, self.result = self.result, None
        return result


def oauth_for(server_url: str, browser: HeadlessBrowser, storage: MemoryStorage) -> OAuthClientProvider:
    return OAuthClientProvider(
        server_url=server_url,
        client_metadata=OAuthClientMetadata(
            client_name="MCP Python SDK interop (upstream sign-in)",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )


async def call(server_url: str, oauth: OAuthClientProvider, tool: str) -> dict:
    async with create_mcp_http_client(auth=oauth) as http_client:
        async with streamable_http_client(server_url, http_client=http_client) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                return structured(await session.call_tool(tool, {}))


async def main(server_url: str, upstream: str, username: str, expect: str, password: str) -> None:
    browser = HeadlessBrowser(server_url, upstream, username, password)
    storage = MemoryStorage()
    oauth = oauth_for(server_url, browser, storage)
    subject = f"{upstream}:{username}"
    try:
        if expect == "refused":
            # The SDK logs the refusal it gets from the redirect handler as an error; expected here.
            logging.getLogger("mcp.client.auth").setLevel(logging.CRITICAL)
            try:
                await call(server_url, oauth, "whoami")
            except BaseException as err:  # the SDK wraps the handler's exception in a task group
                if browser.refusal is None:
                    raise
                print(f"  refused as expected: {browser.refusal[:200]}")
            else:
                raise RuntimeError(f"{username} was let in: whoami answered")
            if storage.tokens is not None:
                raise RuntimeError("a token was issued to a refused user")
            if browser.provider_logins != 1:
                raise RuntimeError("the refusal did not come after the provider's sign-in")
            if "not allowed" not in browser.refusal and "Sign-in refused" not in browser.refusal:
                raise RuntimeError(f"the refusal page does not say why: {browser.refusal}")
            print(f"Upstream sign-in interop OK: {username} (outside allowed_groups) refused, nothing issued")
            return

        who = await call(server_url, oauth, "whoami")
        print(f"  whoami: subject={who['subject']} client_id={who['client_id']} scopes={who['scopes']}")
        if who["subject"] != subject:
            raise RuntimeError(f"whoami says {who['subject']!r}, expected the upstream identity {subject!r}")
        if who["scopes"] != ["mcp:tools"]:
            raise RuntimeError(f"the first token should carry mcp:tools only, got {who['scopes']}")
        if browser.provider_logins != 1:
            raise RuntimeError(f"expected one sign-in at the provider's login page, saw {browser.provider_logins}")

        if expect == "admin":
            try:
                stats = await call(server_url, oauth, "admin_stats")
            except BaseException as err:  # noqa: BLE001 (the SDK raises exception groups)
                granted = storage.tokens.scope if storage.tokens else None
                raise RuntimeError(f"admin_stats failed for {subject}, who is in mcp-admins "
                                   f"(token scope {granted!r}): {err!r}") from err
            if stats["requested_by"] != subject:
                raise RuntimeError(f"admin_stats ran for {stats['requested_by']!r}")
            if set(browser.scopes_offered[-1] or []) != {"mcp:tools", "mcp:admin"}:
                raise RuntimeError(f"our consent offered {browser.scopes_offered[-1]} for the step-up")
            print(f"  step-up: admin_stats ran for {stats['requested_by']} (group mcp-admins → mcp:admin)")
            # The provider's session carried the second authorization: no second password.
            if browser.provider_logins != 1:
                raise RuntimeError(f"the provider asked for the password again ({browser.provider_logins})")
        else:
            try:
                stats = await call(server_url, oauth, "admin_stats")
            except BaseException:
                pass
            else:
                raise RuntimeError(f"admin_stats ran for {username}, who is not in mcp-admins: {stats}")
            if len(browser.scopes_asked) < 2 or "mcp:admin" not in browser.scopes_asked[1].split():
                raise RuntimeError(f"the SDK did not step up: {browser.scopes_asked}")
            offered = [s for scopes in browser.scopes_offered[1:] if scopes for s in scopes]
            if "mcp:admin" in offered:
                raise RuntimeError(f"our consent offered {browser.scopes_offered} to a user outside mcp-admins")
            granted = (storage.tokens.scope or "").split() if storage.tokens else []
            if granted != ["mcp:tools"]:
                raise RuntimeError(f"after the step-up {username} holds {granted}, expected mcp:tools only")
            print(f"  step-up: asked {browser.scopes_asked[1]!r}, granted only {granted}; admin_stats stays refused")
        print(f"Upstream sign-in interop OK: {subject} with {'mcp:admin' if expect == 'admin' else 'mcp:tools only'}")
    finally:
        await browser.http.aclose()


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[4] not in ("admin", "user", "refused") or "MCP_PASSWORD" not in os.environ:
        sys.exit("usage: MCP_PASSWORD=... mcp_python_oidc_client.py MCP_URL UPSTREAM_NAME USERNAME admin|user|refused")
    asyncio.run(asyncio.wait_for(
        main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], os.environ["MCP_PASSWORD"]), timeout=120))
