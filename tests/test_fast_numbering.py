"""The shortcuts of numbering give what the general paths give: ``model.evolve`` as
``dataclasses.replace`` on every model class, ``cle1``'s one-pass sum as the digit loop,
and a numbered title as the title with its number and keys replaced."""

from __future__ import annotations

import random
from dataclasses import FrozenInstanceError, dataclass, field, fields, is_dataclass, replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pesgen import keys, model
from pesgen.export import open_exporter
from pesgen.model import Title, evolve

from .conftest import MAPPINGS
from .test_rules import RUN, TITLE

MODEL_CLASSES = [cls for cls in vars(model).values()
                 if isinstance(cls, type) and is_dataclass(cls)
                 and cls.__module__ == model.__name__]

# any value will do (the model's classes check none): values of the model's kinds, and
# bare objects, equal only to themselves, so that a value put in the wrong field shows
VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=4),
                   st.decimals(allow_nan=False, places=2), st.dates(), st.builds(object))
# but Document.options, which its __post_init__ makes a model.Options (a dict): a new
# object each time, in replace as in evolve (which falls back to it), so compared equal
OPTIONS = st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)


def _values(cls, name):
    return OPTIONS if (cls, name) == (model.Document, "options") else VALUES


def _distinct(cls, name):
    return {"x": object()} if (cls, name) == (model.Document, "options") else object()


def _same(made, expected, identical=True):
    """The same class and the same value, by default the very same object, in every
    field."""
    assert type(made) is type(expected)
    for f in fields(expected):
        if identical:
            assert getattr(made, f.name) is getattr(expected, f.name), f.name
        else:
            assert getattr(made, f.name) == getattr(expected, f.name), f.name
    assert made == expected


def test_every_model_class_is_covered():
    assert {cls.__name__ for cls in MODEL_CLASSES} >= {
        "Collectivity", "Address", "BankAccount", "Mandate", "Debtor", "Line", "Title",
        "Bordereau", "Emitter", "Document"}
    assert model.maker(model.Document) is model.Document  # the fallback is covered too


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda cls: cls.__name__)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_evolve_is_replace(cls, data):
    names = [f.name for f in fields(cls)]
    obj = cls(**{name: data.draw(_values(cls, name), label=name) for name in names})
    before = [getattr(obj, name) for name in names]
    changed = data.draw(st.lists(st.sampled_from(names), unique=True), label="changed")
    changes = {name: data.draw(_values(cls, name), label=f"new {name}") for name in changed}
    made = evolve(obj, **changes)
    _same(made, replace(obj, **changes), identical=cls is not model.Document)
    assert made is not obj
    assert all(getattr(obj, name) is value for name, value in zip(names, before, strict=True))
    with pytest.raises(FrozenInstanceError):
        setattr(made, names[0], None)


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda cls: cls.__name__)
def test_evolve_changes_each_field_alone_and_all_at_once(cls):
    """Every field a distinct object: a change dropped, put in another field or two
    fields swapped cannot go unseen (the random draws above may repeat a value)."""
    obj = cls(*[_distinct(cls, f.name) for f in fields(cls)])
    identical = cls is not model.Document
    for f in fields(cls):
        new = _distinct(cls, f.name)
        made = evolve(obj, **{f.name: new})
        _same(made, replace(obj, **{f.name: new}), identical)
    everything = {f.name: _distinct(cls, f.name) for f in reversed(fields(cls))}
    _same(evolve(obj, **everything), replace(obj, **everything), identical)
    _same(evolve(obj), obj, identical)


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda cls: cls.__name__)
def test_evolve_names_unknown_fields(cls):
    obj = cls(*[{} if (cls, f.name) == (model.Document, "options") else None
                for f in fields(cls)])
    first = fields(cls)[0].name
    with pytest.raises(TypeError, match=f"{cls.__name__} has no field\\(s\\) numero, zz$"):
        evolve(obj, zz=1, **{first: 2}, numero=3)


@dataclass(frozen=True, slots=True)
class _Checked:
    """A class whose __init__ does more than set its fields: evolve must run it, as
    replace does."""

    amount: Decimal
    label: str
    tags: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.amount < 0:
            raise ValueError("negative")
        object.__setattr__(self, "label", self.label.upper())


@dataclass(frozen=True, slots=True)
class _One:
    only: object


@dataclass(frozen=True, slots=True)
class _Empty:
    pass


def test_evolve_falls_back_to_replace_where_init_does_more():
    checked = _Checked(Decimal("1.00"), "a")
    assert model.maker(_Checked) is _Checked
    _same(evolve(checked, label="b"), replace(checked, label="b"), identical=False)
    assert evolve(checked, label="b").label == "B"
    with pytest.raises(ValueError, match="negative"):
        evolve(checked, amount=Decimal(-1))
    with pytest.raises(TypeError, match="_Checked has no field\\(s\\) colour"):
        evolve(checked, colour="red")


def test_evolve_one_and_no_field():
    one, new = _One(object()), object()
    _same(evolve(one, only=new), replace(one, only=new))
    _same(evolve(one), one)
    _same(evolve(_Empty()), _Empty())


# ---------------------------------------------------------------- numbering


def _reference_cle1(cod_col, nature_code, exercise, period, debt_number, zero="0"):
    digits = f"{cod_col}{nature_code}{exercise % 100:02d}{period}{int(debt_number):013d}"
    remainder = keys._mod11_total(digits) % 11
    if remainder == 0:
        return zero
    return "1" if 11 - remainder == 10 else str(11 - remainder)


def test_cle1_fast_sum_is_the_digit_loop():
    rnd = random.Random(11)
    for _ in range(5000):
        cod = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(0, 6)))
        nature = f"{rnd.randint(0, 99):02d}"
        period = rnd.choice(["1", "2", "9", "", "12"])
        debt = str(rnd.randint(1, 10 ** rnd.randint(1, 15) - 1))
        exercise = rnd.randint(2000, 2099)
        zero = rnd.choice(["0", "Z"])
        assert keys.cle1(cod, nature, exercise, period, debt, zero) == \
            _reference_cle1(cod, nature, exercise, period, debt, zero)
    # outside the fast path: a non-ASCII digit (int() reads it), a non-digit, too long
    assert keys.cle1("١٢٣", "00", 2026, "1", "5") == _reference_cle1("123", "00", 2026, "1", "5")
    # the fast path's last length, and one past it: CodCol + nature (2) + exer (2) + Per (1)
    # + NumDette (13)
    for digits in (keys._MOD11_MAX, keys._MOD11_MAX + 1):
        cod = "7" * (digits - 2 - 2 - 1 - 13)
        assert keys.cle1(cod, "00", 2026, "1", "5") == _reference_cle1(cod, "00", 2026, "1", "5")
    long_cod = "7" * 70
    assert keys.cle1(long_cod, "00", 2026, "1", "5") == _reference_cle1(long_cod, "00", 2026,
                                                                          "1", "5")
    with pytest.raises(ValueError):
        keys.cle1("12A", "00", 2026, "1", "5")


@pytest.mark.parametrize("cle1_kind", ["mod11", "none"])
def test_numbered_is_the_title_with_its_number_and_keys(tmp_path, cle1_kind):
    exporter = open_exporter(MAPPINGS / "villeneuve-sur-loing.yaml", tmp_path, RUN, None,
                             None, None)
    mapping = exporter.mapping
    pr = replace(mapping.payment_reference, cle1=cle1_kind)
    exporter.mapping = replace(mapping, payment_reference=pr)
    exercise, cod_col = mapping.collectivity.exercise, mapping.collectivity.cod_col
    without_keys = replace(TITLE, debt_number=None, mandate=None, cle1="3", cle2="K")
    for title in (TITLE, replace(TITLE, period="2", debt_number="7"), without_keys):
        for index in (1, 7, 99999):
            made = exporter.numbered(title, index)
            if title.debt_number is None:  # titres and vendor formats: keys left as they are
                expected = replace(title, number=index)
            else:
                key1 = (_reference_cle1(cod_col, pr.nature_code, exercise, title.period,
                                        title.debt_number, pr.cle1_zero_remainder)
                        if cle1_kind == "mod11" else None)
                expected = replace(title, number=index, cle1=key1,
                                   cle2=keys.cle2(exercise, title.period, title.debt_number))
            _same(made, expected, identical=False)
            assert type(made) is Title and title.number == 0
            with pytest.raises(FrozenInstanceError):
                made.number = 5  # still frozen
