// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.P2mTests
{
    /// <summary>
    /// Lazy recalculation (docs/model/p2m.md §3.7 and the 3.9 recalc scenarios), log-dirty end to end, and
    /// the preemptible range operations interrupted at every step.
    /// </summary>
    public sealed class RecalcAndRangeTests
    {
        private const ulong Pages = 2048;                 // 4 PTs of 4K RamRw pages

        private sealed class Guest : IDisposable
        {
            public Guest(bool superpages = false)
            {
                Memory = new HostMemory(8192L * 4096);
                P2m = new P2m(Memory);
                RamMfn = Memory.AllocateFrames((long)Pages + 512);
                RamMfn = (RamMfn + 511) & ~511UL;
                for (ulong g = 0; g < Pages; g += superpages && g % 1024 == 0 ? 512UL : 1UL)
                {
                    bool big = superpages && g % 1024 == 0;
                    P2m.SetEntry(g, RamMfn + g, big ? PageOrder.Size2M : PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                }
            }

            public HostMemory Memory { get; }

            public P2m P2m { get; }

            public ulong RamMfn { get; }

            public (ulong Mfn, P2mType Type, P2mAccess Access)[] Snapshot()
                => Enumerable.Range(0, (int)Pages).Select(g => P2m.GetEntry((ulong)g)).Select(e => (e.Mfn, e.Type, e.Access)).ToArray();

            public ulong RootSlot(int i) => Memory.ReadUInt64((P2m.RootMfn << 12) + ((ulong)i * 8));

            public void Dispose()
            {
                P2m.Dispose();
                Memory.Dispose();
            }
        }

        private static int Emt(ulong pte) => (int)((pte >> 3) & 7);

        // The raw 4K leaf of `gfn` (walks the live tables).
        private static ulong RawLeaf(Guest g, ulong gfn)
        {
            ulong table = g.P2m.RootMfn;
            for (int level = 4; level > 1; level--)
            {
                ulong e = g.Memory.ReadUInt64((table << 12) + (((gfn >> (9 * (level - 1))) & 511) * 8));
                Assert.True((e & 0x80) == 0, "expected a table pointer");
                table = (e & 0x000F_FFFF_FFFF_F000) >> 12;
            }

            return g.Memory.ReadUInt64((table << 12) + ((gfn & 511) * 8));
        }

        [Fact]
        public void ChangeTypeGlobal_MarksRoot_GetEntryAtOnce_MisconfigResolvesOneTable()
        {
            using var g = new Guest();
            ulong before = RawLeaf(g, 0x123);
            g.P2m.ChangeTypeGlobal(P2mType.RamRw, P2mType.RamLogDirty);

            ulong root = g.RootSlot(0);
            Assert.Equal(7, Emt(root));
            Assert.True((root & (1UL << 10)) != 0, "recalc on the root slot");
            Assert.Equal(before, RawLeaf(g, 0x123));                  // O(1): no leaf touched
            Assert.True(g.P2m.GlobalLogDirty);
            Assert.All(g.Snapshot(), e => Assert.Equal(P2mType.RamLogDirty, e.Type));
            Assert.Equal(EptStatus.Misconfig, g.P2m.Translate(0x123000, AccessKind.Read).Status);

            Assert.True(g.P2m.ResolveMisconfig(0x123));
            for (ulong gfn = 0x000; gfn < 0x200; gfn++)
            {
                ulong leaf = RawLeaf(g, gfn);
                Assert.Equal((ulong)P2mType.RamLogDirty, (leaf >> 52) & 0x3F);
                Assert.Equal(0UL, leaf & 2);                           // no write right
                Assert.Equal(0UL, leaf & (1UL << 10));                 // recalc cleared
                Assert.NotEqual(7, Emt(leaf));
            }

            // Leaves of the other page tables: still RamRw underneath, reported log-dirty through their ancestors.
            Assert.Equal((ulong)P2mType.RamRw, (RawLeaf(g, 0x456) >> 52) & 0x3F);
            Assert.Equal(P2mType.RamLogDirty, g.P2m.GetEntry(0x456).Type);
            Assert.Equal(EptStatus.Misconfig, g.P2m.Translate(0x456000, AccessKind.Read).Status);

            EptTranslation read = g.P2m.Translate(0x123000, AccessKind.Read);
            Assert.Equal(EptStatus.Ok, read.Status);
            Assert.Equal((g.RamMfn + 0x123) << 12, read.Hpa);
            Assert.Equal(EptStatus.Violation, g.P2m.Translate(0x123000, AccessKind.Write).Status);
            Assert.False(g.P2m.ResolveMisconfig(0x123));               // nothing left on that path
        }

        [Fact]
        public void SetEntryUnderAMark_ResolvesThePathFirst_NewEntryKeepsItsType()
        {
            using var g = new Guest();
            g.P2m.ChangeTypeGlobal(P2mType.RamRw, P2mType.RamLogDirty);
            g.P2m.SetEntry(0x300, g.RamMfn + 0x300, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);

            Assert.Equal(P2mType.RamRw, g.P2m.GetEntry(0x300).Type);
            Assert.Equal(P2mType.RamLogDirty, g.P2m.GetEntry(0x301).Type);
            Assert.Equal(P2mType.RamLogDirty, g.P2m.GetEntry(0x700).Type);
            Assert.Equal(EptStatus.Ok, g.P2m.Translate(0x300000, AccessKind.Write).Status);
        }

        [Fact]
        public void MixedSuperpage_SplitOnResolve_EachPartItsType()
        {
            // docs/model/p2m.md §3.9: log-dirty range [0x200, 0x2FF], global off, a 2M RamRw page at 0x200,
            // recalculate all, then a misconfiguration at 0x250.
            using var memory = new HostMemory(4096L * 4096);
            using var p2m = new P2m(memory);
            var none = Preemption.Never;
            Assert.Equal(Progress.Done, p2m.ChangeTypeRange(0x200, 0x2FF, P2mType.RamRw, P2mType.RamLogDirty, ref none));
            ulong mfn = (memory.AllocateFrames(1024) + 511) & ~511UL;
            p2m.SetEntry(0x200, mfn, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            p2m.ChangeTypeGlobal(P2mType.RamLogDirty, P2mType.RamRw);     // global off, recalc everything
            Assert.False(p2m.GlobalLogDirty);
            Assert.Equal(P2mType.RamLogDirty, p2m.GetEntry(0x250).Type);
            Assert.Equal(P2mType.RamRw, p2m.GetEntry(0x350).Type);
            Assert.Equal(9, p2m.GetEntry(0x250).Order);

            Assert.True(p2m.ResolveMisconfig(0x250));

            for (ulong gfn = 0x200; gfn < 0x400; gfn++)
            {
                P2mEntry e = p2m.GetEntry(gfn);
                Assert.Equal(0, e.Order);
                Assert.Equal(gfn < 0x300 ? P2mType.RamLogDirty : P2mType.RamRw, e.Type);
                Assert.Equal(mfn + (gfn - 0x200), e.Mfn);
                Assert.Equal(EptStatus.Ok, p2m.Translate(gfn << 12, AccessKind.Read).Status);
            }

            Assert.Equal(EptStatus.Violation, p2m.Translate(0x250000, AccessKind.Write).Status);
            Assert.Equal(EptStatus.Ok, p2m.Translate(0x350000, AccessKind.Write).Status);
        }

        [Fact]
        public void SpuriousMisconfig_SecondVcpuHandled_UnexplainedOneCrashes()
        {
            using var memory = new HostMemory(4096L * 4096);
            using var d = new Domain(memory, new DomainOptions { Vcpus = 3, AltViews = 0 });
            ulong ram = memory.AllocateFrames(512);
            for (ulong gfn = 0; gfn < 512; gfn++)
            {
                d.HostP2m.SetEntry(gfn, ram + gfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            d.HostP2m.ChangeTypeGlobal(P2mType.RamRw, P2mType.RamLogDirty);
            Assert.Equal(FaultOutcome.Retry, d.HandleEptMisconfig(d.Vcpus[0], 0x10000));     // fixes the path (rc 1)
            Assert.Equal(FaultOutcome.Retry, d.HandleEptMisconfig(d.Vcpus[1], 0x10000));     // rc 0, spurious flag set
            Assert.False(d.IsCrashed);

            // vCPU 2 consumed nothing yet: its flag is set too; after it is consumed, an
            // unexplained misconfiguration crashes the domain.
            Assert.Equal(FaultOutcome.Retry, d.HandleEptMisconfig(d.Vcpus[2], 0x20000));
            Assert.Equal(FaultOutcome.Unhandled, d.HandleEptMisconfig(d.Vcpus[2], 0x30000));
            Assert.True(d.IsCrashed);
            Assert.Contains("misconfiguration", d.CrashReason);
        }

        [Fact]
        public void LogDirty_EndToEnd_WriteFaultMarksDirtyHarvestRearms()
        {
            using var memory = new HostMemory(4096L * 4096);
            using var d = new Domain(memory, new DomainOptions { AltViews = 0 });
            ulong ram = memory.AllocateFrames(1024);
            for (ulong gfn = 0; gfn < 1024; gfn++)
            {
                d.HostP2m.SetEntry(gfn, ram + gfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            Vcpu cpu = d.Vcpus[0];
            d.EnableLogDirty();
            Assert.True(d.LogDirtyEnabled);

            // A guest write, as an embedder runs it: misconfig -> resolve, violation -> mark dirty.
            int exits = WriteUntilOk(d, cpu, 0x5_0123);
            Assert.Equal(2, exits);
            Assert.Equal(1, WriteUntilOk(d, cpu, 0x6_0000));         // same PT already resolved: only the violation
            Assert.Equal(0, WriteUntilOk(d, cpu, 0x5_0FF0));         // already writable again
            Assert.Equal(EptStatus.Ok, d.HostP2m.Translate(0x7_0000, AccessKind.Read).Status);  // reads dirty nothing

            Assert.Equal([0x50UL, 0x60UL], d.HarvestDirty());
            Assert.Equal(0, d.DirtyPageCount);
            Assert.Equal(P2mType.RamLogDirty, d.HostP2m.GetEntry(0x50).Type);     // re-armed for the next round
            Assert.True(WriteUntilOk(d, cpu, 0x5_0000) > 0);
            Assert.Equal([0x50UL], d.HarvestDirty());

            // Writes through the emulator are caught too.
            cpu.Mode = GuestPagingMode.Flat;
            var emu = new HvmEmulation(cpu);
            Assert.Equal(EmulationResult.Okay, emu.LinearWrite(0x9_0010, [1, 2, 3], 0));
            Assert.Equal([0x90UL], d.HarvestDirty());

            d.DisableLogDirty();
            Assert.Equal(P2mType.RamRw, d.HostP2m.GetEntry(0x123).Type);
            Assert.True(WriteUntilOk(d, cpu, 0x123000) <= 1, "after log-dirty mode at most the misconfiguration exit");
            Assert.Empty(d.HarvestDirty());
            Assert.Throws<InvalidOperationException>(() => d.DisableLogDirty());
        }

        // Runs a guest write the way an embedder does; returns how many exits it took.
        private static int WriteUntilOk(Domain d, Vcpu cpu, ulong gpa)
        {
            for (int exits = 0; exits < 5; exits++)
            {
                EptTranslation t = d.HostP2m.Translate(gpa, AccessKind.Write);
                switch (t.Status)
                {
                    case EptStatus.Ok:
                        return exits;
                    case EptStatus.Misconfig:
                        Assert.Equal(FaultOutcome.Retry, d.HandleEptMisconfig(cpu, gpa));
                        break;
                    default:
                        Assert.Equal(FaultOutcome.Retry, d.HandleEptViolation(cpu, gpa, AccessKind.Write, gla: null));
                        break;
                }
            }

            throw new InvalidOperationException("the write never succeeded");
        }

        public static TheoryData<string, bool> RangeOperations()
        {
            TheoryData<string, bool> data = new();
            foreach (string op in new[] { "eager", "lazy", "relinquish" })
            {
                data.Add(op, true);       // 2M pages at 0x000 and 0x400, 4K pages elsewhere
                data.Add(op, false);      // 4K pages only
            }

            return data;
        }

        [Theory]
        [MemberData(nameof(RangeOperations))]
        public void RangeOperation_InterruptedAtEveryStep_ConsistentThenSameAsUninterrupted(string op, bool superpages)
        {
            // The range starts inside the 2M page at 0x400 and ends among 4K pages.
            const ulong First = 0x4F0, Last = 0x710;
            var o = Preemption.Never;
            (ulong, P2mType, P2mAccess)[] initial, final;
            using (var reference = new Guest(superpages))
            {
                initial = reference.Snapshot();
                Assert.Equal(Progress.Done, Run(reference, op, ref o));
                final = reference.Snapshot();
            }

            // The uninterrupted result against the rule itself, not against the code.
            for (int gfn = 0; gfn < final.Length; gfn++)
            {
                bool inRange = (ulong)gfn >= First && (ulong)gfn <= Last;
                (ulong, P2mType, P2mAccess) want = op switch
                {
                    "relinquish" => (Mfn.Invalid, P2mType.MmioDm, P2mAccess.N),
                    "eager" when inRange => initial[gfn] with { Item2 = P2mType.RamRo },
                    "lazy" when inRange => initial[gfn] with { Item2 = P2mType.RamLogDirty },
                    _ => initial[gfn],
                };
                Assert.True(want == final[gfn], $"{op}: gfn 0x{gfn:X} ended {final[gfn]}, expected {want}");
            }

            int steps = o.Checks;
            Assert.True(steps > 3, $"{op}: only {steps} preemption points");
            for (int k = 0; k <= steps; k++)
            {
                using var g = new Guest(superpages);
                var p = Preemption.After(k);
                Progress first = Run(g, op, ref p);
                Assert.Equal(k < steps ? Progress.Restart : Progress.Done, first);

                // Interrupted: every GFN is either as before or as after; outside the range nothing moved.
                var now = g.Snapshot();
                for (int gfn = 0; gfn < now.Length; gfn++)
                {
                    bool inRange = op == "relinquish" || ((ulong)gfn >= First && (ulong)gfn <= Last);
                    if (!inRange)
                    {
                        Assert.Equal(initial[gfn], now[gfn]);
                    }
                    else if (now[gfn] != initial[gfn] && now[gfn] != final[gfn])
                    {
                        Assert.Fail($"{op} k={k}: gfn 0x{gfn:X} is {now[gfn]}, neither {initial[gfn]} nor {final[gfn]}");
                    }

                    if (now[gfn].Item1 != Mfn.Invalid && op != "lazy")
                    {
                        Assert.Equal(EptStatus.Ok, g.P2m.Translate((ulong)gfn << 12, AccessKind.Read).Status);
                    }
                }

                // Resume to completion.
                var rest = Preemption.Never;
                int rounds = 0;
                while (Run(g, op, ref rest) != Progress.Done)
                {
                    Assert.True(++rounds < 3, "a Never budget must finish");
                }

                Assert.Equal(final, g.Snapshot());
                if (op == "relinquish")
                {
                    Assert.Equal(0, P2mConcurrencyTests.ReclaimUntilEmpty(g.P2m));
                    Assert.Equal(1, g.P2m.TableFrameCount);
                }
            }
        }

        private static Progress Run(Guest g, string op, ref Preemption p) => op switch
        {
            "eager" => g.P2m.ChangeTypeRange(0x4F0, 0x710, P2mType.RamRw, P2mType.RamRo, ref p),
            "lazy" => g.P2m.ChangeTypeRange(0x4F0, 0x710, P2mType.RamRw, P2mType.RamLogDirty, ref p),
            _ => g.P2m.Relinquish(ref p),
        };

        [Fact]
        public void LazyRange_TranslateMisconfigsInsideOnly_ResolveSplitsStraddlingSuperpage()
        {
            using var g = new Guest(superpages: true);
            var p = Preemption.Never;
            Assert.Equal(Progress.Done, g.P2m.ChangeTypeRange(0x4F0, 0x710, P2mType.RamRw, P2mType.RamLogDirty, ref p));
            Assert.Equal(P2mType.RamRw, g.P2m.GetEntry(0x4EF).Type);
            Assert.Equal(P2mType.RamLogDirty, g.P2m.GetEntry(0x4F0).Type);
            Assert.Equal(P2mType.RamLogDirty, g.P2m.GetEntry(0x710).Type);
            Assert.Equal(P2mType.RamRw, g.P2m.GetEntry(0x711).Type);
            Assert.Equal(EptStatus.Misconfig, g.P2m.Translate(0x600000, AccessKind.Read).Status);
            Assert.Equal(EptStatus.Ok, g.P2m.Translate(0x711000, AccessKind.Write).Status);
            Assert.True(g.P2m.ResolveMisconfig(0x600));
            Assert.Equal(EptStatus.Violation, g.P2m.Translate(0x600000, AccessKind.Write).Status);
            Assert.Equal(EptStatus.Ok, g.P2m.Translate(0x600000, AccessKind.Read).Status);
        }

        [Fact]
        public void BadInput_ClearErrorsNothingChanged()
        {
            using var g = new Guest();
            var p = Preemption.Never;
            var before = g.Snapshot();
            Assert.Equal("to", Assert.Throws<ArgumentException>(() => g.P2m.ChangeTypeGlobal(P2mType.RamRw, P2mType.RamRo)).ParamName);
            Assert.Equal("to", Assert.Throws<ArgumentException>(() => g.P2m.ChangeTypeGlobal(P2mType.RamRw, P2mType.RamRw)).ParamName);
            Assert.Throws<ArgumentOutOfRangeException>(() => { var q = Preemption.Never; g.P2m.ChangeTypeRange(5, 4, P2mType.RamRw, P2mType.RamRo, ref q); });
            Assert.Throws<ArgumentException>(() => { var q = Preemption.Never; g.P2m.ChangeTypeRange(0, 4, P2mType.RamRw, P2mType.PopulateOnDemand, ref q); });
            Assert.Throws<ArgumentOutOfRangeException>(() => g.P2m.ResolveMisconfig(1UL << 40));
            Assert.Throws<ArgumentOutOfRangeException>(() => Preemption.After(-1));
            Assert.Equal(Progress.Done, g.P2m.ChangeTypeRange(0, 4, P2mType.RamRw, P2mType.RamRw, ref p));
            Assert.Equal(before, g.Snapshot());
            Assert.False(g.P2m.ResolveMisconfig(3));
        }

        [Fact]
        public async Task Torture_ReadersDuringGlobalChangesAndResolves_SeeOnlyRealStates()
        {
            using var g = new Guest(superpages: true);
            using var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(800));
            CancellationToken token = stop.Token;
            long bad = 0, reads = 0;
            string? firstBad = null;
            Task writer = Task.Factory.StartNew(() =>
            {
                var rng = new Random(7);
                bool on = false;
                while (!token.IsCancellationRequested)
                {
                    if (rng.Next(8) == 0)
                    {
                        g.P2m.ChangeTypeGlobal(on ? P2mType.RamLogDirty : P2mType.RamRw, on ? P2mType.RamRw : P2mType.RamLogDirty);
                        on = !on;
                    }
                    else
                    {
                        g.P2m.ResolveMisconfig((ulong)rng.Next((int)Pages));
                    }
                }
            }, TaskCreationOptions.LongRunning);
            Task[] readers = Enumerable.Range(0, 2).Select(r => Task.Factory.StartNew(() =>
            {
                var rng = new Random(r);
                while (!token.IsCancellationRequested)
                {
                    ulong gfn = (ulong)rng.Next((int)Pages);
                    P2mEntry e = g.P2m.GetEntry(gfn);
                    EptTranslation t = g.P2m.Translate(gfn << 12, AccessKind.Read);
                    bool ok = e.Mfn == g.RamMfn + gfn && e.Type is P2mType.RamRw or P2mType.RamLogDirty
                              && (t.Status == EptStatus.Misconfig || (t.Status == EptStatus.Ok && t.Hpa == (g.RamMfn + gfn) << 12));
                    if (!ok && Interlocked.Increment(ref bad) == 1)
                    {
                        firstBad = $"gfn 0x{gfn:X}: {e} / {t}";
                    }

                    Interlocked.Increment(ref reads);
                }
            }, TaskCreationOptions.LongRunning)).ToArray();

            await Task.WhenAll(readers.Append(writer)).WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(bad == 0, firstBad);
            Assert.True(reads > 1000);
        }
    }
}
