// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics;
using System.Runtime.Intrinsics.X86;
using Xunit.Abstractions;

namespace FastEpt.Tests.P2mTests
{
    /// <summary>
    /// <see cref="P2m.TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/> on
    /// every path (scalar, software-pipelined, AVX2 gather, and the automatic choice) must give
    /// exactly what the SDM model (Support/SdmEptModel, checked against the hand-derived vectors;
    /// no code shared with P2m's walkers) gives, address by address, on garbage tables and on
    /// well-formed guests alike. <c>./build.sh test</c> runs this category a second time with
    /// <c>DOTNET_EnableHWIntrinsic=0</c>, where the gather path falls back to the pipelined one
    /// and the pipeline runs without prefetch instructions.
    /// </summary>
    [Trait("Category", "Batch")]
    public sealed class BatchWalkTests
    {
        private const int MinimumWalksPerPath = 1_000_000;

        private readonly ITestOutputHelper _output;

        public BatchWalkTests(ITestOutputHelper output) => _output = output;

        // BatchPath is internal, so theories take its name.
        public static TheoryData<string> Paths => new() { nameof(BatchPath.Scalar), nameof(BatchPath.Pipelined), nameof(BatchPath.Gather), nameof(BatchPath.Auto) };

        [SkippableTheory]
        [MemberData(nameof(Paths))]
        public void RandomRawTables_EveryResultEqualsTheSdmModel(string pathName)
        {
            BatchPath path = Enum.Parse<BatchPath>(pathName);
            SkipUnlessSupported(path);
            var random = new Random(20261121 + (int)path);
            var seen = new Dictionary<(EptStatus, int), int>();
            var gpas = new ulong[2048];
            var results = new EptTranslation[2048];
            long walks = 0;
            int interleavedStates = 0;     // states walked by the pipelined or gathered code
            for (int state = 0; walks < MinimumWalksPerPath; state++)
            {
                // Three states in four have the shape the interleaved walkers handle themselves.
                RandomConfig config = state % 4 == 3 ? RandomConfig.Next(random, 3) : RandomConfig.NextFastShape(random);
                using var memory = new HostMemory(RandomTables.Frames * 4096L);
                using var p2m = new P2m(memory, config.Options);
                RandomTables.Fill(random, config, memory);
                if (p2m.ResolveBatchPath(path, gpas) != BatchPath.Scalar)
                {
                    interleavedStates++;
                }

                for (int round = 0; round < 8; round++)
                {
                    int n = random.Next(8) == 0 ? random.Next(1, 64) : random.Next(64, gpas.Length + 1);
                    var access = (AccessKind)random.Next(1, 8);
                    for (int i = 0; i < n; i++)
                    {
                        // Mostly addresses whose walk starts in the first root slots, where the
                        // random tables point to well-formed next levels more often.
                        gpas[i] = random.Next(4) == 0
                            ? RandomTables.Gpa(random, config)
                            : RandomTables.Gpa(random, config) & ((1UL << 40) - 1);
                    }

                    Assert.Equal(n, p2m.TranslateBatch(gpas.AsSpan(0, n), access, results, path));
                    var model = SdmEptModel.Config.Of(p2m.Options, (ulong)memory.FrameCount);
                    for (int i = 0; i < n; i++)
                    {
                        EptTranslation expected = SdmEptModel.Walk(memory, p2m.RootMfn, model, gpas[i], access);
                        if (expected != results[i])
                        {
                            Assert.Fail($"{path}, state {state} ({config}), gpa 0x{gpas[i]:X} (#{i} of {n}), {access}: batch {results[i]}, SDM model {expected}");
                        }

                        seen[(expected.Status, expected.Level)] = seen.GetValueOrDefault((expected.Status, expected.Level)) + 1;
                    }

                    walks += n;
                }
            }

            _output.WriteLine($"{path}: {walks} walks; outcomes {string.Join(", ", seen.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value}"))}");
            if (path is BatchPath.Pipelined or BatchPath.Gather)
            {
                Assert.True(interleavedStates >= 50, $"only {interleavedStates} states took the interleaved path");
            }

            foreach (EptStatus status in new[] { EptStatus.Ok, EptStatus.Violation, EptStatus.Misconfig })
            {
                int top = status == EptStatus.Ok ? 3 : 4;
                for (int level = 1; level <= top; level++)
                {
                    int count = seen.GetValueOrDefault((status, level));
                    Assert.True(count >= 100, $"{status} at level {level} occurred only {count} times");
                }
            }
        }

        [SkippableTheory]
        [MemberData(nameof(Paths))]
        public void WellFormedGuest_EveryResultEqualsTheSdmModel(string pathName)
        {
            BatchPath path = Enum.Parse<BatchPath>(pathName);
            SkipUnlessSupported(path);
            var random = new Random(4242 + (int)path);
            using var memory = new HostMemory(1L << 31);
            using var p2m = new P2m(memory);
            ulong guestFrames = BuildMixedGuest(p2m, random);
            var model = SdmEptModel.Config.Of(p2m.Options, (ulong)memory.FrameCount);
            var gpas = new ulong[4096];
            var results = new EptTranslation[4096];
            var seen = new Dictionary<(EptStatus, int), int>();
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
                            ? (ulong)random.NextInt64(1L << 48)                                   // far outside the guest
                            : ((ulong)random.NextInt64((long)guestFrames) << 12) | (ulong)(uint)random.Next(4096);
                }

                p2m.TranslateBatch(gpas.AsSpan(0, n), access, results, path);
                for (int i = 0; i < n; i++)
                {
                    EptTranslation expected = SdmEptModel.Walk(memory, p2m.RootMfn, model, gpas[i], access);
                    if (expected != results[i])
                    {
                        Assert.Fail($"{path}: gpa 0x{gpas[i]:X} (#{i} of {n}), {access}: batch {results[i]}, SDM model {expected}");
                    }

                    seen[(expected.Status, expected.Level)] = seen.GetValueOrDefault((expected.Status, expected.Level)) + 1;
                }

                walks += n;
            }

            _output.WriteLine($"{path}: {walks} walks; outcomes {string.Join(", ", seen.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value}"))}");
            // 4K, 2M and 1G leaves, violations at the leaf and above it, and corrupted entries.
            foreach (var outcome in new[] { (EptStatus.Ok, 1), (EptStatus.Ok, 2), (EptStatus.Ok, 3), (EptStatus.Violation, 1), (EptStatus.Violation, 2), (EptStatus.Violation, 4), (EptStatus.Misconfig, 1), (EptStatus.Misconfig, 2) })
            {
                Assert.True(seen.GetValueOrDefault(outcome) >= 100, $"{outcome} occurred only {seen.GetValueOrDefault(outcome)} times");
            }
        }

        [SkippableTheory]
        [MemberData(nameof(Paths))]
        public void EveryLength_WritesExactlyOneResultPerAddress(string pathName)
        {
            BatchPath path = Enum.Parse<BatchPath>(pathName);
            SkipUnlessSupported(path);
            var random = new Random(99);
            using var memory = new HostMemory(1L << 30);
            using var p2m = new P2m(memory);
            ulong guestFrames = BuildMixedGuest(p2m, random);
            var model = SdmEptModel.Config.Of(p2m.Options, (ulong)memory.FrameCount);
            var sentinel = new EptTranslation(EptStatus.Misconfig, 0xDEAD_BEEF, 7, 0x7F);
            for (int n = 0; n <= 200; n++)
            {
                var gpas = new ulong[n];
                for (int i = 0; i < n; i++)
                {
                    gpas[i] = ((ulong)random.NextInt64((long)guestFrames) << 12) | (ulong)(uint)random.Next(4096);
                }

                var results = Enumerable.Repeat(sentinel, n + 3).ToArray();
                Assert.Equal(n, p2m.TranslateBatch(gpas, AccessKind.Write, results, path));
                for (int i = 0; i < n; i++)
                {
                    Assert.Equal(SdmEptModel.Walk(memory, p2m.RootMfn, model, gpas[i], AccessKind.Write), results[i]);
                }

                Assert.All(results.Skip(n), r => Assert.Equal(sentinel, r));
            }
        }

        [Fact]
        public void ForcedPaths_RunAsNamedWhereTheHardwareAllows()
        {
            using var memory = new HostMemory(1L << 26);
            using var p2m = new P2m(memory);
            var gpas = new ulong[1024];
            _output.WriteLine($"Avx2={Avx2.IsSupported} Sse={Sse.IsSupported}");
            Assert.Equal(BatchPath.Scalar, p2m.ResolveBatchPath(BatchPath.Scalar, gpas));
            Assert.Equal(BatchPath.Pipelined, p2m.ResolveBatchPath(BatchPath.Pipelined, gpas));
            Assert.Equal(Avx2.IsSupported ? BatchPath.Gather : BatchPath.Pipelined, p2m.ResolveBatchPath(BatchPath.Gather, gpas));
            Assert.Equal(Avx2.IsSupported, P2m.IsBatchPathSupported(BatchPath.Gather));
            Assert.True(P2m.IsBatchPathSupported(BatchPath.Pipelined));

            // 5 levels or accessed/dirty updates: every path walks one address at a time.
            using var p2m5 = new P2m(memory, new P2mOptions { Levels = 5, AddressBits = 57 });
            using var p2mAd = new P2m(memory, new P2mOptions { AccessDirty = true });
            foreach (BatchPath path in new[] { BatchPath.Auto, BatchPath.Pipelined, BatchPath.Gather })
            {
                Assert.Equal(BatchPath.Scalar, p2m5.ResolveBatchPath(path, gpas));
                Assert.Equal(BatchPath.Scalar, p2mAd.ResolveBatchPath(path, gpas));
            }
        }

        [Fact]
        public void Auto_WalksSmallBatchesOneAtATime_AndInterleavesLargeOnes()
        {
            using var memory = new HostMemory(1L << 26);
            using var p2m = new P2m(memory);
            var random = new Random(5);
            ulong[] scattered = Enumerable.Range(0, 4096).Select(_ => (ulong)random.NextInt64(1L << 48)).ToArray();
            ulong[] clustered = Enumerable.Range(0, 4096).Select(i => (ulong)i << 12).ToArray();
            Assert.Equal(BatchPath.Scalar, p2m.ResolveBatchPath(BatchPath.Auto, scattered.AsSpan(0, 8)));

            // Cache-resident tables: gathers where they were measured to win, else one at a time.
            BatchPath cached = P2m.PreferGather ? BatchPath.Gather : BatchPath.Scalar;
            Assert.Equal(cached, p2m.ResolveBatchPath(BatchPath.Auto, scattered));
            Assert.Equal(cached, p2m.ResolveBatchPath(BatchPath.Auto, clustered));

            // Tables beyond the cache-resident size: scattered addresses go to the pipeline,
            // clustered ones (sharing leaf tables and lines) still do not.
            long tablesNeeded = P2m.CacheResidentTableBytes / 4096 + 64;
            for (ulong region = 0; p2m.TableFrameCount < tablesNeeded; region++)
            {
                p2m.SetEntry(region << 9, region & 0xFFF, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            Assert.Equal(BatchPath.Pipelined, p2m.ResolveBatchPath(BatchPath.Auto, scattered));
            Assert.Equal(cached, p2m.ResolveBatchPath(BatchPath.Auto, clustered));
            Assert.Equal(BatchPath.Scalar, p2m.ResolveBatchPath(BatchPath.Auto, scattered.AsSpan(0, 31)));
        }

        [Fact]
        public void BadArguments_ThrowBeforeAnyWalk_AndWriteNothing()
        {
            using var memory = new HostMemory(1L << 26);
            using var p2m = new P2m(memory);
            var sentinel = new EptTranslation(EptStatus.Misconfig, 0xDEAD_BEEF, 7, 0x7F);
            var results = Enumerable.Repeat(sentinel, 64).ToArray();
            ulong[] gpas = Enumerable.Range(0, 64).Select(i => (ulong)i << 12).ToArray();
            foreach (BatchPath path in new[] { BatchPath.Auto, BatchPath.Scalar, BatchPath.Pipelined, BatchPath.Gather })
            {
                Assert.Equal("results", Assert.Throws<ArgumentException>(() => p2m.TranslateBatch(gpas, AccessKind.Read, results.AsSpan(0, 63), path)).ParamName);
                Assert.Equal("access", Assert.Throws<ArgumentOutOfRangeException>(() => p2m.TranslateBatch(gpas, 0, results, path)).ParamName);
                Assert.Equal("access", Assert.Throws<ArgumentOutOfRangeException>(() => p2m.TranslateBatch(gpas, (AccessKind)8, results, path)).ParamName);
                ulong[] bad = (ulong[])gpas.Clone();
                bad[40] = 1UL << 48;
                Assert.Equal("gpa", Assert.Throws<ArgumentOutOfRangeException>(() => p2m.TranslateBatch(bad, AccessKind.Read, results, path)).ParamName);
                Assert.All(results, r => Assert.Equal(sentinel, r));
            }

            Assert.Equal("path", Assert.Throws<ArgumentOutOfRangeException>(() => p2m.TranslateBatch(gpas, AccessKind.Read, results, (BatchPath)9)).ParamName);
            p2m.Dispose();
            Assert.Throws<ObjectDisposedException>(() => p2m.TranslateBatch(gpas, AccessKind.Read, results, BatchPath.Gather));
        }

        // A forced path the hardware lacks resolves to another one: the theory would test that
        // other path under this one's name, so it reports a skip with the reason instead.
        internal static void SkipUnlessSupported(BatchPath path)
            => Skip.IfNot(P2m.IsBatchPathSupported(path), $"{path}: not supported here (Avx2.IsSupported = {Avx2.IsSupported}); the forced path would run {BatchPath.Pipelined}");

        // A guest over the first GiBs of GPA space: 1G, 2M and 4K leaves of several types and
        // rights, holes at every level, and a few raw corruptions (reserved bits, bad memory
        // types, write-only) so violations and misconfigurations come from real shapes.
        // Returns the number of guest frames the addresses should be drawn from.
        internal static ulong BuildMixedGuest(P2m p2m, Random random)
        {
            ulong hostFrames = (ulong)p2m.Memory.FrameCount;
            ulong dataBase = 0;              // leaves may point anywhere: frames are never touched
            P2mType[] types = { P2mType.RamRw, P2mType.RamRw, P2mType.RamRw, P2mType.RamRo, P2mType.RamLogDirty, P2mType.MmioDirect };
            P2mAccess[] accesses = { P2mAccess.RWX, P2mAccess.RWX, P2mAccess.RW, P2mAccess.RX, P2mAccess.R, P2mAccess.N, P2mAccess.X };
            const ulong GuestFrames = 3UL << 18;    // 3 GiB: the first GiB has a 1G leaf
            bool support1G = p2m.Options.Support1G;
            if (support1G && hostFrames > 1UL << 18)
            {
                p2m.SetEntry(0, 0, PageOrder.Size1G, P2mType.RamRw, P2mAccess.RWX);
            }

            for (ulong region = 512; region < GuestFrames; region += 512)
            {
                if (region < (1UL << 18) && support1G && hostFrames > 1UL << 18)
                {
                    continue;
                }

                int kind = random.Next(10);
                ulong mfnBase = dataBase + (ulong)random.NextInt64((long)(Math.Min(hostFrames, 1UL << 24) / 512)) * 512;
                P2mType type = types[random.Next(types.Length)];
                P2mAccess access = accesses[random.Next(accesses.Length)];
                if (type == P2mType.MmioDirect)
                {
                    mfnBase = (ulong)random.NextInt64(1L << 20) * 512;
                }

                if (kind < 3)
                {
                    p2m.SetEntry(region, mfnBase, PageOrder.Size2M, type, access);
                }
                else if (kind < 4)
                {
                    // A hole (or, 1 in 2, a partially populated leaf table).
                    if (random.Next(2) == 0)
                    {
                        for (int k = 0; k < 16; k++)
                        {
                            ulong gfn = region + (ulong)random.Next(512);
                            p2m.SetEntry(gfn, Math.Min(mfnBase + (gfn - region), hostFrames - 1), PageOrder.Size4K, type, access);
                        }
                    }
                }
                else
                {
                    for (ulong g = 0; g < 512; g++)
                    {
                        P2mType t = random.Next(32) == 0 ? types[random.Next(types.Length)] : type;
                        P2mAccess a = random.Next(32) == 0 ? accesses[random.Next(accesses.Length)] : access;
                        ulong mfn = t == P2mType.MmioDirect ? mfnBase + g : Math.Min(mfnBase + g, hostFrames - 1);
                        p2m.SetEntry(region + g, mfn, PageOrder.Size4K, t, a);
                    }
                }
            }

            // Raw corruptions: reserved bit 3-5 patterns (memory type 2), write-only, bits above MAXPHYADDR.
            for (int k = 0; k < 4000; k++)
            {
                ulong gfn = (ulong)random.NextInt64((long)GuestFrames);
                foreach (int level in new[] { 1, 2 })
                {
                    ulong? hpa = TestTables.SlotHpa(p2m, gfn, level);
                    if (hpa is null || hpa.Value >= (ulong)p2m.Memory.FrameCount << 12)
                    {
                        continue;                        // no path, or one through an entry corrupted earlier
                    }

                    ulong raw = p2m.Memory.ReadUInt64(hpa.Value);
                    if ((raw & 7) == 0 || (level == 2 && (raw & 0x80) == 0 && random.Next(2) == 0))
                    {
                        continue;
                    }

                    ulong bad = random.Next(3) switch
                    {
                        0 => (raw & ~0x38UL) | (2UL << 3),       // memory type 2 (reserved)
                        1 => (raw & ~7UL) | 2,                  // write without read
                        _ => raw | (1UL << 50),                 // above MAXPHYADDR (46)
                    };
                    p2m.Memory.WriteUInt64(hpa.Value, bad);
                    break;
                }
            }

            return GuestFrames;
        }
    }

    /// <summary>Batched readers on every path racing a writer that splits, remaps and removes.</summary>
    [Collection(P2mConcurrencyCollection.Name)]
    [Trait("Category", "Batch")]
    public sealed class BatchWalkConcurrencyTests
    {
        private static readonly TimeSpan s_duration = TimeSpan.FromSeconds(1.5);
        private static readonly TimeSpan s_watchdog = TimeSpan.FromSeconds(30);

        [Fact]
        public void BatchReaders_SeeOnlyStatesThatExisted()
        {
            const ulong Regions = 8;               // 2 MiB regions the writer churns
            const ulong ABase = 1UL << 14;         // mapping A: region r as one 2M page at ABase + 512r
            const ulong BBase = 1UL << 16;         // mapping B: single 4K pages at BBase + gfn
            using var memory = new HostMemory(1L << 30);
            using var p2m = new P2m(memory);
            for (ulong r = 0; r < Regions; r++)
            {
                p2m.SetEntry(r * 512, ABase + r * 512, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            }

            using var stop = new CancellationTokenSource();
            var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
            long batches = 0;

            void Reader(object? state)
            {
                var path = (BatchPath)state!;
                var random = new Random((int)path);
                var gpas = new ulong[256];
                var results = new EptTranslation[256];
                while (!stop.IsCancellationRequested && failures.IsEmpty)
                {
                    for (int i = 0; i < gpas.Length; i++)
                    {
                        gpas[i] = ((ulong)random.NextInt64((long)(Regions * 512)) << 12) | (ulong)(uint)random.Next(4096);
                    }

                    p2m.TranslateBatch(gpas, AccessKind.Read, results, path);
                    for (int i = 0; i < gpas.Length; i++)
                    {
                        ulong gfn = gpas[i] >> 12, offset = gpas[i] & 0xFFF;
                        EptTranslation t = results[i];
                        bool fromA = t.Status == EptStatus.Ok && (t.Level is 1 or 2) && t.Hpa == ((ABase + gfn) << 12 | offset);
                        bool fromB = t.Status == EptStatus.Ok && t.Level == 1 && t.Hpa == ((BBase + gfn) << 12 | offset);
                        bool removed = t.Status == EptStatus.Violation && t.Level == 1 && t.Qualification == 1;
                        if (!(fromA || fromB || removed))
                        {
                            failures.Enqueue($"{path}: gpa 0x{gpas[i]:X}: {t}");
                        }
                    }

                    Interlocked.Increment(ref batches);
                }
            }

            var readers = new[] { BatchPath.Scalar, BatchPath.Pipelined, BatchPath.Gather }
                .Select(path => new Thread(Reader) { IsBackground = true, Name = $"batch reader {path}" }).ToArray();
            for (int i = 0; i < readers.Length; i++)
            {
                readers[i].Start(new[] { BatchPath.Scalar, BatchPath.Pipelined, BatchPath.Gather }[i]);
            }

            var writerRandom = new Random(77);
            var clock = Stopwatch.StartNew();
            long writes = 0;
            while (clock.Elapsed < s_duration && failures.IsEmpty)
            {
                ulong r = (ulong)writerRandom.Next((int)Regions);
                ulong gfn = r * 512 + (ulong)writerRandom.Next(512);
                switch (writerRandom.Next(3))
                {
                    case 0:     // merge back to the 2M page (retires the leaf table)
                        p2m.SetEntry(r * 512, ABase + r * 512, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
                        break;
                    case 1:     // remap one 4K page (splits the 2M page if needed)
                        p2m.SetEntry(gfn, BBase + gfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                        break;
                    default:    // remove one 4K page
                        p2m.SetEntry(gfn, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);
                        break;
                }

                writes++;
            }

            stop.Cancel();
            foreach (Thread t in readers)
            {
                Assert.True(t.Join(s_watchdog), $"{t.Name} did not stop: deadlock or livelock");
            }

            Assert.Empty(failures);
            Assert.True(writes > 100 && Interlocked.Read(ref batches) > readers.Length, $"too little happened: {writes} writes, {batches} batches");
        }
    }
}
