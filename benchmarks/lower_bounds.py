"""How fast could the first core's two largest stages be in Python? A measured bound.

    python benchmarks/lower_bounds.py [--invoices 20000] [--repeat 3]

The export's mapping stage and its rendering run pesgen's general code: any mapping,
any template, every check. This script times them in one process on the benchmark's
generated invoices (``bench_export.generate``) against code written by hand for the
example mapping (``mappings/villeneuve-sur-loing.yaml``) and the ``pes-ormc`` piece, and
checks that the hand-written code gives the *same* titles, notes and bytes (it exits 1
when it does not: a bound on wrong work would mean nothing).

The hand-written mapping is the happy path only: it reads the fields the example binds
with plain dict lookups, takes texts, dates and amounts from the builder's memos (the
exact builder fills them first; a text it lacks goes through ``Builder._text``), and
leaves out what pesgen must also do on every invoice: type and blank checks, stripping
the record, the duplicate invoice and NumDette checks, the JSON path watch, problem
reporting. It is therefore a lower bound for any mapping stage that keeps pesgen's
behaviour, such as one compiled from the mapping into Python. The hand-written piece
escapes each value through a memo (as pesgen's templates do) and writes nothing a
template could not; the branches the generated invoices never take (IdTiers,
DteNaissance, ComplNom, Adr1, Adr3, CodPays, Cle1, DteAsp) are neither compared nor
timed. Figures: docs/performance.md ("Twelfth session").
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from bench_export import MAPPING, generate

from pesgen import build as B
from pesgen import filters
from pesgen.checks import checked_bank_code
from pesgen.export import open_exporter, read_invoices
from pesgen.seen import SeenInvoices


def hand_mapper(builder: Any) -> Callable[[Any], tuple[Any, list[Any]]]:
    """The example mapping's happy path, by hand: (title, notes) of a source invoice."""
    b = builder
    texts, dates, amounts, ints = b._texts, b._dates, b._amounts, b._int_amounts
    codes = b.mapping.codes
    acts, kinds, civ, seqs = (codes.activities, codes.payer_kinds, codes.civility,
                              codes.sepa_sequences)
    period = b.mapping.payment_reference.period
    methods = codes.payment_methods or {}
    holder_charset = b._limits["account.holder"].charset
    note = B._make_note

    def text(key: str, value: str, notes: list[Any], inv: str, origin: str,
             value_origin: str | None = None) -> str:
        known = texts.get((key, value))
        if known is None:  # not memoised: the exact code
            ctx = B._Ctx(origin)
            ctx.invoice = inv
            out = b._text(ctx, key, value, None, origin=value_origin)
            if ctx.problems:
                raise ValueError(f"{key}: {ctx.problems[0].message}")
            notes.extend(ctx.notes)
            return out
        for policy, detail in known[2]:
            notes.append(note(policy, inv, origin, detail, "", key))
        return known[0]

    def build(src: Any) -> tuple[Any, list[Any]]:
        r, origin, notes = src.record, src.origin, []
        number = r["number"]
        payer, pay = r["payer"], r["payment"]
        addr = payer["address"]
        lines = []
        for i, ln in enumerate(r["lines"], 1):
            act, student = ln["activity"], ln["student"]
            code = act["code"]
            a = acts[code]
            where = f"{origin}.lines[{i - 1}]"
            label = text("line.label", f"{act['label']} - {student['first_name']} "
                         f"{student['last_name']}", notes, number, origin, where)
            lines.append(B._make_line(
                number=i, product_code=a["product"], nature=a["nature"],
                amount=amounts[ln["amount"]], activity=code, label=label,
                fonction=a.get("fonction"), operation=a.get("operation"),
                quantity=ints[ln["quantity"]], unit_price=amounts[ln["unit_price"]],
                student=student["ref"], origin=where))
        entry = kinds[payer["kind"]]
        name = text("debtor.name", payer.get("last_name") or payer.get("name"), notes,
                    number, origin)
        first = text("debtor.first_name", payer["first_name"], notes, number, origin)
        raw = payer["title"]
        civility = civ[raw]
        if civility != raw:
            notes.append(note("civility", number, origin, f"'{raw}' sent as '{civility}'", "",
                              "debtor.civility"))
        ref = text("debtor.ref", payer["ref"], notes, number, origin)
        street = text("address.street", addr["street"], notes, number, origin)
        city = text("address.city", addr["city"], notes, number, origin)
        address = B._make_address(street=street, postal_code=addr["postal_code"], city=city,
                                  complement=None, locality=None, country="FR")
        debtor = B._make_debtor(
            category=entry["category"], legal_nature=entry["legal_nature"], name=name,
            address=address, kind=payer["kind"], ref=ref, civility=civility,
            first_name=first, complement_name=None, national_id=None, national_id_kind=None,
            birth_date=None, email=None)
        mandate = None
        if methods.get(pay["method"]) is True:
            m = pay["mandate"]
            iban, _ = checked_bank_code("IBAN", m["iban"])
            bic, _ = checked_bank_code("BIC", m["bic"])
            holder = text("account.holder", m["holder"], notes, number, origin)
            exported = b._normalized.get((m["holder"], holder_charset)) or \
                B.normalize(m["holder"], holder_charset, b.text_policy)
            mandate = B._make_mandate(
                rum=text("mandate.rum", m["rum"], notes, number, origin),
                signed_on=dates[m["signed_on"]], sequence=seqs[m["sequence"]],
                debit_date=dates[pay["debit_date"]],
                account=B._make_account(iban=iban, holder=holder, bic=bic),
                label=text("mandate.label", "CONSERVATOIRE VSL FACTURE " + number, notes,
                           number, origin),
                holder_differs=not B._holder_is_debtor(exported.value, debtor))
        total = sum((ln.amount for ln in lines), B._ZERO)
        title = B._make_title(
            invoice_number=number, debt_number="".join(c for c in number if c.isdigit()),
            debtor=debtor, lines=tuple(lines), total=total, origin=origin,
            invoice_date=dates[r["date"]], due_date=dates[r["due_date"]], service_from=None,
            service_to=None, object=text("title.object", "CONSERVATOIRE FACTURE " + number,
                                         notes, number, origin),
            asap_date=None, mandate=mandate, joint_debtor=None, period=period)
        return title, notes

    return build


def hand_piece() -> Callable[[Any, Any], str]:
    """The pes-ormc template's piece macro, by hand."""
    escaped: dict[str, str] = {}
    amounts: dict[Any, str] = {}

    def esc(s: str) -> str:
        e = escaped.get(s)
        if e is None:
            e = escaped[s] = (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                              .replace('"', "&#34;").replace("'", "&#39;"))
        return e

    def amount(x: Any) -> str:
        e = amounts.get(x)
        if e is None:
            e = amounts[x] = filters.amount(x)
        return e

    def piece(t: Any, doc: Any) -> str:
        d, m = t.debtor, t.mandate
        a = d.address
        o = ["<Tiers>\n<InfoTiers>\n"]
        if d.national_id:
            o.append(f'<IdTiers V="{esc(d.national_id)}"/>\n')
        if d.birth_date:
            o.append(f'<DteNaissance V="{d.birth_date.isoformat()}"/>\n')
        if d.national_id:
            o.append(f'<NatIdTiers V="{esc(d.national_id_kind)}"/>\n')
        if d.ref:
            o.append(f'<RefTiers V="{esc(d.ref)}"/>\n')
        o.append(f'<CatTiers V="{esc(d.category)}"/><NatJur V="{esc(d.legal_nature)}"/>'
                 '<TypTiers V="01"/>\n')
        if d.civility:
            o.append(f'<Civilite V="{esc(d.civility)}"/>\n')
        o.append(f'<Nom V="{esc(d.name)}"/>\n')
        if d.complement_name:
            o.append(f'<ComplNom V="{esc(d.complement_name)}"/>\n')
        if d.first_name:
            o.append(f'<Prenom V="{esc(d.first_name)}"/>\n')
        o.append('</InfoTiers>\n<Adresse>\n<TypAdr V="1"/>\n')
        if a.complement:
            o.append(f'<Adr1 V="{esc(a.complement)}"/>\n')
        o.append(f'<Adr2 V="{esc(a.street)}"/>\n')
        if a.locality:
            o.append(f'<Adr3 V="{esc(a.locality)}"/>\n')
        o.append(f'<CP V="{esc(a.postal_code)}"/><Ville V="{esc(a.city)}"/>\n'
                 f'<CodRes V="{"0" if a.resident else "1"}"/>\n')
        if a.country_code:
            o.append(f'<CodPays V="{esc(a.country_code)}"/>\n')
        o.append("</Adresse>\n")
        if m:
            o.append("<CpteBancaire>\n")
            if m.account.bic:
                o.append(f'<BIC V="{esc(m.account.bic)}"/>\n')
            o.append(f'<IBAN V="{esc(m.account.iban)}"/><TitCpte V="{esc(m.account.holder)}"/>'
                     "\n</CpteBancaire>\n")
        o.append("</Tiers>\n")
        tiers = "".join(o)
        o = [f'<Piece>\n<BlocPiece>\n<IdPce V="{t.number}"/><TypPce V="15"/><NatPce V="01"/>\n']
        if t.asap_date:
            o.append(f'<DteAsp V="{t.asap_date.isoformat()}"/>\n')
        if t.object:
            o.append(f'<ObjPce V="{esc(t.object)}"/>\n')
        o.append(f'<NumDette V="{esc(t.debt_number)}"/><Per V="{esc(t.period)}"/>\n')
        if t.cle1:
            o.append(f'<Cle1 V="{esc(t.cle1)}"/>\n')
        o.append(f'<Cle2 V="{esc(t.cle2)}"/>\n</BlocPiece>\n')
        every = doc.options["tiers_on"] == "every_line"
        for index, ln in enumerate(t.lines):
            o.append(f'<LigneDePiece>\n<BlocLignePiece>\n<InfoLignePiece>\n'
                     f'<IdLigne V="{ln.number}"/>\n')
            if ln.label:
                o.append(f'<ObjLignePce V="{esc(ln.label)}"/>\n')
            o.append(f'<CodProdLoc V="{esc(ln.product_code)}"/><Nature V="{esc(ln.nature)}"/>\n')
            if ln.fonction:
                o.append(f'<Fonction V="{esc(ln.fonction)}"/>\n')
            if ln.operation:
                o.append(f'<Operation V="{esc(ln.operation)}"/>\n')
            o.append(f'<Majo V="0"/><TvaIntraCom V="0"/><MtHT V="{amount(ln.amount)}"/>\n'
                     "</InfoLignePiece>\n")
            if m:
                o.append(f'<InfoPrelevementSEPA>\n<NatPrel V="01"/>'
                         f'<PerPrel V="{esc(m.periodicity)}"/>'
                         f'<DtePrel V="{m.debit_date.isoformat()}"/>\n'
                         f'<MtPrel V="{amount(ln.amount)}"/>'
                         f'<SequencePres V="{esc(m.sequence)}"/>\n'
                         f'<DateSignMandat V="{m.signed_on.isoformat()}"/>'
                         f'<RefUniMdt V="{esc(m.rum)}"/>\n')
                if m.label:
                    o.append(f'<LibPrel V="{esc(m.label)}"/>\n')
                if m.holder_differs:
                    o.append('<TitCpteDiff V="1"/>\n')
                o.append("</InfoPrelevementSEPA>\n")
            o.append("</BlocLignePiece>\n")
            if index == 0 or every:
                o.append(tiers)
            o.append("</LigneDePiece>\n")
        o.append("</Piece>\n")
        return "".join(o)

    return piece


def best_of(repeat: int, items: list[Any], fn: Callable[[Any], Any],
            reset: Callable[[], None] = lambda: None) -> float:
    """The fastest of ``repeat`` passes of ``fn`` over ``items``, in µs per item."""
    best = float("inf")
    for _ in range(repeat):
        reset()
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return best / len(items) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pesgen-bounds-") as work:
        source = Path(work) / "input.json"
        generate(source, args.invoices, 3)
        exporter = open_exporter(MAPPING, Path(work) / "out", date(2026, 11, 23), None, None,
                                 None)
        sources = list(read_invoices(source, exporter.mapping.input))
    builder = exporter.builder
    built = [builder.build(src) for src in sources]  # fills the memos the hand code reads
    mapper, piece = hand_mapper(builder), hand_piece()
    titles = [exporter.numbered(r.title, i) for i, r in enumerate(built, 1)]
    doc = exporter.document(1, len(titles), sum(t.total for t in titles))
    renderer = exporter.renderers[0]
    wrong = sum(mapper(src) != (r.title, r.notes) for src, r in zip(sources, built, strict=True))
    wrong += sum(piece(t, doc) != renderer.piece(t, doc) for t in titles)
    if wrong:
        print(f"{wrong} title(s) or piece(s) differ from pesgen's: the bounds mean nothing",
              file=sys.stderr)
        return 1

    def forget() -> None:  # the exact builder refuses an invoice number seen before
        builder.seen = SeenInvoices(builder.seen.key_of, builder.seen.debt_key_of)

    gc.disable()
    figures = {
        "map_pesgen_us": best_of(args.repeat, sources, builder.build, forget),
        "map_by_hand_us": best_of(args.repeat, sources, mapper),
        "render_pesgen_us": best_of(args.repeat, titles, lambda t: renderer.piece(t, doc)),
        "render_by_hand_us": best_of(args.repeat, titles, lambda t: piece(t, doc)),
    }
    gc.enable()
    print(f"{args.invoices} invoices × 3 lines, the same titles, notes and bytes; "
          f"µs per invoice, best of {args.repeat}:")
    for key, value in figures.items():
        print(f"  {key:18} {value:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
