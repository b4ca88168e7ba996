// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.Intrinsics.X86;
using FastEpt.Interop;
using FastEpt.Tests.P2mTests;
using Xunit.Abstractions;

namespace FastEpt.Tests.Interop
{
    /// <summary>
    /// Every native batch path (<c>fastept_translate_batch_path</c>: scalar, software-pipelined,
    /// AVX2-gathered, and the automatic choice) against the managed batch on the same path and
    /// the managed single walk, address by address, on random raw tables and on a well-formed
    /// guest with corrupted entries; each forced path must report that it ran as asked.
    /// </summary>
    [Trait("Category", "Batch")]
    public sealed class NativeBatchPathTests
    {
        private const int MinimumWalksPerPath = 300_000;

        private const string NoNativeGather = "the native gather path never ran (this CPU has no AVX2): only its pipelined fallback was compared";

        private readonly ITestOutputHelper _output;

        public NativeBatchPathTests(ITestOutputHelper output) => _output = output;

        // BatchPath is internal, so theories take its name.
        public static TheoryData<string> Paths => new() { nameof(BatchPath.Scalar), nameof(BatchPath.Pipelined), nameof(BatchPath.Gather), nameof(BatchPath.Auto) };

        [SkippableTheory]
        [MemberData(nameof(Paths))]
        public void RandomRawTables_NativePathEqualsManaged(string pathName)
        {
            BatchPath path = Enum.Parse<BatchPath>(pathName);
            var random = new Random(20261207 + (int)path);
            var seen = new Dictionary<(EptStatus, int), int>();
            var gpas = new ulong[1024];
            var managed = new EptTranslation[1024];
            var native = new EptTranslation[1024];
            long walks = 0;
            int interleaved = 0;
            bool gathered = false;
            for (int state = 0; walks < MinimumWalksPerPath; state++)
            {
                // A/D on or 5 levels one state in four: those walk one address at a time.
                RandomConfig config = state % 4 == 3 ? RandomConfig.Next(random, state) : RandomConfig.NextFastShape(random);
                using var managedMemory = new HostMemory(RandomTables.Frames * 4096L);
                using var nativeMemory = new HostMemory(RandomTables.Frames * 4096L);
                using var p2m = new P2m(managedMemory, config.Options);
                var walker = new NativeWalker(nativeMemory, p2m.Eptp, config.Options);
                RandomTables.Fill(random, config, managedMemory, nativeMemory);
                for (int round = 0; round < 8; round++)
                {
                    int n = random.Next(8) == 0 ? random.Next(1, 64) : random.Next(64, gpas.Length + 1);
                    var access = (AccessKind)random.Next(1, 8);
                    for (int i = 0; i < n; i++)
                    {
                        gpas[i] = random.Next(4) == 0 ? RandomTables.Gpa(random, config) : RandomTables.Gpa(random, config) & ((1UL << 40) - 1);
                    }

                    BatchPath taken = walker.TranslateBatchOnPath(gpas.AsSpan(0, n), access, native, path);
                    p2m.TranslateBatch(gpas.AsSpan(0, n), access, managed, path);
                    AssertTaken(path, taken, config.Options.Levels == 4 && !config.Options.AccessDirty);
                    interleaved += taken is BatchPath.Pipelined or BatchPath.Gather ? 1 : 0;
                    gathered |= taken == BatchPath.Gather;
                    Compare(path, taken, gpas, n, access, managed, native, seen, $"state {state} ({config})");
                    walks += n;
                }

                // With A/D on, both walks wrote their flags: the memories must still match.
                Assert.True(managedMemory.Frame(0).SequenceEqual(nativeMemory.Frame(0)), $"state {state}: root frames differ");
            }

            _output.WriteLine($"{path}: {walks} walks, {interleaved} interleaved batches; outcomes {string.Join(", ", seen.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value}"))}");
            if (path is BatchPath.Pipelined or BatchPath.Gather)
            {
                Assert.True(interleaved >= 100, $"only {interleaved} batches took an interleaved native path");
            }

            Skip.If(path == BatchPath.Gather && !gathered, NoNativeGather);

            foreach (EptStatus status in new[] { EptStatus.Ok, EptStatus.Violation, EptStatus.Misconfig })
            {
                for (int level = 1; level <= (status == EptStatus.Ok ? 3 : 4); level++)
                {
                    Assert.True(seen.GetValueOrDefault((status, level)) >= 50, $"{status} at level {level} occurred only {seen.GetValueOrDefault((status, level))} times");
                }
            }
        }

        [SkippableTheory]
        [MemberData(nameof(Paths))]
        public void WellFormedGuest_NativePathEqualsManaged(string pathName)
        {
            BatchPath path = Enum.Parse<BatchPath>(pathName);
            var random = new Random(4243 + (int)path);
            using var memory = new HostMemory(1L << 31);
            using var p2m = new P2m(memory);
            ulong guestFrames = BatchWalkTests.BuildMixedGuest(p2m, random);
            var walker = new NativeWalker(p2m);
            var gpas = new ulong[4096];
            var managed = new EptTranslation[4096];
            var native = new EptTranslation[4096];
            var seen = new Dictionary<(EptStatus, int), int>();
            var takenCounts = new Dictionary<BatchPath, int>();
            long walks = 0;
            while (walks < MinimumWalksPerPath)
            {
                int n = random.Next(1, gpas.Length + 1);
                var access = (AccessKind)random.Next(1, 8);
                bool sequential = random.Next(4) == 0;
                ulong start = (ulong)random.NextInt64((long)guestFrames) << 12;
                for (int i = 0; i < n; i++)
                {
                    gpas[i] = sequential
                        ? (start + ((ulong)i << 12)) & ((1UL << 48) - 1)
                        : random.Next(16) == 0
                            ? (ulong)random.NextInt64(1L << 48)
                            : ((ulong)random.NextInt64((long)guestFrames) << 12) | (ulong)(uint)random.Next(4096);
                }

                BatchPath taken = walker.TranslateBatchOnPath(gpas.AsSpan(0, n), access, native, path);
                p2m.TranslateBatch(gpas.AsSpan(0, n), access, managed, path);
                AssertTaken(path, taken, fastShape: true);
                takenCounts[taken] = takenCounts.GetValueOrDefault(taken) + 1;
                Compare(path, taken, gpas, n, access, managed, native, seen, "mixed guest");
                walks += n;
            }

            _output.WriteLine($"{path}: {walks} walks, paths taken {string.Join(", ", takenCounts.Select(kv => $"{kv.Key}={kv.Value}"))}; outcomes {string.Join(", ", seen.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value}"))}");
            foreach (var outcome in new[] { (EptStatus.Ok, 1), (EptStatus.Ok, 2), (EptStatus.Ok, 3), (EptStatus.Violation, 1), (EptStatus.Misconfig, 1), (EptStatus.Misconfig, 2) })
            {
                Assert.True(seen.GetValueOrDefault(outcome) >= 100, $"{outcome} occurred only {seen.GetValueOrDefault(outcome)} times");
            }

            Skip.If(path == BatchPath.Gather && takenCounts.GetValueOrDefault(BatchPath.Gather) == 0, NoNativeGather);
            if (path == BatchPath.Auto)
            {
                // 2 GiB of host memory: scattered batches pipeline, short or clustered ones do not.
                Assert.True(takenCounts.GetValueOrDefault(BatchPath.Pipelined) > 0, "Auto never pipelined");
                Assert.True(takenCounts.Keys.Any(k => k != BatchPath.Pipelined), "Auto always pipelined");
            }
        }

        // A forced path runs as asked on the fast shape (gathers only with AVX2); anything else
        // walks one address at a time.
        private static void AssertTaken(BatchPath requested, BatchPath taken, bool fastShape)
        {
            if (!fastShape)
            {
                Assert.Equal(BatchPath.Scalar, taken);
            }
            else if (requested == BatchPath.Gather)
            {
                // Without the runtime's intrinsics (DOTNET_EnableHWIntrinsic=0) this side cannot
                // see AVX2, but the native library still can.
                Assert.True(taken == BatchPath.Gather || (!Avx2.IsSupported && taken == BatchPath.Pipelined), $"Gather ran as {taken}");
            }
            else if (requested != BatchPath.Auto)
            {
                Assert.Equal(requested, taken);
            }
            else
            {
                Assert.NotEqual(BatchPath.Auto, taken);
            }
        }

        private static void Compare(BatchPath path, BatchPath taken, ulong[] gpas, int n, AccessKind access, EptTranslation[] managed,
                                    EptTranslation[] native, Dictionary<(EptStatus, int), int> seen, string where)
        {
            for (int i = 0; i < n; i++)
            {
                if (managed[i] != native[i])
                {
                    Assert.Fail($"{where}, {path} (native took {taken}), gpa 0x{gpas[i]:X} (#{i} of {n}), {access}: managed {managed[i]}, native {native[i]}");
                }

                seen[(managed[i].Status, managed[i].Level)] = seen.GetValueOrDefault((managed[i].Status, managed[i].Level)) + 1;
            }
        }
    }
}
