"""Conda envs (envs/*.yaml) agree with the pip pins (requirements.txt), and every rule names one."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import REPO

ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
# conda-forge / bioconda names of packages pip knows under another name.
CONDA_TO_PIP = {"pytorch": "torch", "pyyaml": "pyyaml"}
# In env files but not pinned in requirements.txt, and why.
NOT_IN_PIP = {
    "python": "the interpreter",
    "pip": "installs the pip section",
    "macs2": "Debian's macs package on the pip path",
    "bedtools": "Debian package on the pip path",
    "htslib": "Debian tabix/bgzip on the pip path",
    "scikit-image": "LIME's dependency; pip resolves it from lime's own requirements",
}


def _pip_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*(==|<|>=|<=)\s*([^\s#]+)", line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2) + match.group(3)
    return pins


def _env_pins(path) -> dict[str, str]:
    """name -> version spec from one env file: conda ``name=version[=build]`` and pip ``name==version``."""
    env = yaml.safe_load(path.read_text())
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s]+)$", line)
                if match:
                    pins[match.group(1).lower()] = "==" + match.group(2)
            continue
        match = re.match(r"^(?:[\w-]+::)?([A-Za-z0-9_.-]+)([=<>].*)?$", dep)
        name, spec = match.group(1), match.group(2) or ""
        # conda "x=1.2.3=build" pins the version 1.2.3; "<81" stays a bound.
        version = spec.split("=")[1] if spec.startswith("=") and not spec.startswith("==") else spec
        pins[CONDA_TO_PIP.get(name.lower(), name.lower())] = ("==" + version) if spec.startswith("=") else spec
    return pins


@pytest.mark.parametrize("path", ENV_FILES, ids=[p.name for p in ENV_FILES])
def test_env_pins_agree_with_pip(path):
    pip = _pip_pins()
    env = _env_pins(path)
    assert env.get("python") == "==3.11", f"{path.name}: python must be pinned to 3.11"
    for name, spec in env.items():
        if name in NOT_IN_PIP:
            continue
        assert name in pip, f"{path.name}: {name} is not pinned in requirements.txt"
        assert spec == pip[name], f"{path.name}: {name}{spec} but requirements.txt has {name}{pip[name]}"


def test_env_files_use_pinned_channels():
    for path in ENV_FILES:
        env = yaml.safe_load(path.read_text())
        assert env["channels"][0] == "conda-forge" and "nodefaults" in env["channels"], path.name


def _job_rules():
    """(file, rule name, source block) of every rule that runs a script or command."""
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=[ ]*(?:rule|use rule) )", smk.read_text()):
            head = re.match(r"[ ]*(?:rule|use rule) (\w+)", block)
            if head and re.search(r"\n[ ]+(script|shell|run):", block):
                yield smk, head.group(1), block


def test_every_rule_names_a_conda_env():
    """Each rule that runs a script or command has ``conda:`` with an existing env file."""
    checked = 0
    for smk, rule, block in _job_rules():
        env = re.search(r'\n[ ]+conda:\n[ ]+"([^"]+)"', block)
        assert env, f"{smk.name}: rule {rule} has no conda: env"
        assert (smk.parent / env.group(1)).resolve().is_file(), f"{smk.name}: {env.group(1)} missing"
        checked += 1
    assert checked >= 20, checked  # the split found the rules


def test_every_rule_declares_memory_and_runtime():
    """SLURM sizes each job from these; a rule without them would get the profile's blanket default."""
    for smk, rule, block in _job_rules():
        resources = re.search(r"\n[ ]+resources:\n((?:[ ]{8,}.*\n)+)", block)
        assert resources, f"{smk.name}: rule {rule} declares no resources"
        for name in ("mem_mb", "runtime"):
            assert re.search(rf"^[ ]+{name}=", resources.group(1), re.M), f"{smk.name}: rule {rule} lacks {name}"


def test_rule_scripts_import_the_package_without_installing_it():
    """Snakemake copies env files into .snakemake/conda, where a relative ``pip -e`` path points
    nowhere; so the envs install no local path, and the scripts find ``grids`` through the link in
    their own directory (Snakemake puts a script's directory on ``sys.path``)."""
    import subprocess
    import sys

    for path in ENV_FILES:
        for dep in yaml.safe_load(path.read_text())["dependencies"]:
            for line in dep.get("pip", []) if isinstance(dep, dict) else []:
                assert not re.match(r"^(-e\s|\.|/)", line), f"{path.name}: local pip install {line!r}"
    link = REPO / "workflow" / "scripts" / "grids"
    assert link.is_symlink() and link.resolve() == (REPO / "src" / "grids").resolve()
    # -S: no site-packages, so an installed grids cannot answer instead of the link.
    found = subprocess.run([sys.executable, "-S", "-c", "import sys; sys.path.append(sys.argv[1]); import grids; "
                            "print(grids.__file__)", str(link.parent)], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    assert str(link.parent) in found.stdout
