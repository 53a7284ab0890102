"""Fixtures of the PayFiP tests: the example run exported into a state store (SQLite,
and PostgreSQL when PESGEN_TEST_PG_URL is set), the fake PayFiP and the notification
receiver, each a real uvicorn server on 127.0.0.1 with an ephemeral port, started and
stopped by the fixture. Every HTTP call has a bounded timeout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest

from pesgen.payfip.fake import FakePayfip
from pesgen.payfip.receiver import create_app
from pesgen.payfip.server import ServerThread
from pesgen.payfip.service import KeptClients, Link, create_link, default_factory
from pesgen.runs import export_recorded
from pesgen.store import Store

from .conftest import EXAMPLES, MAPPINGS, state_database

MAPPING = MAPPINGS / "villeneuve-sur-loing.yaml"
INPUT = EXAMPLES / "school-export.json"
RUN_DATE = date(2026, 11, 23)
TIMEOUT = 5.0
# the test's own requests (the family's browser, the fake's controls, a notification
# posted by hand) wait for servers of this process, slower on a loaded machine (two
# test workers on two cores); TIMEOUT stays pesgen's own client's (and its claims')
CALL_TIMEOUT = 60.0


def example_102_at(tmp_path: Path, total: str = "150.00") -> Path:
    """The example's input with FA-2026-00102 billed ``total`` (its second line at 7.50;
    187.50 in the example): an invoice exported again at another amount. Written to
    ``tmp_path / "again.json"``."""
    import json

    data = json.loads(INPUT.read_text(encoding="utf-8"))
    [invoice] = [i for i in data["invoices"] if i["number"] == "FA-2026-00102"]
    invoice["lines"][1]["unit_price"] = invoice["lines"][1]["amount"] = "7.50"
    invoice["total"] = total
    again = tmp_path / "again.json"
    again.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return again


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    with state_database(request.param, tmp_path) as url:
        s = Store(url)
        yield s
        s.engine.dispose()


@pytest.fixture
def exported(store, tmp_path):
    """The example billing run, exported and recorded."""
    result = export_recorded(lambda: store, MAPPING, INPUT, tmp_path / "out", RUN_DATE)
    return result


@pytest.fixture
def fake():
    payfip = FakePayfip()
    with ServerThread(payfip.app) as server:
        server.payfip = payfip
        yield server


@pytest.fixture
def receiver(store):
    # as `payfip serve` runs it: one client per endpoint kept across notifications
    with KeptClients(default_factory(timeout=TIMEOUT)) as clients, \
            ServerThread(create_app(store, clients)) as server:
        server.clients = clients
        yield server


@dataclass
class Flow:
    """One test's world: store, fake PayFiP, receiver; small helpers over real HTTP."""

    store: Store
    fake: ServerThread
    receiver: ServerThread
    out: Path

    @property
    def endpoint(self) -> str:
        return f"{self.fake.url}/tpa"

    @property
    def notify_url(self) -> str:
        return f"{self.receiver.url}/payfip/notification"

    def link(self, invoice: str = "FA-2026-00102", **kw) -> Link:
        kw.setdefault("notify_url", self.notify_url)
        return create_link(self.store, MAPPING, invoice, endpoint=self.endpoint,
                           timeout=TIMEOUT, **kw)

    def pay(self, link: Link, action: str) -> httpx.Response:
        """The family on the payment page: open it, press a button."""
        page = httpx.get(link.url, timeout=CALL_TIMEOUT)
        assert page.status_code == 200, page.text
        assert f'value="{action}"' in page.text
        return httpx.post(f"{self.endpoint}/paiementws.web",
                          data={"idop": link.id_op, "action": action}, timeout=CALL_TIMEOUT)

    def pay_cancelled(self, montant: str, invoice: str = "FA-2026-00102") -> Link:
        """The family pays by card ``montant`` cents (PayFiP reporting another amount
        than the one asked) through the link of ``invoice``'s title, cancelled
        ``--despite-payments`` after the link was made."""
        from pesgen.payfip import ledger

        run = ledger.invoice_due(self.store, "21450999400015", invoice).run_id
        link = self.link(invoice, mode="W")
        self.store.cancel(run, "wrong amounts", despite_payments=True)
        self.control("tamper", {"idop": link.id_op, "fields": {"montant": montant}})
        self.pay(link, "card")
        return link

    def control(self, path: str, payload: dict) -> dict:
        answer = httpx.post(f"{self.fake.url}/_fake/{path}", json=payload, timeout=CALL_TIMEOUT)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def fake_operations(self) -> list[dict]:
        return httpx.get(f"{self.fake.url}/_fake/operations", timeout=CALL_TIMEOUT).json()

    def notify(self, id_op: str, key: str = "idop") -> httpx.Response:
        return httpx.post(self.notify_url, data={key: id_op}, timeout=CALL_TIMEOUT)

    def reconcile(self):
        from pesgen.payfip.service import reconcile

        return reconcile(self.store, default_factory(timeout=TIMEOUT))


@pytest.fixture
def flow(store, exported, fake, receiver, tmp_path):
    return Flow(store, fake, receiver, tmp_path / "out")
