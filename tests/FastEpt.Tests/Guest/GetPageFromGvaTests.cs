// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Guest
{
    /// <summary>
    /// <see cref="Vcpu.GetPageFromGva"/> (docs/model/mem-access.md §5.4): the fast CPU-style path under the p2m read
    /// lock, the mem_access fallback entered unlocked, page references, and the seed deadlock
    /// scenario with a writer queued on a writer-preferring lock.
    /// </summary>
    public sealed partial class GetPageFromGvaTests
    {
        private const ulong Gla = TwoDimensionalGuest.Gla;
        private const ulong QualFinal = 0x100;

        // Independent statements of docs/model/types.md §2.3 (EPT rights of an access on RamRw) and 5.4
        // (whether mem_access explains a failure), written out here rather than taken from the library.
        private static readonly Dictionary<P2mAccess, string> Rights = new()
        {
            [P2mAccess.N] = "", [P2mAccess.R] = "r", [P2mAccess.RW] = "rw", [P2mAccess.X] = "x",
            [P2mAccess.RX] = "rx", [P2mAccess.RWX] = "rwx", [P2mAccess.RX2RW] = "rx", [P2mAccess.N2RWX] = "",
            [P2mAccess.R_PW] = "r",
        };

        private static readonly P2mAccess[] UsableOnRam = [.. Rights.Keys];   // W and WX are write-without-read on RAM

        private static bool Explains(P2mAccess a, bool write) => a switch
        {
            P2mAccess.RWX or P2mAccess.RW => false,
            P2mAccess.N or P2mAccess.N2RWX or P2mAccess.X => true,
            P2mAccess.R or P2mAccess.R_PW or P2mAccess.RX or P2mAccess.RX2RW => write,
            _ => throw new ArgumentOutOfRangeException(nameof(a)),
        };

        private static char Letter(AccessKind k) => k == AccessKind.Read ? 'r' : k == AccessKind.Write ? 'w' : 'x';

        private static ulong DataMfn(TwoDimensionalGuest g) => g.RamMfn + TwoDimensionalGuest.DataGfn;

        [Fact]
        public void FastPath_Read_ReferencesTheFrameAndSetsAccessed()
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.WriteGuest(g.FinalGpa & ~7UL, 0x1122_3344_5566_7788);

            using (GuestPage page = g.Cpu.GetPageFromGva(Gla, AccessKind.Read))
            {
                Assert.Equal(GuestPageStatus.Ok, page.Status);
                Assert.False(page.ViaMemAccess);
                Assert.Equal(g.FinalGpa, page.Gpa);
                Assert.Equal(DataMfn(g), page.Mfn);
                Assert.Equal(P2mType.RamRw, page.Type);
                Assert.Equal((int)(Gla & 0xFFF), page.Offset);
                Assert.Equal(0x1122_3344_5566_7788UL, BitConverter.ToUInt64(page.Bytes.Slice(page.Offset & ~7, 8)));
                Assert.Equal(1, g.Memory.ReferenceCount(DataMfn(g)));
            }

            Assert.Equal(0, g.Memory.ReferenceCount(DataMfn(g)));
            Assert.All(g.Entries(), e => Assert.True((e & Pte.Accessed) != 0, "the fast path is the CPU's walk: A is set"));
        }

        [Fact]
        public void FastPath_Write_SetsDirtyOnTheLeaf()
        {
            using TwoDimensionalGuest g = new(ad: false);
            using GuestPage page = g.Cpu.GetPageFromGva(Gla, AccessKind.Write);
            Assert.True(page.IsOk);
            Assert.True((g.ReadEntry(1) & Pte.Dirty) != 0);
        }

        [Theory]
        [InlineData("leaf not present", AccessKind.Read, false, (uint)0)]
        [InlineData("leaf read-only", AccessKind.Write, false, (uint)(PageFaultErrorCode.Present | PageFaultErrorCode.Write))]
        [InlineData("leaf supervisor", AccessKind.Read, true, (uint)(PageFaultErrorCode.Present | PageFaultErrorCode.User))]
        [InlineData("leaf execute-disable", AccessKind.Execute, false, (uint)(PageFaultErrorCode.Present | PageFaultErrorCode.InstructionFetch))]
        public void Stage1Refusal_PageFaultWithTheErrorCode_NoReference(string shape, AccessKind access, bool user, uint expected)
        {
            using TwoDimensionalGuest g = new(ad: false);
            ulong leaf = g.ReadEntry(1);
            g.WriteEntry(1, shape switch
            {
                "leaf not present" => leaf & ~Pte.Present,
                "leaf read-only" => leaf & ~Pte.Writable,
                "leaf supervisor" => leaf & ~Pte.User,
                _ => leaf | Pte.ExecuteDisable,
            });
            g.SetAccess(0, TwoDimensionalGuest.PdGfn, P2mAccess.RX);    // mem_access on: the fallback must not hide a #PF

            using GuestPage page = g.Cpu.GetPageFromGva(Gla, access, user);

            Assert.Equal(GuestPageStatus.PageFault, page.Status);
            PageFaultErrorCode want = (PageFaultErrorCode)expected | (user ? PageFaultErrorCode.User : 0);
            Assert.Equal(want, page.Translation.ErrorCode);
            Assert.Equal(Mfn.Invalid, page.Mfn);
            Assert.Equal(0, g.Memory.ReferenceCount(DataMfn(g)));
            Assert.Throws<InvalidOperationException>(() => page.Bytes.Length);
        }

        [Fact]
        public void EptViolation_MemAccessOff_NoFallback_ThenOnGrantsThePage()
        {
            using TwoDimensionalGuest g = new(ad: false);
            // Restricting through SetEntry leaves Domain.MemAccessEnabled off (Xen: mem_access_enabled).
            g.Domain.HostP2m.SetEntry(TwoDimensionalGuest.DataGfn, DataMfn(g), PageOrder.Size4K, P2mType.RamRw, P2mAccess.R);
            Assert.False(g.Domain.MemAccessEnabled);

            using (GuestPage off = g.Cpu.GetPageFromGva(Gla, AccessKind.Write))
            {
                Assert.Equal(GuestPageStatus.EptViolation, off.Status);
                Assert.Equal(GuestStatus.EptViolation, off.Translation.Status);
                Assert.NotEqual(0UL, off.Translation.Ept.Qualification & QualFinal);
            }

            g.Domain.MemAccessEnabled = true;
            using GuestPage on = g.Cpu.GetPageFromGva(Gla, AccessKind.Write);
            Assert.Equal(GuestPageStatus.Ok, on.Status);
            Assert.True(on.ViaMemAccess);
            Assert.Equal(DataMfn(g), on.Mfn);
            Assert.Equal(P2mAccess.R, g.Domain.HostP2m.GetEntry(TwoDimensionalGuest.DataGfn).Access);   // no promotion, no event
            Assert.False(g.Domain.MemAccessEvents.TryRead(out _));
        }

        public static TheoryData<P2mAccess, AccessKind> FinalAccessCases()
        {
            TheoryData<P2mAccess, AccessKind> data = new();
            foreach (P2mAccess a in UsableOnRam)
            {
                foreach (AccessKind k in new[] { AccessKind.Read, AccessKind.Write, AccessKind.Execute })
                {
                    data.Add(a, k);
                }
            }

            return data;
        }

        [Theory]
        [MemberData(nameof(FinalAccessCases))]
        public void FinalPageAccess_AllowedExplainedOrRefused(P2mAccess access, AccessKind kind)
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.SetAccess(0, TwoDimensionalGuest.DataGfn, access);

            using GuestPage page = g.Cpu.GetPageFromGva(Gla, kind);

            bool allowed = Rights[access].Contains(Letter(kind));
            bool explained = !allowed && Explains(access, kind == AccessKind.Write);
            Assert.Equal(allowed || explained ? GuestPageStatus.Ok : GuestPageStatus.EptViolation, page.Status);
            Assert.Equal(explained, page.ViaMemAccess);
            Assert.Equal(allowed || explained ? 1 : 0, g.Memory.ReferenceCount(DataMfn(g)));
            Assert.Equal(access, g.Domain.HostP2m.GetEntry(TwoDimensionalGuest.DataGfn).Access);
        }

        [Fact]
        public void FinalExplainedButRamRo_NotRam()
        {
            // Xen's fallback requires ram_rw even when mem_access explains the failure.
            using TwoDimensionalGuest g = new(ad: false);
            g.Domain.HostP2m.SetEntry(TwoDimensionalGuest.DataGfn, DataMfn(g), PageOrder.Size4K, P2mType.RamRo, P2mAccess.N);
            g.Domain.MemAccessEnabled = true;

            using GuestPage page = g.Cpu.GetPageFromGva(Gla, AccessKind.Read);

            Assert.Equal(GuestPageStatus.NotRam, page.Status);
            Assert.Equal(0, g.Memory.ReferenceCount(DataMfn(g)));
        }

        [Theory]
        [InlineData(4)]
        [InlineData(3)]
        [InlineData(2)]
        [InlineData(1)]
        public void PageTableRestricted_SoftwareWalkFindsThePage_WithoutTouchingAd(int level)
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.SetAccess(0, TwoDimensionalGuest.TableGfn(level), P2mAccess.N);
            ulong[] before = g.Entries();

            using GuestPage page = g.Cpu.GetPageFromGva(Gla, AccessKind.Read);

            Assert.Equal(GuestStatus.EptViolation, page.Translation.Status);
            Assert.Equal(0UL, page.Translation.Ept.Qualification & QualFinal);      // the fast path failed on the table
            Assert.Equal(GuestPageStatus.Ok, page.Status);
            Assert.True(page.ViaMemAccess);
            Assert.Equal(g.FinalGpa, page.Gpa);
            Assert.Equal(DataMfn(g), page.Mfn);
            Assert.Equal(before, g.Entries());
        }

        [Fact]
        public void PageTableReadOnlyByMemAccess_WriteNeedingAd_IsExplained()
        {
            // r on a table page: the walk reads it but cannot set A there (an EPT write).
            using TwoDimensionalGuest g = new(ad: false);
            g.SetAccess(0, TwoDimensionalGuest.PdptGfn, P2mAccess.R);

            using GuestPage page = g.Cpu.GetPageFromGva(Gla, AccessKind.Read);

            Assert.Equal(0x3UL, page.Translation.Ept.Qualification & 0x7);      // the A write failed (read and write: EPT A/D off)
            Assert.True(page.IsOk && page.ViaMemAccess);
        }

        [Fact]
        public void PageTableRestricted_SoftwareWalkStillAppliesStage1Rights()
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.WriteEntry(1, g.ReadEntry(1) & ~Pte.Writable);
            g.SetAccess(0, TwoDimensionalGuest.PtGfn, P2mAccess.N);

            using GuestPage page = g.Cpu.GetPageFromGva(Gla, AccessKind.Write);

            Assert.Equal(GuestPageStatus.PageFault, page.Status);
            Assert.Equal(PageFaultErrorCode.Present | PageFaultErrorCode.Write, page.Translation.ErrorCode);
        }

        [Fact]
        public void PageTableNotMapped_NotExplained_ReportsTheFastPathViolation()
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.SetAccess(0, TwoDimensionalGuest.DataGfn, P2mAccess.N);       // mem_access on
            g.Domain.HostP2m.SetEntry(TwoDimensionalGuest.PdGfn, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);

            using GuestPage page = g.Cpu.GetPageFromGva(Gla, AccessKind.Read);

            Assert.Equal(GuestPageStatus.EptViolation, page.Status);
            Assert.Equal((TwoDimensionalGuest.PdGfn << 12) | (TwoDimensionalGuest.Index(Gla, 2) * 8), page.Translation.Gpa);
        }

        [Fact]
        public void FinalPageIsMmio_NotRam_OrViolation()
        {
            using TwoDimensionalGuest g = new(ad: false);
            g.Domain.HostP2m.SetEntry(TwoDimensionalGuest.DataGfn, DataMfn(g), PageOrder.Size4K, P2mType.MmioDirect, P2mAccess.RWX);
            using (GuestPage direct = g.Cpu.GetPageFromGva(Gla, AccessKind.Read))
            {
                Assert.Equal(GuestPageStatus.NotRam, direct.Status);      // translates, but not RAM
            }

            g.Domain.HostP2m.SetEntry(TwoDimensionalGuest.DataGfn, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);
            g.Domain.MapMmio(TwoDimensionalGuest.DataGfn, 1, new NullDevice());
            g.Domain.MemAccessEnabled = true;
            using GuestPage dm = g.Cpu.GetPageFromGva(Gla, AccessKind.Read);
            Assert.Equal(GuestPageStatus.EptViolation, dm.Status);
            Assert.Equal(0, g.Memory.ReferenceCount(DataMfn(g)));
        }

        [Fact]
        public void FlatAndNonCanonical()
        {
            using TwoDimensionalGuest g = new(ad: false);
            using (GuestPage nc = g.Cpu.GetPageFromGva(0x0000_8000_0000_0000, AccessKind.Read))
            {
                Assert.Equal(GuestPageStatus.NonCanonical, nc.Status);
            }

            g.Cpu.Mode = GuestPagingMode.Flat;
            using GuestPage flat = g.Cpu.GetPageFromGva(0x20_123, AccessKind.Write);
            Assert.True(flat.IsOk);
            Assert.Equal(0x20_123UL, flat.Gpa);
            Assert.Equal(g.RamMfn + 0x20, flat.Mfn);
        }

        [Fact]
        public void BadAccessKind_ThrowsNamingTheArgument()
        {
            using TwoDimensionalGuest g = new(ad: false);
            foreach (AccessKind bad in new[] { (AccessKind)0, AccessKind.Read | AccessKind.Write, (AccessKind)8 })
            {
                ArgumentOutOfRangeException ex = Assert.Throws<ArgumentOutOfRangeException>(() => g.Cpu.GetPageFromGva(Gla, bad));
                Assert.Equal("access", ex.ParamName);
            }
        }

        [Fact]
        public void HeldPage_SurvivesUnmapAndFree_UntilDisposed()
        {
            using TwoDimensionalGuest g = new(ad: false);
            ulong mfn = DataMfn(g);
            g.Memory.Frame(mfn).Fill(0x77);
            GuestPage page = g.Cpu.GetPageFromGva(Gla, AccessKind.Read);
            Assert.True(page.IsOk);

            g.Domain.HostP2m.SetEntry(TwoDimensionalGuest.DataGfn, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);
            g.Memory.FreeFrame(mfn);
            var taken = new List<ulong>();
            while (g.Memory.TryAllocateFrame(out ulong f))
            {
                taken.Add(f);
            }

            Assert.DoesNotContain(mfn, taken);
            Assert.True(page.Bytes.IndexOfAnyExcept((byte)0x77) < 0);

            page.Dispose();
            Assert.True(g.Memory.TryAllocateFrame(out ulong reused));
            Assert.Equal(mfn, reused);
            Assert.Throws<InvalidOperationException>(() => page.Dispose());     // the reference is gone
        }

        [Fact]
        public void AlternateView_LazyCopyFirst_ThenTheViewsAccessDecides()
        {
            // An alternate view that has not copied a GFN yet fails like the CPU would; the embedder
            // resolves the violation (lazy copy) and asks again.
            using TwoDimensionalGuest g = new(ad: false);
            int view = g.Domain.Altp2m.CreateView();
            g.Domain.Altp2m.Switch(g.Cpu, view);
            Assert.Equal(P2mStatus.Ok, g.Domain.Altp2m.SetMemAccess(view, TwoDimensionalGuest.DataGfn, P2mAccess.N));

            GuestPage page = default;
            int exits = 0;
            for (; exits < 10; exits++)
            {
                page = g.Cpu.GetPageFromGva(Gla, AccessKind.Read);
                if (page.Status != GuestPageStatus.EptViolation)
                {
                    break;
                }

                Assert.Equal(FaultOutcome.Retry, g.Domain.HandleEptViolationExit(g.Cpu, page.Translation.Gpa, page.Translation.Ept.Qualification, Gla));
            }

            using (page)
            {
                Assert.Equal(4, exits);      // the four table pages; the data page was copied by SetMemAccess
                Assert.True(page.IsOk && page.ViaMemAccess);
                Assert.Equal(DataMfn(g), page.Mfn);
            }

            // The host view is unrestricted: the same address on view 0 takes the fast path.
            g.Domain.Altp2m.Switch(g.Cpu, 0);
            using GuestPage host = g.Cpu.GetPageFromGva(Gla, AccessKind.Read);
            Assert.True(host.IsOk && !host.ViaMemAccess);
        }

        private sealed class NullDevice : IMmioDevice
        {
            public MmioResult Read(ulong gpa, int size, out ulong value)
            {
                value = 0;
                return MmioResult.Okay;
            }

            public MmioResult Write(ulong gpa, int size, ulong value) => MmioResult.Okay;
        }
    }
}
