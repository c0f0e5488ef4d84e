"""Cell morphology: sections as data, the ball-and-stick builder, the SWC reader, discretisation."""
from __future__ import annotations

import math

import numpy as np
import pytest

from polyscale.coordinator.errors import ModelError
from polyscale.solvers.cell import (Morphology, Section, ball_and_stick, cylinder, lambda_nseg,
                                    layout_cell, read_swc)

SWC = """# a soma, one dendrite that branches, an axon
1 1 0 0 0 10 -1
2 3 0 10 0 1 1
3 3 0 60 0 1 2
4 3 -20 80 0 0.5 3
5 3 20 80 0 0.5 3
6 2 0 -10 0 0.5 1
7 2 0 -110 0 0.5 6
"""


def test_ball_and_stick_geometry_is_the_references():
    m = ball_and_stick()
    soma, dend = m.sections
    assert soma.length_um == pytest.approx(20.0) and dend.length_um == pytest.approx(500.0)
    assert soma.at(0.0)[2] == pytest.approx(-10.0) and dend.at(1.0)[2] == pytest.approx(510.0)
    assert dend.parent == "soma" and dend.parent_x == 1.0 and dend.nseg == 101


def test_cylinder_areas_and_resistances_match_closed_forms():
    # a cylinder: area pi d L, resistance per unit resistivity 4 L / (pi d^2)
    lay = layout_cell(Morphology(sections=(cylinder("soma", 100.0, 4.0, nseg=5),)), 100.0, 1.0)
    seg_area = lay.area_um2[lay.seg_node]
    np.testing.assert_allclose(seg_area, math.pi * 4.0 * 20.0, rtol=1e-12)
    # between neighbouring centres: one segment length; Ra 100 ohm cm -> MOhm: 1e-2 Ra 4 l / (pi d^2)
    r_full = 1e-2 * 100.0 * 4.0 * 20.0 / (math.pi * 16.0)
    np.testing.assert_allclose(1.0 / lay.g_ax[lay.seg_node[1:]], r_full, rtol=1e-12)
    np.testing.assert_allclose(1.0 / lay.g_ax[lay.seg_node[0]], r_full / 2, rtol=1e-12)
    assert lay.n_nodes == 5 + 2   # NEURON's zero-area nodes at both ends of the root
    assert (lay.parent[1:] < np.arange(1, lay.n_nodes)).all()


def test_cone_resistance_is_the_exact_integral():
    # a frustum from radius a to b over length l: R/Ra = l / (pi a b)
    sec = Section(name="c", points=((0, 0, 0, 4.0), (0, 0, 30, 2.0)))
    area, res = sec.piece(0.0, 1.0)
    assert res == pytest.approx(30.0 / (math.pi * 2.0 * 1.0), rel=1e-12)
    assert area == pytest.approx(math.pi * 3.0 * math.sqrt(900 + 1.0), rel=1e-12)


def test_lambda_rule_is_neurons():
    # NEURON: lambda_f(100) = 1e5 sqrt(d / (4 pi 100 Ra cm)); nseg = int((L/(0.1 lambda) + .9)/2)*2 + 1
    sec = cylinder("d", 500.0, 2.0)
    lam = 1e5 * math.sqrt(2.0 / (4 * math.pi * 100 * 100.0 * 1.0))
    assert lambda_nseg(sec, 0.1, 100.0, 1.0) == int((500 / (0.1 * lam) + 0.9) / 2) * 2 + 1 == 13


def test_swc_reader_builds_sections_and_branches(tmp_path):
    f = tmp_path / "cell.swc"
    f.write_text(SWC)
    m = read_swc(f)
    names = [s.name for s in m.sections]
    assert names[0] == "soma" and len(m.sections) == 5
    kinds = sorted(s.kind for s in m.sections)
    assert kinds == ["axon", "dend", "dend", "dend", "soma"]
    trunk = m.section("dend[0]")
    assert trunk.length_um == pytest.approx(50.0)       # its own points 2 and 3 (y 10 -> 60)
    tips = [s for s in m.sections if s.parent == "dend[0]"]
    assert len(tips) == 2 and all(s.length_um == pytest.approx(math.hypot(20, 20)) for s in tips)
    assert m.section("axon[0]").length_um == pytest.approx(100.0)


@pytest.mark.parametrize("line, lineno, words", [
    ("2 3 0 10 0 1", 3, "7 columns"),
    ("2 3 0 ten 0 1 1", 3, "numbers"),
    ("2 3 0 10 0 -1 1", 3, "radius"),
    ("2 3 0 10 0 1 9", 3, "parent 9"),
])
def test_swc_reader_names_the_bad_line(tmp_path, line, lineno, words):
    f = tmp_path / "bad.swc"
    f.write_text("# header\n1 1 0 0 0 10 -1\n" + line + "\n")
    with pytest.raises(ModelError, match=rf"bad.swc:{lineno}:.*{words}"):
        read_swc(f)


def test_bad_sections_are_refused_with_the_field():
    with pytest.raises(ModelError, match="'points'"):
        Section(name="s", points=((0, 0, 0, 1),))
    with pytest.raises(ModelError, match="'nseg'"):
        cylinder("s", 10, 1, nseg=0)
    with pytest.raises(ModelError, match="parent 'nope'"):
        Morphology(sections=(cylinder("soma", 10, 10), cylinder("d", 10, 1, parent="nope")))


def test_morphology_round_trips_through_plain_data():
    m = ball_and_stick(dend_nseg=7)
    assert Morphology.from_dict(m.to_dict()) == m


def test_an_swc_cell_discretised_by_the_lambda_rule(tmp_path):
    from polyscale.solvers.cell import CellPopulation, Insert
    f = tmp_path / "cell.swc"
    f.write_text(SWC)
    spec = CellPopulation(morphology=read_swc(f), d_lambda=0.1, mechanisms=(Insert(mechanism="pas"),))
    m = spec.discretised()
    for sec in m.sections:
        assert sec.nseg == lambda_nseg(sec, 0.1, spec.ra_ohm_cm, spec.cm_uF_cm2) and sec.nseg % 2 == 1
    lay = spec.layout()
    # every section's segments tile it: their areas add up to its lateral surface
    for k, sec in enumerate(m.sections):
        np.testing.assert_allclose(lay.area_um2[lay.nodes_of(k)].sum(), sec.piece(0.0, 1.0)[0], rtol=1e-12)
