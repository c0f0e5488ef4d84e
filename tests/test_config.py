"""Loading a model from a Python config (coordinator/config.py): parameters and every way a
config can be wrong, each with a message that names the file and what to do."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import polyscale as ps
from polyscale.coordinator.config import load_model, parse_params

MODEL = """\
import polyscale as ps
model = ps.Model(seed=5, t_stop_ms=2.0)
model.solver("kick", ps.solvers.SpikeTrain(times_ms=[0.5]))
"""

BUILD = """\
import polyscale as ps

def build(n: int = 1, label="default", *, t_stop_ms=2.0):
    if n < 1:
        raise ValueError(f"n must be >= 1 (got {n})")
    model = ps.Model(seed=5, t_stop_ms=t_stop_ms)
    model.solver("kick", ps.solvers.SpikeTrain(times_ms=[0.5], size=n))
    model.metadata["label"] = label
    return model
"""


def write(tmp_path: Path, text: str, name: str = "config.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# -- parameters -------------------------------------------------------------------------------

@pytest.mark.parametrize("item, value", [
    pytest.param("x=0.5", 0.5, id="float"),
    pytest.param("x=3", 3, id="int"),
    pytest.param("x=True", True, id="bool"),
    pytest.param("x=[1, 2]", [1, 2], id="list"),
    pytest.param("x='E'", "E", id="quoted-string"),
    pytest.param("x=cortex", "cortex", id="bare-word-stays-a-string"),
    pytest.param("x=foo bar", "foo bar", id="words-stay-a-string"),
    pytest.param("x=a=b", "a=b", id="only-the-first-equals-splits"),
    pytest.param(" x = 3 ", 3, id="spaces-stripped"),
])
def test_parameter_values_are_python_literals_or_else_strings(item, value):
    parsed = parse_params([item])
    assert parsed == {"x": value}
    assert type(parsed["x"]) is type(value)


def test_several_parameters_are_collected_and_the_last_of_a_name_wins():
    assert parse_params(["a=1", "b=x", "a=2"]) == {"a": 2, "b": "x"}


@pytest.mark.parametrize("item", [
    pytest.param("scale", id="no-equals"),
    pytest.param("=3", id="no-name"),
    pytest.param("1x=3", id="name-not-an-identifier"),
    pytest.param("my-name=3", id="dash-in-name"),
])
def test_malformed_parameter_is_rejected(item):
    message = re.escape(repr(item)) + r" must be NAME=VALUE, e\.g\. -p scale=0\.5"
    with pytest.raises(ps.ConfigError, match=message):
        parse_params([item])


# -- configs that work ------------------------------------------------------------------------

def test_config_defining_model_gives_that_model(tmp_path: Path):
    model = load_model(write(tmp_path, MODEL))
    assert isinstance(model, ps.Model)
    assert (model.seed, model.t_stop_ms, list(model.solvers)) == (5, 2.0, ["kick"])


def test_build_is_called_with_the_given_parameters(tmp_path: Path):
    model = load_model(write(tmp_path, BUILD), {"n": 3, "label": "x", "t_stop_ms": 4.0})
    assert (model.solvers["kick"].size, model.metadata["label"], model.t_stop_ms) == (3, "x", 4.0)


def test_build_without_parameters_uses_its_defaults(tmp_path: Path):
    model = load_model(write(tmp_path, BUILD))
    assert (model.solvers["kick"].size, model.metadata["label"], model.t_stop_ms) == (1, "default", 2.0)


def test_build_taking_kwargs_accepts_any_parameter(tmp_path: Path):
    path = write(tmp_path, """\
        import polyscale as ps
        def build(**params):
            model = ps.Model(seed=1, t_stop_ms=1.0)
            model.solver("kick", ps.solvers.SpikeTrain())
            model.metadata.update(params)
            return model
        """)
    assert load_model(path, {"anything": 1, "else": "x"}).metadata == {"anything": 1, "else": "x"}


# -- configs that do not ----------------------------------------------------------------------

def test_unknown_parameter_is_an_error_listing_the_known_ones(tmp_path: Path):
    path = write(tmp_path, BUILD)
    with pytest.raises(ps.ConfigError, match=r"build\(\) takes no parameter 'scale' "
                                             r"\(it takes: n, label, t_stop_ms\)"):
        load_model(path, {"n": 2, "scale": 0.5})


def test_parameters_for_a_config_without_build_are_an_error(tmp_path: Path):
    with pytest.raises(ps.ConfigError, match=r"defines `model` directly, so it takes no parameters "
                                             r"\(got n\); define build\(\*\*params\)"):
        load_model(write(tmp_path, MODEL), {"n": 2})


def test_missing_config_is_an_error(tmp_path: Path):
    path = tmp_path / "nope.py"
    with pytest.raises(ps.ConfigError, match=re.escape(repr(str(path))) + " does not exist"):
        load_model(path)


@pytest.mark.parametrize("name", [pytest.param("model.txt", id="not-py"),
                                  pytest.param("folder", id="directory")])
def test_config_that_is_not_a_python_file_is_an_error(tmp_path: Path, name):
    path = tmp_path / name
    if name == "folder":
        path.mkdir()
    else:
        path.write_text(MODEL)
    with pytest.raises(ps.ConfigError, match=r"must be a Python file \(\*\.py\) that defines `model`"):
        load_model(path)


def test_config_that_raises_names_the_exception_and_the_line(tmp_path: Path):
    path = write(tmp_path, """\
        import polyscale as ps

        def helper():
            return 1 / 0

        model = helper()
        """)
    with pytest.raises(ps.ConfigError, match=r"config .*config\.py' raised ZeroDivisionError: "
                                             r"division by zero \(line 4\)") as info:
        load_model(path)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_config_that_exits_is_reported_not_propagated(tmp_path: Path):
    with pytest.raises(ps.ConfigError, match=r"raised SystemExit: 3 \(line 2\)"):
        load_model(write(tmp_path, "import sys\nsys.exit(3)\n"))


def test_interrupt_while_loading_a_config_propagates(tmp_path: Path):
    with pytest.raises(KeyboardInterrupt):
        load_model(write(tmp_path, "raise KeyboardInterrupt\n"))


def test_model_error_in_a_config_propagates_unchanged(tmp_path: Path):
    path = write(tmp_path, """\
        import polyscale as ps
        model = ps.Model(seed=-1)
        """)
    with pytest.raises(ps.ModelError, match=r"model: 'seed' must be an integer in \[0, 2\*\*63\) \(got -1\)"):
        load_model(path)


def test_build_that_raises_names_the_exception(tmp_path: Path):
    with pytest.raises(ps.ConfigError, match=r"build\(\) raised ValueError: n must be >= 1 \(got 0\)"):
        load_model(write(tmp_path, BUILD), {"n": 0})


def test_config_without_model_or_build_is_an_error(tmp_path: Path):
    with pytest.raises(ps.ConfigError, match=r"defines neither `model` nor `build\(\*\*params\)`"):
        load_model(write(tmp_path, "x = 1\n"))


@pytest.mark.parametrize("text, message", [
    pytest.param("model = 42\n", r"`model` is int, not a polyscale\.Model", id="model-int"),
    pytest.param("def build():\n    return None\n", r"build\(\) returned NoneType, not a polyscale\.Model",
                 id="build-returns-none"),
])
def test_model_of_the_wrong_type_is_an_error(tmp_path: Path, text, message):
    with pytest.raises(ps.ConfigError, match=message):
        load_model(write(tmp_path, text))


OWN_SOLVER = """\
from dataclasses import dataclass
from typing import ClassVar

import polyscale as ps


@dataclass(frozen=True, slots=True, kw_only=True)
class Own(ps.SolverSpec):
    type: ClassVar[str] = "test_config_own"
    level: ClassVar[str] = "test"
    dt_ms: float = 0.1

    def ports(self):
        return {"x": ps.Port("analog", "out", 1, "", 100_000)}


def build(t_stop_ms: float = 1.0):
    model = ps.Model(seed=1, t_stop_ms=t_stop_ms)
    model.solver("own", Own())
    return model
"""


def test_config_defining_its_own_solver_class_loads_twice_in_one_process(tmp_path: Path):
    path = write(tmp_path, OWN_SOLVER)
    first = load_model(path, {"t_stop_ms": 1.0})
    second = load_model(path, {"t_stop_ms": 2.0})     # a parameter sweep does this
    assert (first.t_stop_ms, second.t_stop_ms) == (1.0, 2.0)
