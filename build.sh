#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 FastEpt contributors

# Builds, tests and benchmarks FastEpt. Run `./build.sh help` for the verbs.
set -eu

# Locate the repository root from this script's own path, wherever it is called from.
root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ ! -f "$root_dir/FastEpt.sln" ]; then
    echo "build.sh: $root_dir does not look like the FastEpt repository (no FastEpt.sln)" >&2
    exit 1
fi
cd "$root_dir"

configuration=Release
results_dir="$root_dir/artifacts/test-results"
native_dir="$root_dir/native"
native_build_dir="$native_dir/build"
packages_dir="$root_dir/artifacts/packages"

export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

usage() {
    cat <<EOF
Usage: ./build.sh <verb> [args...]

Verbs:
  test           check the generated P/Invoke bindings, build native/ (CMake) and
                 run its CTest suite (sanitized C driver, example), restore, build
                 ($configuration) and pack, then run every .NET test project, and
                 the batch-walk tests again with DOTNET_EnableHWIntrinsic=0;
                 ends with one line 'N passed, N failed[, N skipped]'
  bench [args]   build native/ and bench/FastEpt.Bench ($configuration) and run it;
                 with no args runs '--quick' (Perf_TranslateSuite on its quick
                 scenarios and Perf_Walk2D, with a short in-process job, then
                 the goals table;
                 under 3 minutes in all); '--full' runs every benchmark class,
                 the suite over its whole [Params] matrix, with the default job,
                 then the goals table; '--ratio' prints the goals table alone;
                 other args go to BenchmarkDotNet (e.g. --filter '*TlbHit*');
                 reports are written under bench/results/
  help           print this message
EOF
}

banner() {
    echo
    echo "==> $*"
    echo
}

die() {
    echo "build.sh: $*" >&2
    exit 1
}

apt_updated=0

# Installs the named Debian packages that are not installed yet. Needs apt-get and root;
# otherwise it only warns, and whatever needs the package fails later with its own message.
ensure_apt_packages() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        # A removed package can linger as "deinstall ok config-files"; only this counts.
        if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "warning: missing ${missing[*]} and apt-get is not available; install them by hand" >&2
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "warning: missing ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
        return 0
    fi
    if [ "$apt_updated" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

ensure_prerequisites() {
    banner "Checking prerequisites"
    if ! command -v dotnet >/dev/null 2>&1; then
        die "the .NET SDK ('dotnet') was not found on PATH; install the .NET 10 SDK from https://dot.net"
    fi
    echo "dotnet $(dotnet --version)"

    # cmake and a C compiler build the native twin (native/); install them when missing.
    local wanted=()
    if ! command -v cmake >/dev/null 2>&1; then
        wanted+=(cmake)
    fi
    if ! command -v cc >/dev/null 2>&1; then
        wanted+=(gcc libc6-dev)
    fi
    if [ "${#wanted[@]}" -ne 0 ]; then
        ensure_apt_packages "${wanted[@]}"
    fi
    if command -v cmake >/dev/null 2>&1; then
        cmake --version | head -n 1
    fi
    if command -v cc >/dev/null 2>&1; then
        cc --version | head -n 1
    fi
}

# Configures and builds the native twin (native/) with CMake: libfastept.so (Release, -O2,
# -fPIC), which the Interop project copies next to every managed output, plus the sanitized
# C test driver, the example and the layout program that the tests run.
build_native() {
    banner "Building native library"
    command -v cmake >/dev/null 2>&1 || die "cmake is required to build native/; install it (apt-get install cmake)"
    cmake -S "$native_dir" -B "$native_build_dir" -DCMAKE_BUILD_TYPE=Release
    cmake --build "$native_build_dir" --config Release --parallel
}

# Runs the native tests (CTest): the ASan/UBSan test driver over tests/Data, the example
# program and the header's C99/C++ compile checks.
test_native() {
    banner "Running native tests (CTest)"
    ctest --test-dir "$native_build_dir" --output-on-failure
}

# Prints a Python interpreter that can import libclang's bindings (python3-clang-14), or
# nothing. Debian's package installs them for /usr/bin/python3, which may not be the first
# python3 on PATH.
python_with_libclang() {
    local candidate
    for candidate in /usr/bin/python3 python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import clang.cindex' >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
}

# The P/Invoke bindings in src/Interop/Generated and native/tests/layout.g.c are generated
# from native/include/fastept.h, and EptEntry.Bits.g.cs / native/src/ept_bits.g.h from the
# table in native/tools/ept_bits.py; all are committed. Regenerate them into a scratch folder
# and fail if they differ from what is committed: the two sides must never drift apart.
check_generated_bindings() {
    banner "Checking generated files (bindings from native/include/fastept.h, EPT bits from native/tools/ept_bits.py)"
    ensure_apt_packages python3-clang-14 libclang1-14
    local python
    python="$(python_with_libclang)"
    [ -n "$python" ] || die "no Python with libclang bindings; install python3-clang-14 (apt-get install python3-clang-14)"
    local scratch
    scratch="$(mktemp -d)"
    "$python" "$native_dir/tools/gen_bindings.py" --out-dir "$scratch"
    local rc=0 path
    for path in src/Interop/Generated native/tests/layout.g.c \
        src/Walker/Entries/EptEntry.Bits.g.cs native/src/ept_bits.g.h; do
        if ! diff -ru "$root_dir/$path" "$scratch/$path"; then
            rc=1
        fi
    done
    rm -rf "$scratch"
    if [ "$rc" -ne 0 ]; then
        die "generated files are out of date; run: $python native/tools/gen_bindings.py (and commit the result)"
    fi
    echo "generated files are up to date"
}

# Packs the FastEpt and FastEpt.Interop NuGet packages and the FastEpt.Cli .NET tool into
# artifacts/packages; tests install them from there (Interop/PackageTests: a fresh project;
# Cli/ToolPackageTests: `dotnet tool install` + `fastept replay --sample`). Then checks that a
# fresh clone packs on its own (test_fresh_clone_pack). The out-of-tree C consumer of the
# installed library is CTest's fastept.install.consumer (test_native).
pack_packages() {
    banner "Packing NuGet packages and the .NET tool"
    rm -rf "$packages_dir"
    dotnet pack FastEpt.sln -c "$configuration" --no-build -o "$packages_dir"
    test_fresh_clone_pack
}

# A fresh clone of HEAD (committed files only; no native/build) must pack FastEpt.Interop with
# `dotnet pack` alone: its MSBuild target runs CMake, and the package carries libfastept.so.
test_fresh_clone_pack() {
    banner "Packing FastEpt.Interop from a fresh clone (the native library is built by MSBuild)"
    local scratch rc=0
    scratch="$(mktemp -d)"
    git clone --quiet "$root_dir" "$scratch/clone" || rc=$?
    if [ "$rc" -eq 0 ]; then
        dotnet pack "$scratch/clone/src/Interop/FastEpt.Interop.csproj" -c "$configuration" \
            -o "$scratch/packages" -p:UseSharedCompilation=false || rc=$?
    fi
    if [ "$rc" -eq 0 ] && ! python3 -m zipfile -l "$scratch"/packages/FastEpt.Interop.*.nupkg | grep 'runtimes/linux-x64/native/libfastept.so' >/dev/null; then
        echo "build.sh: the fresh clone's FastEpt.Interop package has no runtimes/linux-x64/native/libfastept.so" >&2
        rc=1
    fi
    rm -rf "$scratch"
    [ "$rc" -eq 0 ] || die "a fresh clone does not pack (see above)"
    echo "a fresh clone packs FastEpt.Interop with libfastept.so"
}

restore_and_build() {
    banner "Restoring packages"
    dotnet restore FastEpt.sln

    banner "Building FastEpt.sln ($configuration)"
    dotnet build FastEpt.sln -c "$configuration" --no-restore
}

# Prints the value of counter attribute $2 of the TRX <Counters .../> element in file $1.
trx_counter() {
    local value
    value="$(grep -o '<Counters [^>]*>' "$1" | head -n 1 | sed -n "s/.* $2=\"\([0-9]*\)\".*/\1/p")"
    echo "${value:-0}"
}

# Adds the counters of every TRX file in directory $1 to the globals total/executed/passed/failed.
sum_trx_counters() {
    total=0 executed=0 passed=0 failed=0 trx_files=0
    local trx
    for trx in "$1"/*.trx; do
        [ -f "$trx" ] || continue
        trx_files=$((trx_files + 1))
        total=$((total + $(trx_counter "$trx" total)))
        executed=$((executed + $(trx_counter "$trx" executed)))
        passed=$((passed + $(trx_counter "$trx" passed)))
        # VSTest counts errored, timed-out and aborted tests apart from failed ones.
        failed=$((failed + $(trx_counter "$trx" failed) + $(trx_counter "$trx" error) \
            + $(trx_counter "$trx" timeout) + $(trx_counter "$trx" aborted)))
    done
}

# Prints "N passed, N failed[, N skipped]" for the TRX files in $1 (label $2); returns 1 when
# any test failed or none ran.
report_trx() {
    sum_trx_counters "$1"
    # Skipped tests are in the total but never executed.
    local skipped=$((total - executed))
    echo "$2: test result files: $trx_files in ${1#"$root_dir"/}"
    if [ "$skipped" -gt 0 ]; then
        echo "$2: $passed passed, $failed failed, $skipped skipped"
    else
        echo "$2: $passed passed, $failed failed"
    fi

    if [ "$failed" -ne 0 ]; then
        echo "build.sh: $failed test(s) failed ($2)" >&2
        return 1
    fi
    if [ "$total" -eq 0 ]; then
        echo "build.sh: no tests were found or run ($2)" >&2
        return 1
    fi
    return 0
}

run_tests() {
    ensure_prerequisites
    # The CLI's end-to-end test records a real memory trace with valgrind's lackey.
    if ! command -v valgrind >/dev/null 2>&1; then
        ensure_apt_packages valgrind
    fi
    check_generated_bindings
    build_native
    test_native
    restore_and_build
    pack_packages

    banner "Running tests ($configuration)"
    rm -rf "$results_dir"
    mkdir -p "$results_dir"
    local rc=0
    dotnet test FastEpt.sln -c "$configuration" --no-build \
        --logger "console;verbosity=normal" \
        --logger trx \
        --results-directory "$results_dir/all" || rc=$?

    # The batch walkers again with every hardware intrinsic off: IsSupported is false, so the
    # AVX2 gather path falls back to the pipelined one and the pipeline runs without prefetch.
    banner "Running batch tests without hardware intrinsics (DOTNET_EnableHWIntrinsic=0)"
    local rc_scalar=0
    DOTNET_EnableHWIntrinsic=0 dotnet test FastEpt.sln -c "$configuration" --no-build \
        --filter "Category=Batch" \
        --logger "console;verbosity=normal" \
        --logger trx \
        --results-directory "$results_dir/no-intrinsics" || rc_scalar=$?

    # ---- Exercised paths: which ISA tiers and sanitizers the runs above really covered ----
    # A batch path the hardware lacks is reported by its tests as skipped (with the reason),
    # never as passed; this block counts them from the TRX files.
    banner "Exercised paths"
    local cpu_flags="" isa trx_dir run_label path path_counts
    [ -r /proc/cpuinfo ] && cpu_flags="$(grep -m 1 '^flags' /proc/cpuinfo)"
    for isa in avx2 avx512f; do
        case " $cpu_flags " in
            *" $isa "*) echo "CPU $isa: yes" ;;
            *) echo "CPU $isa: no" ;;
        esac
    done
    echo "AVX-512: no FastEpt path uses it (its presence changes nothing below)"
    for trx_dir in "$results_dir/all" "$results_dir/no-intrinsics"; do
        run_label="all tests"
        [ "$trx_dir" = "$results_dir/no-intrinsics" ] && run_label="DOTNET_EnableHWIntrinsic=0"
        for path in Scalar Pipelined Gather Auto; do
            path_counts="$(cat "$trx_dir"/*.trx 2>/dev/null | grep -o "<UnitTestResult [^>]*pathName: &quot;$path&quot;[^>]*>" \
                | sed -n 's/.* outcome="\([A-Za-z]*\)".*/\1/p' | sed 's/NotExecuted/skipped (not exercised)/; s/Passed/passed/; s/Failed/failed/' \
                | sort | uniq -c | awk '{ n = $1; $1 = ""; printf "%s%s%s", sep, n, $0; sep = ", " }')"
            [ "$path" = Gather ] && path="Gather (AVX2)"
            echo "$run_label: batch path $path: ${path_counts:-no tests ran}"
        done
    done
    "$native_build_dir/fastept_test_driver" --no-self-test "$native_dir/tests/vectors" 2>/dev/null \
        | sed -n 's/^sanitizers: \(.*\)$/native test driver (fastept.selftest, fastept.vectors.shared): sanitizers \1/p'

    banner "Test summary"
    local ok=0 all_passed=0 all_failed=0 all_skipped=0
    report_trx "$results_dir/all" "all tests" || ok=1
    all_passed=$((all_passed + passed)) all_failed=$((all_failed + failed)) all_skipped=$((all_skipped + total - executed))
    report_trx "$results_dir/no-intrinsics" "batch tests, no intrinsics" || ok=1
    all_passed=$((all_passed + passed)) all_failed=$((all_failed + failed)) all_skipped=$((all_skipped + total - executed))
    # The last line, over both runs (scripts read it).
    if [ "$all_skipped" -gt 0 ]; then
        echo "$all_passed passed, $all_failed failed, $all_skipped skipped"
    else
        echo "$all_passed passed, $all_failed failed"
    fi

    if [ "$rc" -ne 0 ] || [ "$rc_scalar" -ne 0 ]; then
        echo "build.sh: dotnet test failed (exit codes $rc, $rc_scalar)" >&2
        exit 1
    fi
    if [ "$ok" -ne 0 ]; then
        exit 1
    fi
}

run_bench() {
    ensure_prerequisites
    build_native
    restore_and_build

    if [ "$#" -eq 0 ]; then
        set -- --quick
    fi
    banner "Running benchmarks: $*"
    dotnet run -c "$configuration" --no-build --project bench/FastEpt.Bench -- "$@"
}

if [ "$#" -eq 0 ]; then
    usage >&2
    exit 2
fi

verb="$1"
shift
case "$verb" in
    test)
        if [ "$#" -ne 0 ]; then
            echo "build.sh: 'test' takes no arguments (got: $*)" >&2
            usage >&2
            exit 2
        fi
        run_tests
        ;;
    bench)
        run_bench "$@"
        ;;
    help | -h | --help)
        usage
        ;;
    *)
        echo "build.sh: unknown verb '$verb'" >&2
        usage >&2
        exit 2
        ;;
esac
