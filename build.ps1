# SPDX-License-Identifier: MIT
# Copyright (c) 2026 FastEpt contributors

# Builds, tests and benchmarks FastEpt: a thin mirror of build.sh with the same verbs.
#   ./build.ps1 test
#   ./build.ps1 bench [--quick | --full | --ratio | BenchmarkDotNet args...]
#   ./build.ps1 help

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

# No param() block on purpose: arguments such as '--full' or '-h' must reach the verbs as plain
# strings instead of being parsed as PowerShell parameters.
[string]$Verb = ''
[string[]]$Rest = @()
if ($args.Count -gt 0) {
    $Verb = [string]$args[0]
}
if ($args.Count -gt 1) {
    $Rest = @($args[1..($args.Count - 1)] | ForEach-Object { [string]$_ })
}

$RootDir = $PSScriptRoot
if (-not (Test-Path (Join-Path $RootDir 'FastEpt.sln') -PathType Leaf)) {
    throw "build.ps1: $RootDir does not look like the FastEpt repository (no FastEpt.sln)"
}
Set-Location $RootDir

$Configuration = 'Release'
$ResultsDir = Join-Path $RootDir 'artifacts/test-results'
$NativeDir = Join-Path $RootDir 'native'
$NativeBuildDir = Join-Path $NativeDir 'build'
$PackagesDir = Join-Path $RootDir 'artifacts/packages'

$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
$env:DOTNET_NOLOGO = '1'
$env:DOTNET_SKIP_FIRST_TIME_EXPERIENCE = '1'

function Write-Usage {
    @"
Usage: ./build.ps1 <verb> [args...]

Verbs:
  test           check the generated P/Invoke bindings, build native/ (CMake) and
                 run its CTest suite (sanitized C driver, example), restore, build
                 ($Configuration) and pack, then run every .NET test project;
                 ends with one line 'N passed, N failed[, N skipped]'
  bench [args]   build native/ and bench/FastEpt.Bench ($Configuration) and run it;
                 with no args runs '--quick' (Perf_TranslateSuite on its quick
                 scenarios and Perf_Walk2D, with a short in-process job, then
                 the goals table;
                 under 3 minutes in all); '--full' runs every benchmark class,
                 the suite over its whole [Params] matrix, with the default job,
                 then the goals table; '--ratio' prints the goals table alone;
                 other args go to BenchmarkDotNet (e.g. --filter '*TlbHit*');
                 reports are written under bench/results/
  help           print this message
"@
}

function Write-Banner([string]$Text) {
    Write-Host ''
    Write-Host "==> $Text"
    Write-Host ''
}

# Runs an external command and throws when it exits non-zero.
function Invoke-Step([string]$Command, [string[]]$Arguments) {
    & $Command @Arguments
    if ($LastExitCode -ne 0) {
        throw "build.ps1: '$Command $($Arguments -join ' ')' failed with exit code $LastExitCode"
    }
}

function Test-Command([string]$Name) {
    return [bool](Get-Command $Name -ErrorAction SilentlyContinue)
}

function Assert-Prerequisites {
    Write-Banner 'Checking prerequisites'
    if (-not (Test-Command 'dotnet')) {
        throw "build.ps1: the .NET SDK ('dotnet') was not found on PATH; install the .NET 10 SDK from https://dot.net"
    }
    $version = & dotnet --version
    if ($LastExitCode -ne 0) {
        throw "build.ps1: 'dotnet --version' failed with exit code $LastExitCode"
    }
    Write-Host "dotnet $version"

    # cmake and a C compiler build the native twin (native/); this script does not install them.
    if (-not (Test-Command 'cmake')) {
        Write-Warning 'cmake was not found; it will be needed to build native/ (https://cmake.org)'
    }
}

# Configures and builds the native twin (native/) with CMake: the fastept library, the
# sanitized C test driver, the example and the layout program that the tests run.
function Invoke-NativeBuild {
    Write-Banner 'Building native library'
    if (-not (Test-Command 'cmake')) {
        throw 'build.ps1: cmake is required to build native/'
    }
    Invoke-Step 'cmake' @('-S', $NativeDir, '-B', $NativeBuildDir, '-DCMAKE_BUILD_TYPE=Release')
    Invoke-Step 'cmake' @('--build', $NativeBuildDir, '--config', 'Release', '--parallel')
}

# Runs the native tests (CTest).
function Invoke-NativeTest {
    Write-Banner 'Running native tests (CTest)'
    Invoke-Step 'ctest' @('--test-dir', $NativeBuildDir, '-C', 'Release', '--output-on-failure')
}

# Regenerates the P/Invoke bindings from native/include/fastept.h and the EPT bit constants
# from native/tools/ept_bits.py into a scratch folder and fails if they differ from the
# committed ones (needs Python with libclang's bindings).
function Assert-GeneratedBindings {
    Write-Banner 'Checking generated files (bindings from native/include/fastept.h, EPT bits from native/tools/ept_bits.py)'
    $python = @('python3', 'python') | Where-Object { Test-Command $_ } | Select-Object -First 1
    if (-not $python) {
        throw 'build.ps1: Python 3 with the libclang bindings (pip install libclang) is required'
    }
    $scratch = Join-Path ([System.IO.Path]::GetTempPath()) ([System.IO.Path]::GetRandomFileName())
    Invoke-Step $python @((Join-Path $NativeDir 'tools/gen_bindings.py'), '--out-dir', $scratch)
    $stale = @()
    foreach ($path in @('src/Interop/Generated', 'native/tests/layout.g.c', 'src/Walker/Entries/EptEntry.Bits.g.cs', 'native/src/ept_bits.g.h')) {
        $committed = @(Get-ChildItem -LiteralPath (Join-Path $RootDir $path) -File -Recurse)
        foreach ($file in $committed) {
            $relative = [System.IO.Path]::GetRelativePath($RootDir, $file.FullName)
            $fresh = Join-Path $scratch $relative
            if (-not (Test-Path $fresh) -or ((Get-Content -Raw $fresh) -ne (Get-Content -Raw $file.FullName))) {
                $stale += $relative
            }
        }
    }
    Remove-Item -Recurse -Force $scratch
    if ($stale.Count -gt 0) {
        throw "build.ps1: generated files are out of date ($($stale -join ', ')); run native/tools/gen_bindings.py"
    }
    Write-Host 'generated files are up to date'
}

# Packs the FastEpt and FastEpt.Interop NuGet packages and the FastEpt.Cli .NET tool into
# artifacts/packages (the tests install them from there), then checks that a fresh clone packs.
function Invoke-Pack {
    Write-Banner 'Packing NuGet packages and the .NET tool'
    if (Test-Path $PackagesDir) {
        Remove-Item -Recurse -Force $PackagesDir
    }
    Invoke-Step 'dotnet' @('pack', 'FastEpt.sln', '-c', $Configuration, '--no-build', '-o', $PackagesDir)
    Test-FreshClonePack
}

# A fresh clone of HEAD (no native/build) must pack FastEpt.Interop with `dotnet pack` alone:
# its MSBuild target runs CMake, and the package carries libfastept.so (as build.sh).
function Test-FreshClonePack {
    Write-Banner 'Packing FastEpt.Interop from a fresh clone (the native library is built by MSBuild)'
    $scratch = Join-Path ([System.IO.Path]::GetTempPath()) ('fastept-clone-' + [guid]::NewGuid().ToString('N'))
    try {
        Invoke-Step 'git' @('clone', '--quiet', $RootDir, (Join-Path $scratch 'clone'))
        Invoke-Step 'dotnet' @('pack', (Join-Path $scratch 'clone/src/Interop/FastEpt.Interop.csproj'), '-c', $Configuration,
            '-o', (Join-Path $scratch 'packages'), '-p:UseSharedCompilation=false')
        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $package = Get-ChildItem (Join-Path $scratch 'packages') -Filter 'FastEpt.Interop.*.nupkg' | Select-Object -First 1
        $zip = [System.IO.Compression.ZipFile]::OpenRead($package.FullName)
        try {
            if (-not ($zip.Entries | Where-Object { $_.FullName -eq 'runtimes/linux-x64/native/libfastept.so' })) {
                throw "build.ps1: the fresh clone's FastEpt.Interop package has no runtimes/linux-x64/native/libfastept.so"
            }
        }
        finally {
            $zip.Dispose()
        }
        Write-Host 'a fresh clone packs FastEpt.Interop with libfastept.so'
    }
    finally {
        if (Test-Path $scratch) {
            Remove-Item -Recurse -Force $scratch
        }
    }
}

function Invoke-RestoreAndBuild {
    Write-Banner 'Restoring packages'
    Invoke-Step 'dotnet' @('restore', 'FastEpt.sln')

    Write-Banner "Building FastEpt.sln ($Configuration)"
    Invoke-Step 'dotnet' @('build', 'FastEpt.sln', '-c', $Configuration, '--no-restore')
}

# Returns counter attribute $Name of the TRX <Counters/> element, 0 when absent.
function Get-TrxCounter([xml]$Trx, [string]$Name) {
    $counters = $Trx.TestRun.ResultSummary.Counters
    $value = $counters.GetAttribute($Name)
    if ([string]::IsNullOrEmpty($value)) {
        return 0
    }
    return [int]$value
}

function Invoke-Test {
    Assert-Prerequisites
    # The CLI's end-to-end test records a real trace with valgrind on Linux (build.sh installs it
    # there); on Windows it replays the committed sample trace instead.
    if ($IsLinux -and -not (Test-Command 'valgrind')) {
        Write-Host "build.ps1: valgrind is missing; install it (apt-get install valgrind)"
        exit 1
    }
    Assert-GeneratedBindings
    Invoke-NativeBuild
    Invoke-NativeTest
    Invoke-RestoreAndBuild
    Invoke-Pack

    Write-Banner "Running tests ($Configuration)"
    if (Test-Path $ResultsDir) {
        Remove-Item -Recurse -Force $ResultsDir
    }
    New-Item -ItemType Directory -Force -Path $ResultsDir | Out-Null

    & dotnet test FastEpt.sln -c $Configuration --no-build `
        --logger 'console;verbosity=normal' `
        --logger trx `
        --results-directory (Join-Path $ResultsDir 'all')
    $rc = $LastExitCode

    # The batch walkers again with every hardware intrinsic off: IsSupported is false, so the
    # AVX2 gather path falls back to the pipelined one and the pipeline runs without prefetch.
    Write-Banner 'Running batch tests without hardware intrinsics (DOTNET_EnableHWIntrinsic=0)'
    $noIntrinsicsDir = Join-Path $ResultsDir 'no-intrinsics'
    $env:DOTNET_EnableHWIntrinsic = '0'
    try {
        & dotnet test FastEpt.sln -c $Configuration --no-build `
            --filter 'Category=Batch' `
            --logger 'console;verbosity=normal' `
            --logger trx `
            --results-directory $noIntrinsicsDir
        $rcScalar = $LastExitCode
    }
    finally {
        Remove-Item Env:DOTNET_EnableHWIntrinsic -ErrorAction SilentlyContinue
    }
    if ($rc -eq 0) { $rc = $rcScalar }
    if (@(Get-ChildItem -Path $noIntrinsicsDir -Filter '*.trx' -File -ErrorAction SilentlyContinue).Count -eq 0) {
        throw 'build.ps1: the batch tests without hardware intrinsics produced no results'
    }

    # ---- Exercised paths: which ISA tiers and sanitizers the runs above really covered ----
    # A batch path the hardware lacks is reported by its tests as skipped (with the reason),
    # never as passed; this block counts them from the TRX files.
    Write-Banner 'Exercised paths'
    Write-Host "CPU avx2: $([System.Runtime.Intrinsics.X86.Avx2]::IsSupported)"
    Write-Host "CPU avx512f: $([System.Runtime.Intrinsics.X86.Avx512F]::IsSupported)"
    Write-Host 'AVX-512: no FastEpt path uses it (its presence changes nothing below)'
    foreach ($run in @(@('all', 'all tests'), @('no-intrinsics', 'DOTNET_EnableHWIntrinsic=0'))) {
        $results = @(Get-ChildItem -Path (Join-Path $ResultsDir $run[0]) -Filter '*.trx' -File -ErrorAction SilentlyContinue |
            ForEach-Object { ([xml](Get-Content -Raw -LiteralPath $_.FullName)).TestRun.Results.UnitTestResult })
        foreach ($path in 'Scalar', 'Pipelined', 'Gather', 'Auto') {
            $counts = @($results | Where-Object { $_.testName -like "*pathName: `"$path`"*" } | Group-Object outcome |
                ForEach-Object { "$($_.Count) $(if ($_.Name -eq 'NotExecuted') { 'skipped (not exercised)' } else { $_.Name.ToLowerInvariant() })" })
            $label = if ($path -eq 'Gather') { 'Gather (AVX2)' } else { $path }
            Write-Host "$($run[1]): batch path ${label}: $(if ($counts.Count -gt 0) { $counts -join ', ' } else { 'no tests ran' })"
        }
    }
    $driver = Join-Path $NativeBuildDir 'fastept_test_driver'
    if (Test-Path $driver) {
        $sanitizers = & $driver --no-self-test (Join-Path $NativeDir 'tests/vectors') | Select-String '^sanitizers: (.*)$'
        if ($sanitizers) { Write-Host "native test driver (fastept.selftest, fastept.vectors.shared): sanitizers $($sanitizers.Matches[0].Groups[1].Value)" }
    }
    else {
        Write-Host 'native test driver: not built here (no sanitized C tests ran)'
    }

    Write-Banner 'Test summary'
    $total = 0; $executed = 0; $passed = 0; $failed = 0
    $trxFiles = @(Get-ChildItem -Path $ResultsDir -Filter '*.trx' -File -Recurse)
    foreach ($file in $trxFiles) {
        [xml]$trx = Get-Content -Raw -LiteralPath $file.FullName
        $total += Get-TrxCounter $trx 'total'
        $executed += Get-TrxCounter $trx 'executed'
        $passed += Get-TrxCounter $trx 'passed'
        # VSTest counts errored, timed-out and aborted tests apart from failed ones.
        $failed += (Get-TrxCounter $trx 'failed') + (Get-TrxCounter $trx 'error') `
            + (Get-TrxCounter $trx 'timeout') + (Get-TrxCounter $trx 'aborted')
    }
    # Skipped tests are in the total but never executed.
    $skipped = $total - $executed

    Write-Host "test result files: $($trxFiles.Count) in artifacts/test-results"
    if ($skipped -gt 0) {
        Write-Host "$passed passed, $failed failed, $skipped skipped"
    }
    else {
        Write-Host "$passed passed, $failed failed"
    }

    if ($rc -ne 0) {
        throw "build.ps1: dotnet test failed (exit code $rc)"
    }
    if ($failed -ne 0) {
        throw "build.ps1: $failed test(s) failed"
    }
    if ($total -eq 0) {
        throw 'build.ps1: no tests were found or run'
    }
}

function Invoke-Bench([string[]]$BenchArgs) {
    Assert-Prerequisites
    Invoke-NativeBuild
    Invoke-RestoreAndBuild

    if ($BenchArgs.Count -eq 0) {
        $BenchArgs = @('--quick')
    }
    Write-Banner "Running benchmarks: $($BenchArgs -join ' ')"
    Invoke-Step 'dotnet' (@('run', '-c', $Configuration, '--no-build', '--project', 'bench/FastEpt.Bench', '--') + $BenchArgs)
}

switch ($Verb) {
    'test' {
        if ($Rest.Count -ne 0) {
            Write-Host "build.ps1: 'test' takes no arguments (got: $($Rest -join ' '))"
            Write-Usage
            exit 2
        }
        Invoke-Test
    }
    'bench' {
        Invoke-Bench $Rest
    }
    { $_ -in @('help', '-h', '--help') } {
        Write-Usage
    }
    default {
        if ($Verb -eq '') {
            Write-Host 'build.ps1: no verb given'
        }
        else {
            Write-Host "build.ps1: unknown verb '$Verb'"
        }
        Write-Usage
        exit 2
    }
}
