#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 FastEpt contributors
#
# Single-thread SetEntry cost of this working tree against an earlier commit, measured in one
# process (docs/benchmarks.md, "SetEntry against an earlier build"):
#   bench/compare/compare.sh <commit> [rounds]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
base="${1:?usage: bench/compare/compare.sh <commit> [rounds]}"
rounds="${2:-300}"
work="$(mktemp -d)"
trap 'git -C "$root" worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

git -C "$root" worktree add --quiet --detach "$work/src" "$base"
dotnet build "$work/src/src/Walker/FastEpt.Walker.csproj" -c Release -o "$work/walker-base" >/dev/null
dotnet build "$root/src/Walker/FastEpt.Walker.csproj" -c Release -o "$work/walker-new" >/dev/null
for side in base new; do
    dotnet build "$here/Loop.csproj" -c Release -p:WalkerDir="$work/walker-$side" \
        -p:BaseIntermediateOutputPath="$work/obj-$side/" -o "$work/loop-$side" >/dev/null
    cp "$work/walker-$side"/FastEpt.Walker.dll "$work/loop-$side/"
done
dotnet build "$here/Host.csproj" -c Release -p:BaseIntermediateOutputPath="$work/obj-host/" -o "$work/host" >/dev/null
echo "base: $(git -C "$root" rev-parse --short "$base"); new: working tree of $(git -C "$root" rev-parse --short HEAD); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs"
dotnet "$work/host/FastEpt.CompareHost.dll" "$work/loop-base" "$work/loop-new" "$rounds"
