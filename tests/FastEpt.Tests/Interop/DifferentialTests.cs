// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Interop;

namespace FastEpt.Tests.Interop
{
    /// <summary>
    /// The native twin is the oracle: on the same memory, managed and native walks must agree
    /// bit for bit, on well-formed tables and on random garbage alike, and tables built by
    /// either writer must read the same through either reader.
    /// </summary>
    public sealed class DifferentialTests
    {
        private const int Frames = RandomTables.Frames;   // host memory of the random-table states
        private const int States = 100;
        private const int WalksPerState = 10_000;
        private const int LookupsPerState = 2_000;

        [Fact]
        public void RandomRawTables_ManagedAndNativeWalksAgreeOnAMillionCases()
        {
            var random = new Random(20261121);
            // Outcome counts by (status, level): proof the random tables reach every case.
            var seen = new Dictionary<(EptStatus, int), int>();
            long walks = 0, batched = 0, lookups = 0;
            var gpas = new ulong[256];
            var fromBatch = new EptTranslation[256];

            for (int state = 0; state < States; state++)
            {
                RandomConfig config = RandomConfig.Next(random, state);
                using var managedMemory = new HostMemory(Frames * 4096L);
                using var nativeMemory = new HostMemory(Frames * 4096L);
                using var modelMemory = new HostMemory(Frames * 4096L);
                using var p2m = new P2m(managedMemory, config.Options);
                Assert.Equal(0UL, p2m.RootMfn);
                // The native walker gets its own copy of the memory: with A/D enabled both walks
                // write, and the two memories must end up identical too.
                var native = new NativeWalker(nativeMemory, p2m.Eptp, config.Options);
                RandomTables.Fill(random, config, managedMemory, nativeMemory, modelMemory);
                // The third side: the SDM model (Support/SdmEptModel, checked against the
                // hand-derived vectors), so agreement means right, not only faithfully ported.
                var model = SdmEptModel.Config.Of(config.Options, Frames);

                for (int i = 0; i < WalksPerState; i++)
                {
                    ulong gpa = RandomTables.Gpa(random, config);
                    var access = (AccessKind)random.Next(1, 8);
                    EptTranslation expected = p2m.Translate(gpa, access);
                    EptTranslation actual = native.Translate(gpa, access);
                    EptTranslation truth = SdmEptModel.Walk(modelMemory, 0, model, gpa, access);
                    if (expected != actual || expected != truth)
                    {
                        Assert.Fail($"state {state} ({config}), gpa 0x{gpa:X}, {access}: managed {expected}, native {actual}, SDM model {truth}");
                    }

                    Count(seen, (expected.Status, expected.Level));
                    walks++;
                }

                // Batches: same answers as single walks, for one access kind per batch.
                for (int round = 0; round < 4; round++)
                {
                    var access = (AccessKind)random.Next(1, 8);
                    for (int i = 0; i < gpas.Length; i++)
                    {
                        gpas[i] = RandomTables.Gpa(random, config);
                    }

                    Assert.Equal(gpas.Length, native.TranslateBatch(gpas, access, fromBatch));
                    for (int i = 0; i < gpas.Length; i++)
                    {
                        EptTranslation expected = p2m.Translate(gpas[i], access);
                        EptTranslation truth = SdmEptModel.Walk(modelMemory, 0, model, gpas[i], access);
                        if (expected != fromBatch[i] || expected != truth)
                        {
                            Assert.Fail($"state {state} ({config}), batch gpa 0x{gpas[i]:X}, {access}: managed {expected}, native batch {fromBatch[i]}, SDM model {truth}");
                        }
                    }

                    batched += gpas.Length;
                }

                // get_entry over the same garbage, with max_mapped_pfn both above and below.
                ulong gfnLimit = 1UL << (config.Options.AddressBits - 12);
                for (int i = 0; i < LookupsPerState; i++)
                {
                    if (i % 500 == 0)
                    {
                        ulong max = random.Next(3) == 0 ? (ulong)random.NextInt64((long)Math.Min(gfnLimit, long.MaxValue)) : gfnLimit - 1;
                        p2m.MaxMappedPfn = max;
                        native.MaxMappedPfn = max;
                    }

                    ulong gfn = RandomTables.Gpa(random, config) >> 12;
                    P2mEntry expected = p2m.GetEntry(gfn);
                    P2mEntry actual = native.GetEntry(gfn);
                    if (expected != actual)
                    {
                        Assert.Fail($"state {state} ({config}), gfn 0x{gfn:X}, max 0x{p2m.MaxMappedPfn:X}: managed {expected}, native {actual}");
                    }

                    lookups++;
                }

                // Accessed/dirty updates (or their absence) are identical too.
                Assert.True(SameBytes(managedMemory, nativeMemory), $"state {state} ({config}): the walks left different table bytes");
                Assert.True(SameBytes(managedMemory, modelMemory), $"state {state} ({config}): the managed walks and the SDM model left different table bytes");
            }

            Assert.True(walks >= 1_000_000, $"only {walks} walks");
            Assert.Equal(States * 4 * 256L, batched);
            Assert.Equal(States * (long)LookupsPerState, lookups);
            // Every outcome at every level occurred often enough to mean something.
            foreach (EptStatus status in new[] { EptStatus.Ok, EptStatus.Violation, EptStatus.Misconfig })
            {
                // A leaf is at most a 1G page (level 3); failures happen at every level.
                int top = status == EptStatus.Ok ? 3 : 4;
                for (int level = 1; level <= top; level++)
                {
                    seen.TryGetValue((status, level), out int n);
                    Assert.True(n >= 100, $"{status} at level {level} occurred only {n} times");
                }
            }
        }

        [Fact]
        public void ManagedAndNativeWritersBuildTablesEveryReaderAgreesOn()
        {
            foreach (int levels in new[] { 4, 5 })
            {
                foreach (bool accessDirty in new[] { false, true })
                {
                    RunWriterDifferential(levels, accessDirty, seed: 7 * levels + (accessDirty ? 1 : 0), operations: 3_000);
                }
            }
        }

        private static void RunWriterDifferential(int levels, bool accessDirty, int seed, int operations)
        {
            var options = new P2mOptions { Levels = levels, AddressBits = 12 + 9 * levels, AccessDirty = accessDirty };
            const long HostBytes = 8L << 30;    // lazily committed; guest RAM frames are never touched
            using var memoryA = new HostMemory(HostBytes);
            using var memoryB = new HostMemory(HostBytes);
            using var managed = new P2m(memoryA, options);   // written by managed SetEntry
            using var target = new P2m(memoryB, options);    // written by native set_entry
            var nativeOnA = new NativeWalker(managed);
            var nativeOnB = new NativeWalker(target);
            var random = new Random(seed);

            // GFNs inside 4 GiB of guest space; RAM MFNs inside the first 4 GiB of host memory.
            const ulong GuestFrames = 1UL << 20;
            ulong hostRamFrames = 1UL << 20;
            var types = Enum.GetValues<P2mType>();
            var accesses = Enum.GetValues<P2mAccess>();
            int applied = 0, rejected = 0;
            for (int op = 0; op < operations; op++)
            {
                PageOrder order = random.Next(10) switch { < 6 => PageOrder.Size4K, < 9 => PageOrder.Size2M, _ => PageOrder.Size1G };
                ulong count = 1UL << (int)order;
                ulong gfn = (ulong)random.NextInt64((long)(GuestFrames / count)) * count;
                // Cluster most writes in the first 64 MiB so splits and merges collide.
                if (random.Next(3) != 0 && order != PageOrder.Size1G)
                {
                    gfn &= (1UL << 14) - 1;
                    gfn &= ~(count - 1);
                }

                P2mType type = types[random.Next(types.Length)];
                P2mAccess access = random.Next(3) == 0 ? accesses[random.Next(accesses.Length)] : P2mAccess.RWX;
                ulong mfn = random.Next(8) == 0
                    ? Mfn.Invalid
                    : (ulong)random.NextInt64((long)(hostRamFrames / count)) * count;
                var sve = (SuppressVe)random.Next(3);

                Exception? managedError = Capture(() => managed.SetEntry(gfn, mfn, order, type, access, sve));
                Exception? nativeError = Capture(() => nativeOnB.SetEntry(gfn, mfn, order, type, access, sve));
                Assert.Equal(managedError?.GetType(), nativeError?.GetType());
                Assert.Equal((managedError as ArgumentException)?.ParamName, (nativeError as ArgumentException)?.ParamName);
                if (managedError is null)
                {
                    applied++;
                }
                else
                {
                    rejected++;
                }

                Assert.Equal(managed.MaxMappedPfn, target.MaxMappedPfn);
                Assert.Equal(managed.PodEntryCount, target.PodEntryCount);
                Assert.Equal(managed.TableFrameCount, target.TableFrameCount);

                if (op % 100 == 99)
                {
                    CompareReaders(random, managed, target, nativeOnA, nativeOnB, gfn, count);
                }
            }

            CompareReaders(random, managed, target, nativeOnA, nativeOnB, 0, 1UL << 14);
            Assert.True(applied > operations / 2, $"only {applied} of {operations} writes were valid ({rejected} rejected)");
        }

        // Four readers over two trees built by different writers: all four must agree.
        private static void CompareReaders(Random random, P2m managed, P2m target, NativeWalker nativeOnA, NativeWalker nativeOnB, ulong hotGfn, ulong hotCount)
        {
            for (int i = 0; i < 2_000; i++)
            {
                ulong gfn = i % 2 == 0
                    ? hotGfn + (ulong)random.NextInt64((long)hotCount)
                    : (ulong)random.NextInt64(1L << 21);
                P2mEntry a = managed.GetEntry(gfn);
                Assert.Equal(a, target.GetEntry(gfn));
                Assert.Equal(a, nativeOnA.GetEntry(gfn));
                Assert.Equal(a, nativeOnB.GetEntry(gfn));

                ulong gpa = (gfn << 12) | (ulong)(uint)random.Next(4096);
                var access = (AccessKind)random.Next(1, 8);
                EptTranslation t = managed.Translate(gpa, access);
                Assert.Equal(t, target.Translate(gpa, access));
                Assert.Equal(t, nativeOnA.Translate(gpa, access));
                Assert.Equal(t, nativeOnB.Translate(gpa, access));
            }
        }

        private static Exception? Capture(Action action)
        {
            try
            {
                action();
                return null;
            }
            catch (Exception e) when (e is ArgumentException or InsufficientMemoryException)
            {
                return e;
            }
        }

        private static void Count(Dictionary<(EptStatus, int), int> counts, (EptStatus, int) key)
        {
            counts.TryGetValue(key, out int n);
            counts[key] = n + 1;
        }

        private static bool SameBytes(HostMemory a, HostMemory b)
        {
            for (ulong mfn = 0; mfn < Frames; mfn++)
            {
                if (!a.Frame(mfn).SequenceEqual(b.Frame(mfn)))
                {
                    return false;
                }
            }

            return true;
        }

    }
}
