#!/usr/bin/env bash
# Checks that every C++ file git tracks is formatted as .clang-format says (clang-format, Google
# base, 100 columns). Fix with: git ls-files '*.cc' '*.h' | xargs clang-format -i
# Usage: format_check.sh <source dir>
set -euo pipefail
cd "$1"
if ! command -v clang-format >/dev/null; then
  echo "format_check: clang-format is not installed (deploy/install-deps.sh installs it)" >&2
  exit 1
fi
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "format_check: $1 is not a git checkout; nothing to check" >&2
  exit 1
fi
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ ${#files[@]} -eq 0 ]; then
  echo "format_check: no C++ files found under $1" >&2
  exit 1
fi
if ! clang-format --dry-run -Werror "${files[@]}"; then
  echo "format_check: the files above are not formatted; run: git ls-files '*.cc' '*.h' | xargs clang-format -i" >&2
  exit 1
fi
echo "format_check: ${#files[@]} files formatted"
