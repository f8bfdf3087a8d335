"""Interop check with a client nobody here wrote: the official MCP Python SDK (PyPI `mcp`).

Connects to the demo MCP server with the SDK's own OAuthClientProvider, which does everything an
MCP client does on a 401: RFC 9728 discovery from the WWW-Authenticate challenge, RFC 8414
metadata, RFC 7591 dynamic registration, PKCE, the authorization request with `resource`, the
token exchange, and the 403 insufficient_scope step-up. Only the browser is replaced: the redirect
handler fetches the authorization URL itself, signs in through our login form, approves the consent
page and captures the redirect.

    python mcp_python_client.py MCP_URL USERNAME  (password in MCP_PASSWORD)

Exits non-zero on any failure.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from urllib.parse import parse_qs, urljoin, urlparse

import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT_URI = "http://127.0.0.1:8765/callback"


class _AcceptedSessionTermination(logging.Filter):
    """Drops the SDK's "Session termination failed: 202" warning, which is not a failure.

    On close the SDK sends DELETE with the session id (MCP streamable HTTP, "Session Management")
    and counts only 200 and 204 as success. rmcp answers 202 Accepted: the session is ended. Every
    other termination warning still shows.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Session termination failed: 202"


logging.getLogger("mcp.client.streamable_http").addFilter(_AcceptedSessionTermination())


class MemoryStorage(TokenStorage):
    """Tokens and client registration kept in memory for this run."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def hidden_input(html: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    if not match:
        raise RuntimeError(f"no hidden input {name!r} in the page:\n{html[:2000]}")
    return match.group(1)


class AuthorizationRefused(Exception):
    """The authorization server redirected back with an error instead of showing the login page."""


class HeadlessBrowser:
    """Plays the user: follows the authorization URL, signs in, approves, captures the redirect."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.result: AuthorizationCodeResult | None = None
        self.authorizations = 0
        self.scopes_asked: list[str] = []
        self.refusal: str | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorizations += 1
        query = parse_qs(urlparse(authorization_url).query)
        self.scopes_asked.append(query.get("scope", [""])[0])
        print(f"  authorization request #{self.authorizations}: scope={query.get('scope')} "
              f"resource={query.get('resource')} code_challenge_method={query.get('code_challenge_method')}")
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30.0) as browser:
            resp = await browser.get(authorization_url)
            if resp.status_code != 302:
                raise RuntimeError(f"/authorize answered {resp.status_code}: {resp.text[:500]}")
            login_url = urljoin(authorization_url, resp.headers["location"])
            if login_url.startswith(REDIRECT_URI):
                error = parse_qs(urlparse(login_url).query)
                self.refusal = f"{error.get('error')} {error.get('error_description')}"
                raise AuthorizationRefused(self.refusal)
            page = await browser.get(login_url)
            page.raise_for_status()
            tx = hidden_input(page.text, "tx")
            csrf = hidden_input(page.text, "csrf_token")
            base = urljoin(authorization_url, "/")
            consent = await browser.post(
                urljoin(base, "login"),
                data={"tx": tx, "csrf_token": csrf, "username": self.username, "password": self.password},
            )
            if consent.status_code != 200 or "Allow access?" not in consent.text:
                raise RuntimeError(f"sign-in failed: {consent.status_code} {consent.text[:500]}")
            done = await browser.post(
                urljoin(base, "consent"),
                data={"tx": tx, "csrf_token": csrf, "decision": "approve"},
            )
            if done.status_code != 302:
                raise RuntimeError(f"consent answered {done.status_code}: {done.text[:500]}")
            location = done.headers["location"]
        if not location.startswith(REDIRECT_URI):
            raise RuntimeError(f"redirected to {location!r}, not to the registered redirect URI")
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


def structured(result) -> dict:
    if getattr(result, "is_error", False):
        raise RuntimeError(f"tool error: {result}")
    content = getattr(result, "structured_content", None)
    if not isinstance(content, dict):
        raise RuntimeError(f"no structured content in {result}")
    return content


async def main(server_url: str, username: str, password: str) -> None:
    browser = HeadlessBrowser(username, password)
    storage = MemoryStorage()
    oauth = OAuthClientProvider(
        server_url=server_url,
        client_metadata=OAuthClientMetadata(
            client_name="MCP Python SDK interop",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    async with create_mcp_http_client(auth=oauth) as http_client:
        async with streamable_http_client(server_url, http_client=http_client) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                print(f"  initialized: server {init.server_info.name} {init.server_info.version}")
                tools = await session.list_tools()
                names = sorted(t.name for t in tools.tools)
                print(f"  tools: {', '.join(names)}")
                if names != ["admin_stats", "echo", "get_time", "whoami"]:
                    raise RuntimeError(f"unexpected tools {names}")
                who = structured(await session.call_tool("whoami", {}))
                print(f"  whoami: subject={who['subject']} client_id={who['client_id']} scopes={who['scopes']}")
                if who["subject"] != username:
                    raise RuntimeError(f"whoami says {who['subject']!r}, expected {username!r}")
                if who["scopes"] != ["mcp:tools"]:
                    raise RuntimeError(f"the first token should carry only mcp:tools, got {who['scopes']}")
    if browser.authorizations != 1:
        raise RuntimeError(f"expected one authorization, saw {browser.authorizations}")
    print("Python SDK interop OK: discovery, registration, PKCE, login, token, tools/list, whoami")

    # Step-up: the demo answers admin_stats with 403 insufficient_scope; the SDK must re-authorize
    # asking for the scopes the challenge names, and the authorization server must grant them (the
    # user consents; a client's registered scope is only its default).
    async with create_mcp_http_client(auth=oauth) as http_client:
        async with streamable_http_client(server_url, http_client=http_client) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                stats = structured(await session.call_tool("admin_stats", {}))
                print(f"  step-up: admin_stats ran for {stats['requested_by']}")
                if stats["requested_by"] != username:
                    raise RuntimeError(f"admin_stats ran for {stats['requested_by']!r}")
    if len(browser.scopes_asked) < 2 or set(browser.scopes_asked[1].split()) != {"mcp:tools", "mcp:admin"}:
        raise RuntimeError(f"the SDK did not step up with the challenged scopes: {browser.scopes_asked}")
    print(f"  step-up: the SDK re-authorized with scope {browser.scopes_asked[1]!r} from our 403 challenge")


if __name__ == "__main__":
    if len(sys.argv) != 3 or "MCP_PASSWORD" not in os.environ:
        sys.exit("usage: MCP_PASSWORD=... mcp_python_client.py MCP_URL USERNAME")
    asyncio.run(main(sys.argv[1], sys.argv[2], os.environ["MCP_PASSWORD"]))
