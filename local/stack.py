"""Starts, watches and stops pixport's local stack: MariaDB, the Data API
server, the S3 server and the Lambda Runtime API emulator (running the
resizer's `bootstrap` when one is built).

Standard library only, so it runs before any project venv exists. Invoked via
the `local/stack` wrapper; see local/README.md for the contract.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 30.0
# `local/mariadb start`: initialising a fresh data dir and a first start on
# a loaded 2-core machine (its own wait for the server is 60 s).
MARIADB_TIMEOUT = 180.0


PORTS_ENV = ROOT / "local" / "ports.env"


def read_ports_env(path: Path = PORTS_ENV) -> dict[str, str]:
    """The Python reader of local/ports.env (the tests use it through
    `load_env`): one `KEY=value` a line, taken literally; blank lines and `#`
    comments skipped. As strict as the Rust one (local/env): a line that is
    not `KEY=value`, a key that is not an identifier, or one given twice is
    an error rather than a value nobody meant."""
    out: dict[str, str] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not eq:
            raise ValueError(f"{path} line {n}: expected KEY=value")
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key) or key in out:
            raise ValueError(f"{path} line {n}: the key {key!r} is not A-Z, 0-9 and _, or is given twice")
        out[key] = value
    return out


def load_env() -> dict[str, str]:
    """local/ports.env under the caller's environment: a variable the caller
    set to a non-empty value wins, as in scripts/env.sh and local/env."""
    env = dict(os.environ)
    for key, value in read_ports_env().items():
        if not env.get(key):
            env[key] = value
    state = Path(env.get("PIXPORT_STATE") or ROOT / ".state")
    env["PIXPORT_STATE"] = str(state)
    env.setdefault("CARGO_TARGET_DIR", str(Path.home() / ".cache" / "pixport" / "target"))
    env.setdefault("PIXPORT_S3_ROOT", str(state / "s3"))
    env.setdefault("PIXPORT_LAMBDA_STATE", str(state / "lambda"))
    # The bootstrap loads resizer.wasm from beside itself in the Lambda zip;
    # locally it is the wasm32-wasip1 build output.
    wasm = Path(env["CARGO_TARGET_DIR"]) / "wasm32-wasip1" / "release" / "resizer.wasm"
    if wasm.is_file():
        env.setdefault("PIXPORT_MODULE", str(wasm))
    env.setdefault("PIXPORT_S3_NOTIFICATIONS", str(ROOT / "local" / "s3" / "notifications.json"))
    # deploy/template.yaml's identities and policies, resolved by local/iam.py.
    env.setdefault("PIXPORT_IAM_POLICIES", str(state / "iam.json"))
    return env


ENV = load_env()
STATE = Path(ENV["PIXPORT_STATE"])
PIDS = STATE / "stack.pids"
LOGS = STATE / "logs"
PROFILE = ENV.get("PIXPORT_LOCAL_PROFILE", "local")


def say(msg: str) -> None:
    print(f"local/stack: {msg}", file=sys.stderr, flush=True)


def has_dataapi() -> bool:
    return (ROOT / "local" / "dataapi" / "Cargo.toml").is_file()


def has_mariadb() -> bool:
    return os.access(ROOT / "local" / "mariadb", os.X_OK)


def bin_dir() -> Path:
    return Path(ENV["CARGO_TARGET_DIR"]) / ("debug" if PROFILE == "dev" else PROFILE)


def build() -> None:
    """One cargo call for every local tool: a no-op when they are fresh."""
    if ENV.get("PIXPORT_STACK_NO_BUILD") == "1":
        return
    packages = ["pixport-local-s3", "pixport-local-runtime"] + (["pixport-local-dataapi"] if has_dataapi() else [])
    if not ENV.get("PIXPORT_BOOTSTRAP"):
        packages.append("pixport-lambda")
    cmd = ["cargo", "build", "--quiet", "--profile", PROFILE]
    for p in packages:
        cmd += ["-p", p]
    t = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, env=ENV, check=True)
    # The module the Lambda runs, exactly as it ships.
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1", "-p", "resizer-wasi",
                    "--bin", "resizer"], cwd=ROOT, env=ENV, check=True)
    ENV.setdefault("PIXPORT_MODULE", str(Path(ENV["CARGO_TARGET_DIR"]) / "wasm32-wasip1" / "release" / "resizer.wasm"))
    if time.monotonic() - t > 2:
        say(f"built {', '.join(packages)} ({PROFILE}) in {time.monotonic() - t:.0f} s")


def bootstrap_path() -> Path | None:
    explicit = ENV.get("PIXPORT_BOOTSTRAP")
    if explicit:
        return Path(explicit)
    built = bin_dir() / "bootstrap"
    return built if built.is_file() else None


def addr(name: str) -> tuple[str, int]:
    host, port = ENV[name].rsplit(":", 1)
    return host, int(port)


def services() -> list[dict]:
    """What to run, in start order, with how to tell that each is ready."""
    out = []
    if has_dataapi():
        out.append({"name": "dataapi", "cmd": [str(bin_dir() / "pixport-local-dataapi")], "addr": "PIXPORT_DATAAPI_ADDR"})
    out.append({"name": "s3", "cmd": [str(bin_dir() / "pixport-local-s3")], "addr": "PIXPORT_S3_ADDR"})
    runtime = [str(bin_dir() / "pixport-local-runtime")]
    boot = bootstrap_path()
    if boot is not None:
        runtime += ["--bootstrap", str(boot)]
    out.append({"name": "runtime", "cmd": runtime, "addr": "PIXPORT_RUNTIME_API_ADDR", "http": "/_status"})
    return out


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def http_ok(host: str, port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def ready(svc: dict) -> bool:
    host, port = addr(svc["addr"])
    if "http" in svc:
        return http_ok(host, port, svc["http"])
    return port_open(host, port)


def tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def read_pids() -> tuple[dict[str, int], bool]:
    """Pids of the background stack, and whether it started MariaDB."""
    try:
        data = json.loads(PIDS.read_text())
        return {k: int(v) for k, v in data["pids"].items()}, bool(data.get("mariadb"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}, False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def mariadb_alive() -> bool:
    return has_mariadb() and subprocess.run(
        [str(ROOT / "local" / "mariadb"), "status"], cwd=ROOT, env=ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def start_mariadb() -> tuple[bool, bool]:
    """(running, started here): a server someone else started is reused and left running."""
    if not has_mariadb():
        say("warning: local/mariadb not found; the Data API will have no database")
        return False, False
    if ENV.get("PIXPORT_STACK_NO_MARIADB") == "1":
        return mariadb_alive(), False
    already = mariadb_alive()
    try:
        r = subprocess.run([str(ROOT / "local" / "mariadb"), "start"], cwd=ROOT, env=ENV,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=MARIADB_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        say(f"warning: local/mariadb start did not finish within {MARIADB_TIMEOUT:.0f} s; continuing without it\n{out}")
        return mariadb_alive(), False
    if r.returncode != 0:
        say(f"warning: MariaDB did not start; the Data API will fail queries:\n{r.stdout.strip()}")
        return False, False
    return True, not already


def stop_mariadb() -> None:
    if has_mariadb():
        subprocess.run([str(ROOT / "local" / "mariadb"), "stop"], cwd=ROOT, env=ENV,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def resolve_iam() -> None:
    """Writes $PIXPORT_IAM_POLICIES from deploy/template.yaml (local/iam.py,
    which needs PyYAML: the project's venv, else this Python if it has it)."""
    venv = ROOT / ".venv" / "bin" / "python"
    python = str(venv) if venv.exists() else sys.executable
    r = subprocess.run([python, str(ROOT / "local" / "iam.py")], cwd=ROOT, env=ENV, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        hint = "" if venv.exists() else " (no .venv: run ./run setup)"
        raise SystemExit(f"local/stack: the IAM policies could not be resolved{hint}:\n{r.stdout.strip()}")


def launch(background: bool) -> dict[str, subprocess.Popen]:
    """Starts every service and waits until all answer; stops them all on failure."""
    for svc in services():
        host, port = addr(svc["addr"])
        if port_open(host, port):
            raise SystemExit(f"local/stack: {svc['addr']}={host}:{port} is already in use "
                             f"(another stack? try `local/stack stop`)")
    resolve_iam()
    LOGS.mkdir(parents=True, exist_ok=True)
    procs: dict[str, subprocess.Popen] = {}
    try:
        for svc in services():
            log = open(LOGS / f"{svc['name']}.log", "ab")
            procs[svc["name"]] = subprocess.Popen(
                svc["cmd"], cwd=ROOT, env=ENV, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                # Background children get their own session so the caller's
                # Ctrl-C does not reach them; `stop` ends them by pid.
                start_new_session=background,
            )
            log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        pending = {s["name"]: s for s in services()}
        while pending:
            for name, svc in list(pending.items()):
                if procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited ({procs[name].returncode}):\n{tail(LOGS / f'{name}.log')}")
                if ready(svc):
                    del pending[name]
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready within {READY_TIMEOUT:.0f} s: {', '.join(pending)}")
            time.sleep(0.02)
        migrate()
    except BaseException as e:
        terminate(procs)
        if isinstance(e, RuntimeError):
            raise SystemExit(f"local/stack: {e}")
        raise
    return procs


def migrate() -> None:
    """Brings the schema up to date through the Data API, as in AWS
    (`./run migrate`, scripts/migrate.py; it needs the project's venv)."""
    python = ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        say("warning: no .venv (run ./run setup); schema not migrated")
        return
    r = subprocess.run([str(python), str(ROOT / "scripts" / "migrate.py")], cwd=ROOT, env=ENV,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"migrations failed:\n{r.stdout.strip()}")


def terminate(procs: dict[str, subprocess.Popen] | dict[str, int], grace: float = 5.0) -> None:
    pids = {n: (p.pid if isinstance(p, subprocess.Popen) else p) for n, p in procs.items()}
    for pid in pids.values():
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    for name, pid in pids.items():
        p = procs[name]
        while time.monotonic() < deadline:
            if isinstance(p, subprocess.Popen):
                if p.poll() is not None:
                    break
            elif not alive(pid):
                break
            time.sleep(0.02)
        else:
            say(f"{name} (pid {pid}) ignored SIGTERM; killing")
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def banner(seconds: float, db: bool) -> str:
    e = ENV
    boot = bootstrap_path()
    lines = [
        f"pixport local stack ready in {seconds:.2f} s (data in {STATE}, logs in {LOGS})",
        f"  S3        http://{e['PIXPORT_S3_ADDR']}  bucket {e['PIXPORT_BUCKET']}, events -> Lambda "
        f"(rules: {Path(e['PIXPORT_S3_NOTIFICATIONS']).relative_to(ROOT) if Path(e['PIXPORT_S3_NOTIFICATIONS']).is_relative_to(ROOT) else e['PIXPORT_S3_NOTIFICATIONS']})",
    ]
    if has_dataapi():
        lines.append(f"  Data API  http://{e['PIXPORT_DATAAPI_ADDR']}  database {e['PIXPORT_DB_NAME']}")
        lines.append(f"            resourceArn {e['PIXPORT_DB_CLUSTER_ARN']}")
        lines.append(f"            secretArn   {e['PIXPORT_DB_SECRET_ARN']}  (master user: migrations, tests)")
        for role, prefix in (("worker", "PIXPORT_DB_EDGE"), ("Lambda", "PIXPORT_DB_RESIZER")):
            if e.get(f"{prefix}_SECRET_ARN"):
                lines.append(f"            secretArn   {e[prefix + '_SECRET_ARN']}  ({role}: {e[prefix + '_USER']})")
    lines.append(f"  MariaDB   127.0.0.1:{e['PIXPORT_MARIADB_PORT']}" + ("" if db else "  (NOT running)"))
    lines.append(f"  Lambda    http://{e['PIXPORT_RUNTIME_API_ADDR']}  function {e['PIXPORT_FUNCTION_NAME']}, "
                 f"bootstrap {boot if boot else '(none: invocations queue until a runtime polls)'}")
    lines.append(f"  Region    {e['PIXPORT_REGION']}")
    lines.append(f"  IAM       {e['PIXPORT_IAM_POLICIES']} (deploy/template.yaml's policies, enforced)")
    for who, prefix in (("worker (EdgeUser)", "PIXPORT"), ("Lambda (ResizeFunctionRole)", "PIXPORT_LAMBDA"),
                        ("admin (allowed everything)", "PIXPORT_ADMIN")):
        lines.append(f"  Credentials of the {who}")
        lines.append(f"               AWS_ACCESS_KEY_ID={e[prefix + '_ACCESS_KEY_ID']}")
        lines.append(f"               AWS_SECRET_ACCESS_KEY={e[prefix + '_SECRET_ACCESS_KEY']}")
    return "\n".join(lines)


def running() -> dict[str, int]:
    return {n: p for n, p in read_pids()[0].items() if alive(p)}


def cmd_start(background: bool) -> int:
    if background and running():
        if all(ready(s) for s in services()):
            say("already running")
            print(banner(0.0, True))
            return 0
        cmd_stop()
    build()
    t0 = time.monotonic()
    db, own_db = start_mariadb()
    try:
        procs = launch(background)
    except BaseException:
        if own_db:
            stop_mariadb()
        raise
    seconds = time.monotonic() - t0
    if background:
        PIDS.write_text(json.dumps({"pids": {n: p.pid for n, p in procs.items()}, "mariadb": own_db}))
        print(banner(seconds, db), flush=True)
        return 0
    print(banner(seconds, db) + "\n  Ctrl-C stops everything.", flush=True)
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    while not stopping:
        for name, p in procs.items():
            if p.poll() is not None:
                say(f"{name} exited ({p.returncode}); stopping the stack:\n{tail(LOGS / f'{name}.log')}")
                stopping, code = True, 1
        time.sleep(0.2)
    say("stopping")
    terminate(procs)
    if own_db:
        stop_mariadb()
    say("stopped; data kept in " + str(STATE))
    return code


def cmd_stop() -> int:
    pids, own_db = read_pids()
    live = {n: p for n, p in pids.items() if alive(p)}
    if live:
        terminate(live)
    if own_db:
        stop_mariadb()
    PIDS.unlink(missing_ok=True)
    say("stopped" if live else "nothing was running")
    return 0


def cmd_status() -> int:
    ok = True
    for svc in services():
        host, port = addr(svc["addr"])
        up = ready(svc)
        ok &= up
        print(f"{svc['name']:8} {host}:{port}  {'ready' if up else 'down'}")
    if has_mariadb():
        r = subprocess.run([str(ROOT / "local" / "mariadb"), "status"], env=ENV, capture_output=True, text=True)
        print(f"mariadb  {(r.stdout or r.stderr).strip()}")
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "up"
    if cmd == "up":
        return cmd_start(background=False)
    if cmd == "start":
        return cmd_start(background=True)
    if cmd == "stop":
        return cmd_stop()
    if cmd == "status":
        return cmd_status()
    print(__doc__ + "\nusage: local/stack up|start|stop|status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    if shutil.which("cargo") is None and ENV.get("PIXPORT_STACK_NO_BUILD") != "1":
        say("cargo not on PATH; set PIXPORT_STACK_NO_BUILD=1 to use already built binaries")
    sys.exit(main(sys.argv[1:]))
