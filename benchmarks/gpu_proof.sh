#!/usr/bin/env bash
# Prove hw5's GPU parts on a CUDA machine, end to end, with one command:
#
#   VENV=/path/to/venv bash benchmarks/gpu_proof.sh [--keep-going] [WORK_DIR]
#
# Run it from the repository root (it finds the root from its own path too). VENV is a virtual
# environment holding deepgrade (pip install -e .) and a CUDA build of torch. WORK_DIR (default:
# a new temporary folder) receives every result file and log. Steps, each ending in one summary
# line with its time:
#   1. deepgrade doctor --gpu: every check a GPU runner needs passes. A failure stops the run
#      here (--keep-going runs the other steps anyway).
#   2. deepgrade grade solutions/hw5 -a hw5 --runner gpu: the reference gets every point of the
#      GPU tests (mlp_gpu, mlp_full_mnist).
#   3. the same on assignments/hw5 (the stubs): every GPU test fails, 0 points.
#   4. pytest assignments/hw5 -m mlp_gpu on the reference, as the project's own tests run a
#      visible suite on it (tests/test_plugin.py): in a copy of the course whose stubs are
#      replaced by the reference modules. The GPU tests carry the `gpu` marker; the plugin adds
#      each test's part (mlp_gpu) as a marker too, which is what -m selects here.
#   5. deepgrade grade solutions/hw5 --runner cpu, then deepgrade merge of that with step 2's
#      result: full marks and nothing left deferred.
# Exit status: 0 when every expectation holds, 1 when one fails, 2 for a usage error.
#
# The full-MNIST part trains on the four official MNIST IDX files (train-images-idx3-ubyte.gz
# and friends, 11 MB): put them in a folder and set DEEPGRADE_DATA_DIR to it (step 1 checks
# their SHA-256). Without them that part cannot be graded and steps 1 and 2 fail.
#
# On a device machine that reaches no package registry, carry the environment with the tree:
#   here, once (a folder git ignores, carried with the working tree):
#     echo /.whl/ >> .git/info/exclude
#     python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#         --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#         mlxtend junitparser pydantic pydantic-core annotated-types typing-inspection copydetect
#     (name each dependency of pyproject.toml that the machine's image lacks, and theirs; torch
#      stays the image's own CUDA build)
#   there:
#     python3 -m venv --system-site-packages /tmp/dg && /tmp/dg/bin/pip install -q --no-index --no-deps .whl/*.whl
#     /tmp/dg/bin/pip install -q --no-index --no-deps --no-build-isolation -e .
#     DEEPGRADE_DATA_DIR=$PWD/.mnist VENV=/tmp/dg bash benchmarks/gpu_proof.sh "$OUT"
set -u -o pipefail

keep_going=0
work=""
for arg in "$@"; do
    case "$arg" in
        --keep-going) keep_going=1 ;;
        -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d'; exit 0 ;;
        -*) echo "gpu_proof: unknown option $arg (see --help)" >&2; exit 2 ;;
        *) work="$arg" ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root" || exit 2
if [[ -z "${VENV:-}" ]]; then
    echo "gpu_proof: set VENV to the virtual environment that holds deepgrade and a CUDA build of torch" >&2
    exit 2
fi
py="$VENV/bin/python"
if [[ ! -x "$py" ]]; then
    echo "gpu_proof: $py does not exist: VENV=$VENV is not a virtual environment" >&2
    exit 2
fi
if [[ -z "$work" ]]; then
    work="$(mktemp -d "${TMPDIR:-/tmp}/deepgrade-gpu-proof.XXXXXX")" || exit 2
fi
mkdir -p "$work" || exit 2
work="$(cd "$work" && pwd)"

summary=()
failed=0
t_all="$(date +%s.%N)"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# record STATUS STEP SECONDS DETAIL: one summary line; any status but ok fails the run.
record() {
    summary+=("$(printf '%-4s  %-46s %7ss  %s' "$1" "$2" "$3" "$4")")
    printf '==> %s: %s (%ss) %s\n' "$2" "$1" "$3" "$4"
    [[ "$1" == ok ]] || failed=1
}

finish() {
    echo
    echo "gpu_proof summary (GPU: $gpu_name; results in $work)"
    printf '  %s\n' "${summary[@]}"
    echo "  total $(since "$t_all") s: $([[ $failed == 0 ]] && echo PASS || echo FAIL)"
    exit "$failed"
}

# check_results FILE full|zero|cpu|merged: one line saying what FILE holds; exit 1 if unexpected.
check_results() {
    "$py" - "$1" "$2" <<'PY'
import collections, json, sys

path, want = sys.argv[1], sys.argv[2]
try:
    with open(path, encoding="utf-8") as fh:
        r = json.load(fh)
except (OSError, ValueError) as exc:
    print(f"no result: {exc}")
    sys.exit(1)
tests = r.get("tests", [])
status = lambda t: (t.get("extra_data") or {}).get("deepgrade_status")
if want == "merged":
    top = (r.get("extra_data") or {}).get("max_score", 0)
    merged = (r.get("extra_data") or {}).get("merged") or {}
    left = merged.get("still_deferred")
    print(f"{r.get('score', 0):.2f} / {top:g} points; {merged.get('gpu_tests_filled')} GPU tests filled, "
          f"{left} still deferred")
    bad = [t for t in tests if status(t) != "passed"]
    ok = abs(r.get("score", 0) - top) < 1e-6 and left == 0 and not bad
elif want == "cpu":
    cpu = [t for t in tests if "gpu" not in (t.get("tags") or [])]
    deferred = [t for t in tests if "gpu" in (t.get("tags") or []) and status(t) == "deferred"]
    print(f"CPU tests: {sum(t['score'] for t in cpu):g} / {sum(t['max_score'] for t in cpu):g} points; "
          f"{len(deferred)} GPU tests deferred")
    bad = [t for t in tests if t not in deferred and status(t) != "passed"]
    ok = bool(cpu) and bool(deferred) and not bad
else:
    gpu = [t for t in tests if "gpu" in (t.get("tags") or [])]
    got = sum(t["score"] for t in gpu)
    top = sum(t["max_score"] for t in gpu)
    counts = collections.Counter(status(t) for t in gpu)
    print(f"GPU tests: {got:g} / {top:g} points; "
          + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none graded"))
    if want == "full":
        bad = [t for t in gpu if status(t) != "passed"]
        ok = bool(gpu) and not bad and abs(got - top) < 1e-6
    else:
        bad = [t for t in gpu if status(t) != "failed"]
        ok = bool(gpu) and not bad and got == 0
for t in bad:
    first = (t.get("output") or "").strip().splitlines()[:1]
    print(f"    {t['name']}: {status(t)}: {first[0][:300] if first else ''}")
sys.exit(0 if ok else 1)
PY
}

# The environment: deepgrade installed (its pytest plugin is an entry point), torch, the GPU.
gpu_name="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
env_line="$("$py" - <<'PY' 2>&1
import importlib.metadata as md
import torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
print(f"deepgrade {md.version('deepgrade')}, torch {torch.__version__} (CUDA {torch.version.cuda}), {gpu}")
PY
)"
env_rc=$?
[[ -n "$gpu_name" ]] || gpu_name="$(echo "$env_line" | sed -n 's/.*), //p')"
[[ -n "$gpu_name" ]] || gpu_name="unknown"
echo "gpu_proof: $env_line"
echo "gpu_proof: GPU $gpu_name; results in $work"
if [[ $env_rc != 0 ]]; then
    record FAIL "environment ($VENV)" 0.0 "$(echo "$env_line" | tail -n 1): install deepgrade and torch there"
    finish
fi

# 1. doctor
t="$(now)"
"$py" -m autograder doctor --gpu --json >"$work/doctor.json" 2>"$work/doctor.err"
rc=$?
# Every line that is not ok, with its fix, into doctor.txt; one line for the summary.
detail="$("$py" - "$work/doctor.json" "$work/doctor.txt" <<'PY'
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as fh:
        checks = json.load(fh)["checks"]
except (OSError, ValueError, KeyError) as exc:
    print(f"no report from the doctor ({exc})")
    sys.exit()
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for c in checks:
        if c["status"] != "ok":
            out.write(f"    {c['status']:4}  {c['name']}: {c['found']}\n")
            if c["fix"]:
                out.write(f"          fix: {c['fix']}\n")
bad = [c for c in checks if c["status"] == "fail"]
worker = [c for c in bad if c["name"] == "worker CUDA"]
line = f"{len(bad)} required check(s) failed: {', '.join(c['name'] for c in bad)}" if bad else "every required check passed"
if worker:
    line = f"{worker[0]['found']}; {line}"
print(line if len(line) <= 400 else line[:397] + "...")
PY
)"
cat "$work/doctor.err" "$work/doctor.txt" 2>/dev/null
if [[ $rc == 0 ]]; then
    record ok "doctor --gpu" "$(since "$t")" "$detail"
else
    record FAIL "doctor --gpu" "$(since "$t")" "$detail"
    if [[ $keep_going == 0 ]]; then
        summary+=("skip  the other steps: the machine is not ready (--keep-going runs them anyway)")
        finish
    fi
fi

# grade_step NAME SUBMISSION RUNNER OUTPUT EXPECT
grade_step() {
    local t rc detail
    t="$(now)"
    "$py" -m autograder grade "$2" -a hw5 --runner "$3" -o "$work/$4" >"$work/${4%.json}.log" 2>&1
    rc=$?
    if [[ $rc != 0 ]]; then
        tail -n 20 "$work/${4%.json}.log" >&2
        record FAIL "$1" "$(since "$t")" "deepgrade grade exited $rc (log: $work/${4%.json}.log)"
        return
    fi
    if detail="$(check_results "$work/$4" "$5")"; then
        record ok "$1" "$(since "$t")" "$detail"
    else
        record FAIL "$1" "$(since "$t")" "$(echo "$detail" | head -n 1), expected $5 marks"
        echo "$detail" | tail -n +2 >&2
    fi
}

# 2. and 3. the GPU parts of the reference and of the stubs
grade_step "grade solutions/hw5 --runner gpu" solutions/hw5 gpu gpu_reference.json full
grade_step "grade assignments/hw5 --runner gpu" assignments/hw5 gpu gpu_stub.json zero

# 4. the visible GPU test, in a copy of the course with the reference in place of the stubs
t="$(now)"
course="$work/course"
rm -rf "$course"
mkdir -p "$course/assignments"
cp grading.yml "$course/"
cp -r assignments/hw5 "$course/assignments/hw5"
for module in solutions/hw5/*.py; do
    case "$(basename "$module")" in test_*) ;; *) cp "$module" "$course/assignments/hw5/" ;; esac
done
(cd "$course" && "$py" -m pytest assignments/hw5 -m mlp_gpu -p no:cacheprovider -q -rs \
    --junitxml="$work/visible.xml") >"$work/visible.log" 2>&1
rc=$?
detail="$("$py" - "$work/visible.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
try:
    suite = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError) as exc:
    print(f"no JUnit report ({exc})")
    sys.exit(1)
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
print(f"{passed} passed, {n['failures'] + n['errors']} failed, {n['skipped']} skipped")
sys.exit(0 if n["tests"] > 0 and passed == n["tests"] else 1)
PY
)"
if [[ $? == 0 && $rc == 0 ]]; then
    record ok "pytest assignments/hw5 -m mlp_gpu (reference)" "$(since "$t")" "$detail"
else
    tail -n 20 "$work/visible.log" >&2
    record FAIL "pytest assignments/hw5 -m mlp_gpu (reference)" "$(since "$t")" "$detail (log: $work/visible.log)"
fi

# 5. a CPU run of the reference, merged with the GPU run of step 2
grade_step "grade solutions/hw5 --runner cpu" solutions/hw5 cpu cpu_reference.json cpu
t="$(now)"
detail=""
if "$py" -m autograder merge "$work/cpu_reference.json" "$work/gpu_reference.json" -o "$work/merged.json" \
        >"$work/merge.log" 2>&1 && detail="$(check_results "$work/merged.json" merged)"; then
    record ok "merge cpu + gpu" "$(since "$t")" "$detail"
else
    cat "$work/merge.log" >&2
    record FAIL "merge cpu + gpu" "$(since "$t")" "${detail:-deepgrade merge failed} (log: $work/merge.log)"
fi
finish
