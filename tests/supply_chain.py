"""pip-audit over the installed, pinned requirements, saying plainly what it could and couldn't audit.

Known vulnerabilities fail the check unless listed in ALLOWED with the reason they don't apply.
pip-audit needs PyPI's (or OSV's) vulnerability database; where that is unreachable it skips every
package and still exits 0, so this script counts what was really audited and reports it.
"""

import json
import subprocess
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
# "package==version:VULN-ID": why it does not apply to Paydesk.
ALLOWED: dict[str, str] = {}


def main() -> int:
    result = subprocess.run(
        [
            str(VENV_BIN / "pip-audit"),
            "-l",
            "--format",
            "json",
            "--progress-spinner",
            "off",
            "--timeout",
            "15",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(result.stdout or "{}")
    except ValueError:
        print(f"pip-audit failed to run: {result.stderr.strip()[-500:]}", file=sys.stderr)
        return 1
    dependencies = report.get("dependencies", [])
    audited = [dep for dep in dependencies if "skip_reason" not in dep]
    findings = [
        (dep["name"], dep["version"], vuln["id"])
        for dep in audited
        for vuln in dep.get("vulns", [])
        if f"{dep['name']}=={dep['version']}:{vuln['id']}" not in ALLOWED
    ]
    if not audited:
        print(
            f"pip-audit: 0 of {len(dependencies)} packages audited: the vulnerability database is not "
            "reachable from this machine (only the package index is). Supply-chain audit NOT done here."
        )
        return 0
    for name, version, vuln_id in findings:
        print(f"pip-audit: {name} {version} has {vuln_id}", file=sys.stderr)
    print(
        f"pip-audit: {len(audited)} of {len(dependencies)} packages audited, {len(findings)} unexplained finding(s)"
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
