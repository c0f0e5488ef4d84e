"""The facade: what `import polyscale as ps` exports is pinned (httpx test_exported_members)."""
import polyscale as ps


def test_exported_members_are_pinned():
    assert sorted(ps.__all__) == sorted([
        "__version__", "Model", "run", "check", "load", "load_model", "Run", "Plan",
        "solvers", "adapters", "probes",
        "PolyscaleError", "ModelError", "ConfigError", "RunFileError", "SolverError",
        "ProbeError", "TransportError", "ProtocolError",
        "SolverSpec", "AdapterSpec", "ProbeSpec", "SolverContext", "AdapterContext", "ProbeInfo",
        "Port", "Spikes", "Samples", "SignalSpec", "WindowResult", "register",
    ])
    for name in ps.__all__:
        assert hasattr(ps, name), name


def test_errors_form_the_documented_hierarchy():
    for err in (ps.ModelError, ps.ConfigError, ps.RunFileError, ps.SolverError, ps.ProbeError,
                ps.TransportError):
        assert issubclass(err, ps.PolyscaleError)
    assert issubclass(ps.ProtocolError, ps.TransportError)
    assert issubclass(ps.ModelError, ValueError)


def test_the_four_folders_install_as_subpackages():
    import polyscale.adapters
    import polyscale.coordinator
    import polyscale.probes
    import polyscale.solvers
    assert ps.solvers is polyscale.solvers and ps.adapters is polyscale.adapters
    assert polyscale.coordinator.__name__ == "polyscale.coordinator"
