"""Runs README.md's shell examples, in order, in one bash process, against a
running stack, so the README cannot drift from what the API does.

Usage: run_examples.py README.md http://127.0.0.1:<api port>

Every ```sh block runs, except one preceded by `<!-- readme-test: skip ... -->`
(make itself, AWS deployments). `http://127.0.0.1:9000` (make dev) is replaced by
the given URL, and so is the admin CLI's `--local` (which means that address). The script must exit 0 (`set -euo pipefail`: a `$(… | field x)`
that finds no `x` stops it), no answer may be a 5xx, and the error answers
(problem+json `code`, or the provisioner's `errorType`) of each block must be
exactly those its `# → <status> <code>` comments announce, in order.
"""

import json
import re
import subprocess
import sys

DEV_API = "http://127.0.0.1:9000"
MARKER = "@@readme-block"


def blocks(readme):
    """The runnable ```sh blocks: (first line number, code)."""
    found, lines = [], readme.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```sh":
            previous = next((l for l in reversed(lines[:index]) if l.strip()), "")
            start, code = index + 1, []
            index += 1
            while lines[index].strip() != "```":
                code.append(lines[index])
                index += 1
            if not previous.strip().startswith("<!-- readme-test: skip"):
                found.append((start + 1, "\n".join(code)))
        index += 1
    return found


def answers(output):
    """Every JSON object printed on a line of its own."""
    parsed = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError:
                raise SystemExit(f"not JSON: {line[:200]}")
    return parsed


def main():
    readme_path, api = sys.argv[1], sys.argv[2]
    runnable = blocks(open(readme_path, encoding="utf-8").read())
    if len(runnable) < 4:
        raise SystemExit(f"only {len(runnable)} runnable blocks found: the README lost its examples?")
    script = ["set -euo pipefail"]
    for number, (_, code) in enumerate(runnable):
        script.append(f"echo {MARKER} {number}")
        script.append(code.replace(DEV_API, api).replace("fleetgate --local ", f"fleetgate --endpoint {api} "))
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)], capture_output=True, text=True, timeout=600
    )
    outputs = re.split(rf"^{MARKER} (\d+)$", result.stdout, flags=re.M)
    by_block = {int(outputs[i]): outputs[i + 1] for i in range(1, len(outputs) - 1, 2)}
    failures = []
    if result.returncode != 0:
        ran = max(by_block, default=-1)
        line = runnable[ran][0] if ran >= 0 else "?"
        failures.append(f"the examples stopped with exit code {result.returncode} in the block at README line {line}:\n{result.stderr[-2000:]}")
    checked = 0
    for number, (line, code) in enumerate(runnable):
        if number not in by_block:
            continue
        expected = re.findall(r"# → \d{3} ([a-z_]+)|# → ([a-z_]+)", code)
        expected = [a or b for a, b in expected]
        got = []
        for answer in answers(by_block[number]):
            checked += 1
            status = answer.get("status")
            if isinstance(status, int) and status >= 500 or answer.get("errorType") == "internal_error":
                failures.append(f"README line {line}: a server error: {answer}")
            if "errorType" in answer:
                got.append(answer["errorType"])
            elif "type" in answer and "code" in answer and "status" in answer:
                got.append(answer["code"])
        if got != expected:
            failures.append(f"README line {line}: error answers {got}, the comments announce {expected}")
    if failures:
        print("\n\n".join(failures), file=sys.stderr)
        print("--- output ---\n" + result.stdout[-4000:], file=sys.stderr)
        raise SystemExit(1)
    print(f"README examples: {len(runnable)} blocks ran as pasted, {checked} answers checked")


if __name__ == "__main__":
    main()
