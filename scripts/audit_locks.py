"""`make audit`: known vulnerabilities in the lock files the images install, and an honest account of what was checked.

    python scripts/audit_locks.py [--allow-unchecked] [LOCK...]      (default: every lock scripts/lock.py makes)

1. pip-audit over each lock (hashes required, no resolution: exactly the pinned files), against its default
   vulnerability service (PyPI's per-release JSON API). Where that service does not answer, pip-audit *skips* the
   package and still exits 0: an audit that checked nothing would pass. So:
2. every package pip-audit skipped is looked up in PyPI's project JSON, which lists the known vulnerabilities of
   the project's latest release: a pin that is that release is checked there; an older pin cannot be (its own
   advisories are not in that answer) and is reported as unchecked, with the latest version;
3. the run fails on any known vulnerability not accepted in .ci/audit-ignore.toml (each entry: id, reason,
   expires; an expired or malformed entry fails too), and on any unchecked pin unless --allow-unchecked, which
   lists them and counts them in the summary instead. The last line says how many pins each way checked.
"""

import argparse
import datetime
import json
import subprocess
import sys
import tomllib
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pip._internal.models.index import PyPI  # where pip's own default index answers (the repository names none)

ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ROOT / ".ci" / "audit-ignore.toml"
sys.path.insert(0, str(ROOT / "scripts"))
from lock import LOCKS  # noqa: E402  (scripts/ is not a package)


@dataclass
class Result:
    checked_by_service: set[tuple[str, str]] = field(default_factory=set)
    checked_latest: set[tuple[str, str]] = field(default_factory=set)
    unchecked: dict[tuple[str, str], str] = field(default_factory=dict)
    vulnerabilities: dict[str, dict] = field(default_factory=dict)  # id -> what and where


def accepted_ignores(today: datetime.date) -> tuple[dict[str, dict], list[str]]:
    """The ignore file's entries by id, and what is wrong with it (expired or malformed entries)."""
    if not IGNORE_FILE.is_file():
        return {}, []
    entries, problems = {}, []
    for entry in tomllib.loads(IGNORE_FILE.read_text()).get("ignore", []):
        expires = entry.get("expires")
        if not entry.get("id") or not entry.get("reason") or not isinstance(expires, datetime.date):
            problems.append(f"{IGNORE_FILE.name}: an entry needs id, reason and expires (a date): {entry}")
        elif expires < today:
            problems.append(f"{IGNORE_FILE.name}: {entry['id']} expired on {expires} ({entry['reason']})")
        else:
            entries[entry["id"]] = entry
    return entries, problems


def pip_audit(lock: Path) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "pip_audit", "-r", str(lock), "--require-hashes", "--no-deps",
                           "--disable-pip", "-f", "json", "--progress-spinner", "off", "--timeout", "15"],
                          capture_output=True, text=True)
    try:
        return json.loads(done.stdout)["dependencies"]
    except (ValueError, KeyError):
        message = f"pip-audit gave no report for {lock} (exit {done.returncode}): {done.stderr[-2000:]}"
        raise SystemExit(message) from None


def latest_release(name: str) -> tuple[str | None, list[dict], str]:
    """(latest version, its known vulnerabilities, problem) from PyPI's project JSON."""
    try:
        with urllib.request.urlopen(f"{PyPI.pypi_url}/{name}/json", timeout=15) as response:
            data = json.load(response)
    except Exception as error:  # unreachable, 404, bad JSON: the pin stays unchecked, and says why
        return None, [], f"the project JSON did not answer ({error})"
    return data["info"]["version"], [v for v in data.get("vulnerabilities", []) if not v.get("withdrawn")], ""


def audit(locks: list[Path]) -> Result:
    result, skipped = Result(), {}
    for lock in locks:
        for dependency in pip_audit(lock):
            pin = (dependency["name"], dependency.get("version") or dependency.get("skip_reason", "").rsplit("(", 1)
                   [-1].rstrip(")"))
            if "skip_reason" in dependency:
                skipped[pin] = lock
                continue
            result.checked_by_service.add(pin)
            for vulnerability in dependency["vulns"]:
                result.vulnerabilities.setdefault(vulnerability["id"], {
                    "package": f"{pin[0]}=={pin[1]}", "fixed_in": vulnerability.get("fix_versions", []),
                    "aliases": vulnerability.get("aliases", []), "locks": set()})["locks"].add(lock.name)
    with ThreadPoolExecutor(8) as pool:
        answers = dict(zip(skipped, pool.map(lambda pin: latest_release(pin[0]), skipped), strict=True))
    for pin, (latest, vulnerabilities, problem) in answers.items():
        if latest is None:
            result.unchecked[pin] = problem
        elif latest != pin[1]:
            result.unchecked[pin] = f"pinned {pin[1]}, latest {latest}: only the latest release's advisories answer"
        else:
            result.checked_latest.add(pin)
            for vulnerability in vulnerabilities:
                result.vulnerabilities.setdefault(vulnerability["id"], {
                    "package": f"{pin[0]}=={pin[1]}", "fixed_in": vulnerability.get("fixed_in", []),
                    "aliases": vulnerability.get("aliases", []), "locks": set()})["locks"].add(skipped[pin].name)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--allow-unchecked", action="store_true",
                        help="list pins no source could check instead of failing on them")
    parser.add_argument("locks", nargs="*", type=Path, help="lock files (default: all of scripts/lock.py's)")
    args = parser.parse_args()
    locks = args.locks or [ROOT / lock.path for lock in LOCKS]
    ignores, problems = accepted_ignores(datetime.date.today())
    result = audit(locks)
    failed = False
    for problem in problems:
        print(f"audit: FAIL: {problem}")
        failed = True
    for identifier, found in sorted(result.vulnerabilities.items()):
        names = {identifier, *found["aliases"]}
        accepted = next((ignores[name] for name in names if name in ignores), None)
        where = f"{found['package']} ({identifier}; fixed in {', '.join(found['fixed_in']) or 'no release yet'}; " \
                f"{', '.join(sorted(found['locks']))})"
        if accepted:
            print(f"audit: accepted until {accepted['expires']}: {where}: {accepted['reason']}")
        else:
            print(f"audit: FAIL: known vulnerability {where}")
            failed = True
    for (name, version), why in sorted(result.unchecked.items()):
        print(f"audit: {'UNCHECKED' if args.allow_unchecked else 'FAIL: unchecked'}: {name}=={version}: {why}")
    if result.unchecked and not args.allow_unchecked:
        failed = True
    pins = len(result.checked_by_service | result.checked_latest | set(result.unchecked))
    print(f"audit: {pins} pins in {len(locks)} lock files: {len(result.checked_by_service)} checked by pip-audit's "
          f"vulnerability service, {len(result.checked_latest)} checked against the advisories of their project's "
          f"latest release (PyPI's project JSON; pip-audit's service did not answer for them), "
          f"{len(result.unchecked)} UNCHECKED; {len(result.vulnerabilities)} known vulnerabilities, "
          f"{sum(1 for v in result.vulnerabilities if v in ignores)} of them accepted in {IGNORE_FILE.name}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
