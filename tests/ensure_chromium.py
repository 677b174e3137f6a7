"""Test setup: make Debian's headless Chromium available for the HTML report test.

Installs the `chromium` package with apt-get when it is missing and we are root on a Debian-like
machine; otherwise says why the browser test will be skipped. Never fails the test run.
"""

import os
import shutil
import subprocess
import sys


def main() -> int:
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        return 0
    if os.name != "posix" or not shutil.which("apt-get") or os.geteuid() != 0:
        print("ensure_chromium: chromium not found and cannot apt-get install it here; the HTML render test will skip")
        return 0
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"]):
        result = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            print(f"ensure_chromium: {' '.join(cmd)} failed: {result.stderr.strip()[-300:]}")
            return 0
    print("ensure_chromium: installed chromium")
    return 0


if __name__ == "__main__":
    sys.exit(main())
