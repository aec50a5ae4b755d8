#!/usr/bin/env bash
# Print the path of a working Python >= 3.12 (the Lambda runtime this project deploys to).
# Order: $PYTHON if set; python3.12, python3.13, python3 on PATH; then pyenv's versions, oldest first
# (3.12 is the Lambda runtime the project is tested on).
# A name that exists but does not run (an unselected pyenv shim, say) is skipped.
set -u

works() {
  "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

if [ -n "${PYTHON:-}" ]; then
  if works "$PYTHON"; then command -v "$PYTHON" 2>/dev/null || echo "$PYTHON"; exit 0; fi
  echo "PYTHON=$PYTHON is not a working Python 3.12 or newer" >&2
  exit 1
fi

for name in python3.12 python3.13 python3; do
  if path=$(command -v "$name" 2>/dev/null) && works "$path"; then echo "$path"; exit 0; fi
done

root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for candidate in $(ls -d "$root"/versions/3.1[2-9]* "$root"/versions/3.[2-9][0-9]* 2>/dev/null | sort -V); do
  if works "$candidate/bin/python3"; then echo "$candidate/bin/python3"; exit 0; fi
done

cat >&2 <<'MSG'
No Python 3.12 or newer was found (tried $PYTHON, python3.13, python3.12, python3 and pyenv's versions).
Install one (for example `pyenv install 3.12`) or point PYTHON at it: make test PYTHON=/path/to/python3.12
MSG
exit 1
