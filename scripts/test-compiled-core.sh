#!/usr/bin/env bash
# The pure tests again, on the core compiled with mypyc as wheels ship it (setup.py): the
# development install is editable and never compiled, so this is where compiled code is tested.
# A temporary copy of the checkout is built in place, so the working tree gets no .so files.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-$PWD/.venv/bin/python}"
shared="$(cd .. && pwd)/shared"

work="$(mktemp -d -t esatrack-compiled-XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/esatrack"
git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' path; do
        [[ -e "$path" ]] && printf '%s\0' "$path"
    done | tar --null -T - -cf - | tar -xf - -C "$work/esatrack"
[[ -d "$shared" ]] && ln -s "$shared" "$work/shared"   # the sample logs, as beside a checkout

cd "$work/esatrack"
echo "compiling the core with mypyc (about a minute)..." >&2
if ! ESATRACK_MYPYC=1 "$python" setup.py build_ext --inplace >build.log 2>&1; then
    tail -n 40 build.log >&2
    echo "error: mypyc could not compile the core (see above)" >&2
    exit 1
fi
# Every listed module must import as its compiled form, or the run would test the sources.
"$python" - <<'PY'
import importlib, sys, tomllib
modules = tomllib.load(open("pyproject.toml", "rb"))["tool"]["esatrack"]["mypyc"]["modules"]
names = [m.removesuffix(".py").replace("/", ".") for m in modules]
missing = [n for n in names if not (importlib.import_module(n).__file__ or "").endswith(".so")]
if missing:
    sys.exit(f"error: not compiled: {', '.join(missing)}")
print(f"compiled: {len(names)} modules", file=sys.stderr)
PY
"$python" -m pytest -m "not integration" -p no:cacheprovider -q
