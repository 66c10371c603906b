#!/usr/bin/env bash
# The project as a pure-Python wheel for executors that do not have it installed (`make dist`):
#   scripts/build_dist.sh [OUT_DIR]    -> OUT_DIR/notellm2_batch-<version>-py3-none-any.whl.zip
# Spark puts only .zip/.egg/.jar files of --py-files on the Python path (a .whl is shipped but
# never importable), so the wheel is renamed *.whl.zip: zipimport reads it as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
out_dir=$(realpath -m "${1:-dist}")
python=${PYTHON_FOR_DIST:-.venv/bin/python}
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
# A copy of the sources: building in the tree would leave build/ and *.egg-info behind.
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' file; do
  if [ -f "$file" ] && [ ! -L "$file" ]; then cp --parents "$file" "$build"; fi
done
"$python" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$build/wheels" "$build"
mkdir -p "$out_dir"
for wheel in "$build"/wheels/*.whl; do
  mv "$wheel" "$out_dir/$(basename "$wheel").zip"
  echo "$out_dir/$(basename "$wheel").zip"
done
