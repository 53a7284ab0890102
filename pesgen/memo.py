"""Bounded memoisation of pure results: values that repeat across invoices (cities,
labels, amounts, dates, bank accounts) are worked out once per process."""

from __future__ import annotations

from typing import Any

LIMIT = 50_000


def remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    """Memoise a pure result; a memo that outgrows its bound starts afresh (flat memory
    on inputs where nothing repeats)."""
    if len(memo) >= LIMIT:
        memo.clear()
    memo[key] = value


_BANK_CODES: dict[tuple[str, str], str] = {}  # (stdnum module, as given) -> compact, valid


def bank_code(module: Any, raw: str) -> str:
    """An IBAN or BIC as python-stdnum compacts it, once checked (``stdnum.iban`` or
    ``stdnum.bic`` as ``module``). Raises stdnum's ``ValidationError`` when invalid;
    valid ones are memoised."""
    key = (module.__name__, raw)
    code = _BANK_CODES.get(key)
    if code is None:
        code = module.validate(module.compact(raw))
        remember(_BANK_CODES, key, code)
    return code
