#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium for the browser tests (tests/test_book.py).
# Playwright drives that binary through `executable_path`: its own browser download is never used.
#
# - chromium already there: nothing to do;
# - missing and we are root with apt-get: install Debian's `chromium` package;
# - missing otherwise: say so. With CI set this is an error; on a laptop the browser tests then skip.
set -euo pipefail

chromium=/usr/bin/chromium

if [[ -x "$chromium" ]]; then
  echo "browser: $("$chromium" --version 2>/dev/null || echo "$chromium")"
  exit 0
fi

if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "browser: installing Debian's chromium (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium fonts-liberation fonts-dejavu-core >/dev/null
  echo "browser: $("$chromium" --version)"
  exit 0
fi

message="no $chromium, and this script can install it only as root on Debian/Ubuntu (apt-get install chromium)"
if [[ -n "${CI:-}" ]]; then
  echo "error: $message" >&2
  exit 1
fi
echo "browser: $message; the browser tests will be skipped"
