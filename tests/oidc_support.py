"""Helpers for the OpenID provider's tests: people with e-ID accounts, relying parties, a browser
that logs in by posting the provider's forms, PKCE, and a live server (uvicorn in a thread)."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pyotp
import sqlalchemy as sa

from dinhdanh.eid import auth
from dinhdanh.eid.tables import eid_accounts
from dinhdanh.oidc import clients
from dinhdanh.population.importer import import_population
from dinhdanh.store.vault import Vault, for_database
from tests.chips import NATIONAL
from tests.ports import free_port  # noqa: F401 (imported from here by many tests)
from tests.support import FAMILY, write_people

AN, BINH, DUC, HOA = "001085000001", "001187000002", "079090000005", "079193000006"
PASSCODE = "135790"


@dataclass
class People:
    """FAMILY with e-ID accounts: An at level 2 with TOTP, Bình, Đức and Hoa at level 1."""

    engine: sa.Engine
    vault: Vault
    totp_secret: str
    accounts: dict[str, int] = field(default_factory=dict)

    def totp(self, at: float | None = None) -> str:
        return pyotp.TOTP(self.totp_secret).at(at or time.time())


def load_people(engine: sa.Engine, tmp_path) -> People:
    from dinhdanh.cards import lifecycle, pki

    report = import_population(engine, write_people(tmp_path / "family.csv", FAMILY))
    assert report.loaded == len(FAMILY), report
    vault = for_database(engine.url.render_as_string(hide_password=False))
    accounts = {}
    with engine.begin() as conn:
        pki.init_pki(conn, vault)
        lifecycle.issue_card(conn, vault, NATIONAL, AN)
        for pid, level in ((AN, 2), (BINH, 1), (DUC, 1), (HOA, 1)):
            accounts[pid] = auth.enroll(conn, vault, pid, level=level, passcode=PASSCODE, actor="test")["account_id"]
        uri = auth.enable_totp(conn, accounts[AN], vault)
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    return People(engine, vault, secret, accounts)


def add_client(engine: sa.Engine, *, approve: bool = True, name: str = "Dịch vụ thử nghiệm",
               redirect_uris=("https://rp.example/cb",), scopes: str = "openid profile",
               **kw) -> dict:
    with engine.begin() as conn:
        made = clients.register_client(conn, name=name, redirect_uris=list(redirect_uris), scopes=scopes,
                                       actor="test", **kw)
        if approve:
            clients.approve_client(conn, made["client_id"], agreement="TT-01/2025", purpose="Thử nghiệm",
                                   security_level=3, actor="test")
    return made


def add_partner(engine: sa.Engine, *, approve: bool = True, name: str = "Nhà mạng thử nghiệm", kind: str = "telco",
                operations=("verify", "batch"), fields=("full_name", "date_of_birth", "sex"), purposes=None,
                rate: int = 600) -> dict:
    """A partner of the data exchange (its client: client_secret_basic, client_credentials,
    dinhdanh.verify), approved and active unless ``approve`` is false."""
    import datetime as dt

    from dinhdanh.exchange import partners

    with engine.begin() as conn:
        made = partners.add_partner(conn, name=name, kind=kind, operations=list(operations), fields=list(fields),
                                    purposes=purposes, rate_per_minute=rate, actor="test")
        if approve:
            partners.approve_partner(conn, made["client_id"], agreement="TT-02/2025", legal_basis="Nghị định 69/2024",
                                     expires=dt.date.today() + dt.timedelta(days=365), security_level=3, actor="test")
    return made


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hidden(page: str, name: str) -> str | None:
    m = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    return html.unescape(m.group(1)) if m else None


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class Browser:
    """A person's browser: follows the provider's redirects, keeps its cookies, posts its forms,
    and stops at the relying party's redirect URI (returning that URL)."""

    def __init__(self, client: httpx.Client, stop_at: tuple[str, ...] = ()):
        self.client = client
        self.stop_at = stop_at  # relying parties' URLs on the provider's own host
        self.page: httpx.Response | None = None

    def _leaves(self, location: str) -> bool:
        if location.startswith(self.stop_at) if self.stop_at else False:
            return True
        base = str(self.client.base_url).rstrip("/")
        return location.startswith(("http://", "https://")) and not location.startswith(base + "/")

    def _follow(self, response: httpx.Response) -> str | None:
        for _ in range(10):
            if response.status_code not in (302, 303):
                self.page = response
                return None
            location = response.headers["location"]
            if self._leaves(location):
                return location
            response = self.client.get(location)
        raise AssertionError("too many redirects")

    def get(self, url: str, **params) -> str | None:
        return self._follow(self.client.get(url, params=params or None))

    def submit(self, **fields) -> str | None:
        """Post the form of the current page with its hidden fields and ``fields``."""
        page = self.page.text
        action = re.search(r'<form method="post" action="([^"]+)"', page).group(1)
        fields_ = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
        data = {name: html.unescape(value) for name, value in fields_}
        data.update(fields)
        return self._follow(self.client.post(action, data=data))

    @property
    def title(self) -> str:
        m = re.search(r"<h1>(.*?)</h1>", self.page.text, re.S)
        return html.unescape(m.group(1)) if m else ""

    def login(self, username: str, password: str = PASSCODE, *, consent: bool = True,
              totp: str | None = None) -> str | None:
        """From the login page to the relying party: passcode, step-up if asked, consent if asked."""
        location = self.submit(username=username, password=password)
        if location is None and 'action="/login/step-up"' in self.page.text and totp is not None:
            location = self.submit(totp=totp)
        if location is None and 'action="/consent"' in self.page.text:
            location = self.submit(decision="allow" if consent else "deny")
        return location


def authorize_params(client: dict, *, challenge: str, nonce: str | None = None, state: str = "af0ifjsldkj",
                     scope: str = "openid profile", **extra) -> dict:
    nonce = nonce or secrets.token_urlsafe(12)  # a nonce is used once: the provider refuses replays
    params = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": client["redirect_uris"][0],
              "scope": scope, "state": state, "nonce": nonce, "code_challenge": challenge,
              "code_challenge_method": "S256"}
    params.update(extra)
    return params


def authorize_url(client: dict, **kw) -> str:
    return "/authorize?" + urlencode(authorize_params(client, **kw))


# ------------------------------------------------------------------------------ a live server


class LiveServer:
    """The app served by uvicorn in a thread on a free port."""

    def __init__(self, engine: sa.Engine):
        import uvicorn

        from dinhdanh.web.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(engine)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import urllib.request

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)
        # started means listening; wait for a first answer too (on a busy machine, with another
        # pytest-xdist worker loading both cores, it can come seconds later)
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=max(0.1, deadline - time.monotonic())):
                    return self
            except OSError:
                if time.monotonic() > deadline or not self.thread.is_alive():
                    raise RuntimeError("the live server does not answer") from None
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def account_row(engine: sa.Engine, account_id: int):
    with engine.connect() as conn:
        return conn.execute(sa.select(eid_accounts).where(eid_accounts.c.account_id == account_id)).one()


TOKEN_ISSUER = "https://id.dinhdanh.test"  # the issuer of the token endpoint's requests made below


def basic(client_id: str, secret: str) -> str:
    """An ``Authorization: Basic`` value (RFC 6749 s.2.3.1)."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def token_request(client: dict, form, headers=(), secret: str | None = None, query=()):
    """A token request (``oidc.server.HttpRequest``) with ``form``, the client's secret in the Basic
    header (or ``secret``), extra ``headers`` and ``query``."""
    from dinhdanh.oidc.server import HttpRequest

    return HttpRequest("POST", TOKEN_ISSUER + "/token", headers=[
        ("host", "id.dinhdanh.test"), ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", basic(client["client_id"], secret or client["client_secret"])), *headers],
        query=list(query), form=list(form), ip="127.0.0.1")


def token_answer(engine: sa.Engine, vault: Vault, request, *, general: bool = False):
    """(status, body, headers, token rows written) of the token endpoint for ``request``, in one
    transaction; ``general``: the general way (an Authlib request object, which the plain
    requests' fast paths never see)."""
    from dinhdanh.oidc.server import Provider, Request
    from dinhdanh.oidc.tables import oidc_tokens

    with engine.begin() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(oidc_tokens)).scalar()
        status, body, headers = Provider(conn, vault, TOKEN_ISSUER).create_token_response(
            Request(request) if general else request)
        after = conn.execute(sa.select(sa.func.count()).select_from(oidc_tokens)).scalar()
    return status, body, dict(headers), after - before
