"""Doctor checks of the backends: plugins load, uv and its Python, conda channels reachable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

from runtimed.doctor.results import CheckResult, CheckStatus, DoctorContext
from runtimed.workers.probe import PluginReport

__all__ = ["channel_url", "check_conda_channels", "check_plugins", "check_uv", "find_uv"]

PASS, WARN, FAIL = CheckStatus.PASS, CheckStatus.WARN, CheckStatus.FAIL
TOOL_TIMEOUT_S = 15.0
CHANNEL_TIMEOUT_S = 5.0
ANACONDA = "https://conda.anaconda.org"


def _pooled(ctx: DoctorContext, backend: str) -> bool:
    return ctx.effective_config.backend(backend).pool_size > 0


def check_plugins(ctx: DoctorContext, reports: list[PluginReport]) -> list[CheckResult]:
    """Each installed backend loads (in its own process) and finds its tool."""
    if not reports:
        return [CheckResult("plugins", WARN, "no backend plugins installed", "pip install runtimed-uv")]
    results = []
    for r in reports:
        check = f"plugin:{r.name}"
        if r.status == "broken":
            fix = f"reinstall it (`pip install --force-reinstall {r.distribution}`) or uninstall it"
            results.append(CheckResult(check, FAIL, f"{r.distribution} {r.version} fails to load: {r.error}", fix))
        elif r.status == "unavailable":
            status = FAIL if _pooled(ctx, r.name) else WARN
            summary = f"{r.name} loads but cannot build: {r.error}"
            fix = f"install what it needs, or set [backends.{r.name}] pool_size = 0"
            results.append(CheckResult(check, status, summary, fix))
        else:
            detail = f" ({r.detail})" if r.detail else ""
            results.append(CheckResult(check, PASS, f"{r.distribution} {r.version} loads{detail}"))
    return results


def find_uv(report: PluginReport | None = None) -> str | None:
    """uv as the uv backend found it (its availability ``detail``, from the plugin probe:
    the doctor imports no plugin), else from PATH."""
    if report is not None and report.status == "active" and report.detail and os.path.isfile(report.detail):
        return report.detail
    return shutil.which("uv")


def _run(argv: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def check_uv(ctx: DoctorContext, installed: bool, report: PluginReport | None = None) -> list[CheckResult]:
    """uv is found and runs; the Python the uv pool builds with is there."""
    uv = find_uv(report)
    needed = installed and _pooled(ctx, "uv")
    if uv is None:
        status = FAIL if needed else WARN
        return [CheckResult("uv", status, "uv not found (neither the `uv` wheel nor PATH)", "pip install uv")]
    version = _run([uv, "--version"])
    if version is None or version.returncode != 0:
        return [CheckResult("uv", FAIL, f"{uv} does not run", "pip install --force-reinstall uv")]
    results = [CheckResult("uv", PASS, f"{version.stdout.strip()} at {uv}")]
    if not installed:
        return results
    python = ctx.effective_config.backend("uv").python
    if python is None:
        ok = os.access(sys.executable, os.X_OK)
        summary = f"uv envs use this interpreter, {sys.executable}"
        results.append(CheckResult("uv-python", PASS if ok else FAIL, summary, None if ok else "reinstall runtimed"))
        return results
    found = _run([uv, "python", "find", python])
    if found is not None and found.returncode == 0:
        results.append(CheckResult("uv-python", PASS, f"python {python!r} for uv envs: {found.stdout.strip()}"))
    else:
        fix = f"`uv python install {python}` (uv may also download it on the first build)"
        results.append(CheckResult("uv-python", WARN, f"no installed Python matches {python!r}", fix))
    return results


def channel_url(channel: str) -> str:
    """A conda channel as a URL: names live on conda.anaconda.org, paths become file:// URLs."""
    if "://" in channel:
        return channel.rstrip("/")
    if channel.startswith(("/", "~", ".")):
        return Path(channel).expanduser().absolute().as_uri()
    return f"{ANACONDA}/{channel}"


def _check_channel(channel: str, has_cache: bool) -> CheckResult:
    url = channel_url(channel)
    check = f"conda-channel:{channel}"
    if url.startswith("file://"):
        path = Path(urlparse(url).path)
        if (path / "noarch" / "repodata.json").is_file():
            return CheckResult(check, PASS, f"local channel {path} has noarch/repodata.json")
        return CheckResult(
            check,
            FAIL,
            f"{path} is not a conda channel (no noarch/repodata.json)",
            "fix the path in [backends.conda] channels, or index it (`conda index`)",
        )
    target = f"{url}/noarch/repodata.json"
    try:
        request = urllib.request.Request(target, method="HEAD")
        with urllib.request.urlopen(request, timeout=CHANNEL_TIMEOUT_S) as response:
            code = response.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        status = WARN if has_cache else FAIL
        cache_note = "; builds use the cached repodata" if has_cache else " and nothing is cached"
        fix = "check the network/proxy (HTTPS_PROXY) or the channel URL"
        return CheckResult(check, status, f"{target} unreachable ({reason}){cache_note}", fix)
    if code < 400:
        return CheckResult(check, PASS, f"{url} reachable (HTTP {code})")
    return CheckResult(check, FAIL, f"{target} answers HTTP {code}", "check the channel's name or URL")


def check_conda_channels(ctx: DoctorContext, installed: bool) -> list[CheckResult]:
    """Each channel of the conda pool answers (HEAD of noarch/repodata.json; local ones on disk)."""
    if not installed or not _pooled(ctx, "conda"):
        return []
    channels = ctx.effective_config.backend("conda").channels
    if not channels:
        return [CheckResult("conda-channels", FAIL, "no conda channels configured", "set [backends.conda] channels")]
    repodata = ctx.paths.backend_cache("conda") / "repodata"
    has_cache = repodata.is_dir() and any(repodata.iterdir())
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda c: _check_channel(c, has_cache), channels))
