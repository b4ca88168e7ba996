// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.DomainTests
{
    // docs/model/mem-access.md §5.5 (mem_access) and the software #VE scenarios of 4.8, through Domain.HandleEptViolation.
    public sealed class MemAccessTests : IDisposable
    {
        private const ulong Gfn = 0x40;
        private const ulong Frame = 0x140;
        private readonly HostMemory _memory = new(0x2000L << 12);
        private readonly Domain _domain;

        public MemAccessTests()
        {
            _domain = new Domain(_memory, new DomainOptions { Vcpus = 2, AltViews = 4, EventRingCapacity = 4 });
            for (ulong g = 0; g < 0x100; g++)
            {
                _domain.HostP2m.SetEntry(g, 0x100 + g, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }
        }

        public void Dispose()
        {
            _domain.Dispose();
            _memory.Dispose();
        }

        private Vcpu Cpu => _domain.Vcpus[0];

        private P2m Host => _domain.HostP2m;

        private void SetHostAccess(ulong gfn, P2mAccess a) => Assert.Equal(P2mStatus.Ok, _domain.Altp2m.SetMemAccess(0, gfn, a));

        [Theory]
        [InlineData(P2mAccess.N, AccessKind.Read, true)]
        [InlineData(P2mAccess.N2RWX, AccessKind.Execute, true)]
        [InlineData(P2mAccess.R, AccessKind.Read, false)]
        [InlineData(P2mAccess.R, AccessKind.Write, true)]
        [InlineData(P2mAccess.R_PW, AccessKind.Execute, true)]
        [InlineData(P2mAccess.W, AccessKind.Read, true)]
        [InlineData(P2mAccess.W, AccessKind.Write, false)]
        [InlineData(P2mAccess.X, AccessKind.Write, true)]
        [InlineData(P2mAccess.X, AccessKind.Execute, false)]
        [InlineData(P2mAccess.RX, AccessKind.Write, true)]
        [InlineData(P2mAccess.RX2RW, AccessKind.Execute, false)]
        [InlineData(P2mAccess.WX, AccessKind.Read, true)]
        [InlineData(P2mAccess.WX, AccessKind.Execute, false)]
        [InlineData(P2mAccess.RW, AccessKind.Execute, true)]
        [InlineData(P2mAccess.RW, AccessKind.Write, false)]
        [InlineData(P2mAccess.RWX, AccessKind.Execute, false)]
        public void ViolationTable_Spec51(P2mAccess access, AccessKind kind, bool violation)
            => Assert.Equal(violation, MemAccessRules.IsViolation(access, kind));

        [Fact]
        public void Rx2rw_WriteFault_PromotesToRwWithoutEvent()
        {
            SetHostAccess(Gfn, P2mAccess.RX2RW);
            _domain.MonitorMemAccess = true;
            Assert.Equal(FaultOutcome.Retry, _domain.HandleEptViolation(Cpu, Gfn << 12, AccessKind.Write, null));
            Assert.Equal(P2mAccess.RW, Host.GetEntry(Gfn).Access);
            Assert.False(_domain.MemAccessEvents.TryRead(out _));
            Assert.False(Cpu.IsPaused);
        }

        [Fact]
        public void N2rwx_ReadFaultWithListener_RwxAndAsynchronousEvent()
        {
            SetHostAccess(Gfn, P2mAccess.N2RWX);
            _domain.MonitorMemAccess = true;
            Assert.Equal(FaultOutcome.MemAccessEvent, _domain.HandleEptViolation(Cpu, (Gfn << 12) | 0x18, AccessKind.Read, null));
            Assert.Equal(P2mAccess.RWX, Host.GetEntry(Gfn).Access);
            Assert.True(_domain.MemAccessEvents.TryRead(out MemAccessEvent ev));
            Assert.Equal(MemAccessFlags.Read, ev.Flags);
            Assert.False(ev.IsSynchronous);
            Assert.Equal((Gfn, 0x18UL, ~0UL, P2mAccess.N2RWX, 0), (ev.Gfn, ev.Offset, ev.Gla, ev.Access, ev.View));
            Assert.False(Cpu.IsPaused);
        }

        [Fact]
        public void R_WriteFaultNoListener_RelaxedToRwx()
        {
            SetHostAccess(Gfn, P2mAccess.R);
            Assert.Equal(FaultOutcome.Retry, _domain.HandleEptViolation(Cpu, Gfn << 12, AccessKind.Write, null));
            Assert.Equal(P2mAccess.RWX, Host.GetEntry(Gfn).Access);
            Assert.False(_domain.IsCrashed);
        }

        [Fact]
        public void R_WriteFaultNoListenerAccessRequired_CrashesDomain()
        {
            SetHostAccess(Gfn, P2mAccess.R);
            _domain.AccessRequired = true;
            Assert.Equal(FaultOutcome.Unhandled, _domain.HandleEptViolation(Cpu, Gfn << 12, AccessKind.Write, null));
            Assert.True(_domain.IsCrashed);
            Assert.Contains("AccessRequired", _domain.CrashReason);
            Assert.Equal(P2mAccess.R, Host.GetEntry(Gfn).Access);
            // A crashed domain handles nothing more.
            Assert.Equal(FaultOutcome.Unhandled, _domain.HandleEptViolation(Cpu, 0x41000, AccessKind.Read, null));
        }

        [Fact]
        public void WriteFaultWithGla_Flags0x1B_PausesUntilAnswered()
        {
            SetHostAccess(Gfn, P2mAccess.R);
            _domain.MonitorMemAccess = true;
            ulong gpa = (Gfn << 12) | 0xABC;
            Assert.Equal(FaultOutcome.MemAccessEvent, _domain.HandleEptViolation(Cpu, gpa, AccessKind.Write, 0x7FFF_1234_5ABCUL));
            Assert.True(_domain.MemAccessEvents.TryRead(out MemAccessEvent ev));
            Assert.Equal(0x1BU, (uint)ev.Flags & 0xFFFF);
            Assert.True(ev.IsSynchronous);
            Assert.Equal((0xABCUL, 0x7FFF_1234_5ABCUL, 0, MemAccessEventKind.Violation), (ev.Offset, ev.Gla, ev.VcpuId, ev.Kind));
            Assert.True(Cpu.IsPaused);
            Assert.Equal(ev.Id, Cpu.PausedOnEvent);
            Assert.False(Cpu.WaitUntilRunning(TimeSpan.Zero));
            Assert.Equal(P2mAccess.R, Host.GetEntry(Gfn).Access);   // a synchronous event changes no access

            _domain.RespondToMemAccess(ev);
            Assert.False(Cpu.IsPaused);
            Assert.True(Cpu.WaitUntilRunning(TimeSpan.Zero));
            Assert.Throws<InvalidOperationException>(() => _domain.RespondToMemAccess(ev));
        }

        [Fact]
        public void ExitQualification_GuestPageTableAccess_FlagsInGpt()
        {
            SetHostAccess(Gfn, P2mAccess.N);
            _domain.MonitorMemAccess = true;
            // bit 0 (read) + bit 7 (linear address valid), bit 8 clear: a paging-structure access.
            Assert.Equal(FaultOutcome.MemAccessEvent, _domain.HandleEptViolationExit(Cpu, Gfn << 12, 0x81, 0x1000));
            Assert.True(_domain.MemAccessEvents.TryRead(out MemAccessEvent ev));
            Assert.Equal(MemAccessFlags.Read | MemAccessFlags.GlaValid | MemAccessFlags.FaultInGuestPageTable | MemAccessFlags.VcpuPaused, ev.Flags);
            // A write-only qualification is folded into read + write, as Xen does.
            _domain.RespondToMemAccess(ev);
            Assert.Equal(FaultOutcome.MemAccessEvent, _domain.HandleEptViolationExit(Cpu, Gfn << 12, 0x2, 0));
            Assert.True(_domain.MemAccessEvents.TryRead(out ev));
            Assert.Equal(MemAccessFlags.Read | MemAccessFlags.Write | MemAccessFlags.VcpuPaused, ev.Flags);
            Assert.Equal(~0UL, ev.Gla);
        }

        [Fact]
        public void Respond_SwitchesView_ValidatesFirst()
        {
            int v = _domain.Altp2m.CreateView(P2mAccess.R);
            _domain.Altp2m.Switch(Cpu, v);
            _domain.MonitorMemAccess = true;
            Assert.Equal(FaultOutcome.Retry, _domain.HandleEptViolation(Cpu, Gfn << 12, AccessKind.Write, null));   // lazy copy
            Assert.Equal(FaultOutcome.MemAccessEvent, _domain.HandleEptViolation(Cpu, Gfn << 12, AccessKind.Write, null));
            Assert.True(_domain.MemAccessEvents.TryRead(out MemAccessEvent ev));
            Assert.Equal((v, P2mAccess.R), (ev.View, ev.Access));
            Assert.True((ev.Flags & MemAccessFlags.AlternateView) != 0);

            Assert.Throws<ArgumentException>("switchToView", () => _domain.RespondToMemAccess(ev, 3));
            Assert.Throws<ArgumentOutOfRangeException>("view", () => _domain.RespondToMemAccess(ev, 9));
            Assert.True(Cpu.IsPaused);      // a refused answer changes nothing
            _domain.RespondToMemAccess(ev, 0);
            Assert.Equal(0, Cpu.View);
            Assert.False(Cpu.IsPaused);
            Assert.Throws<ArgumentException>("request", () => _domain.RespondToMemAccess(ev with { Flags = MemAccessFlags.Read }));
            Assert.Throws<ArgumentException>("request", () => _domain.RespondToMemAccess(ev with { VcpuId = -1 }));
        }

        [Fact]
        public void FullRing_FaultUnhandled_NothingLostSilently()
        {
            _domain.MonitorMemAccess = true;
            for (ulong g = 0; g < 8; g++)
            {
                SetHostAccess(g, P2mAccess.N2RWX);     // asynchronous: the vCPU keeps running
            }

            var outcomes = new List<FaultOutcome>();
            for (ulong g = 0; g < 8; g++)
            {
                outcomes.Add(_domain.HandleEptViolation(Cpu, g << 12, AccessKind.Read, null));
            }

            Assert.Equal(4, outcomes.Count(o => o == FaultOutcome.MemAccessEvent));
            Assert.Equal(4, outcomes.Skip(4).Count(o => o == FaultOutcome.Unhandled));
            Assert.Equal(4, _domain.RingFullFaults);
            int read = 0;
            while (_domain.MemAccessEvents.TryRead(out _))
            {
                read++;
            }

            Assert.Equal(4, read);

            // A synchronous fault on a full ring leaves the vCPU running.
            for (ulong g = 0x10; g < 0x15; g++)
            {
                SetHostAccess(g, P2mAccess.N);
            }

            for (ulong g = 0x10; g < 0x14; g++)
            {
                Assert.Equal(FaultOutcome.MemAccessEvent, _domain.HandleEptViolation(_domain.Vcpus[g % 2 == 0 ? 0 : 1], g << 12, AccessKind.Read, null));
                Assert.True(_domain.MemAccessEvents.TryRead(out MemAccessEvent e));
                _domain.RespondToMemAccess(e);
            }

            for (int i = 0; i < 4; i++)
            {
                SetHostAccess(0x20 + (ulong)i, P2mAccess.N2RWX);
                _domain.HandleEptViolation(Cpu, (0x20 + (ulong)i) << 12, AccessKind.Read, null);
            }

            Assert.Equal(FaultOutcome.Unhandled, _domain.HandleEptViolation(Cpu, 0x14000, AccessKind.Read, null));
            Assert.False(Cpu.IsPaused);
        }

        [Fact]
        public async Task MonitorOff_ResumesPausedVcpus()
        {
            SetHostAccess(Gfn, P2mAccess.N);
            _domain.MonitorMemAccess = true;
            Assert.Equal(FaultOutcome.MemAccessEvent, _domain.HandleEptViolation(Cpu, Gfn << 12, AccessKind.Read, null));
            Assert.True(Cpu.IsPaused);
            var waiter = Task.Run(() => Cpu.WaitUntilRunning(TimeSpan.FromSeconds(30)));
            _domain.MonitorMemAccess = false;
            Assert.True(await waiter.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.False(Cpu.IsPaused);
        }

        [Fact]
        public void SoftwareVe_FillsInfoPage_SecondBeforeGuestClearsFallsBackToMemAccess()
        {
            const ulong veGfn = 0x90;
            int v = _domain.Altp2m.CreateView();
            Assert.Equal(P2mStatus.Ok, _domain.Altp2m.SetMemAccess(v, Gfn, P2mAccess.R));
            Assert.Equal(P2mStatus.Ok, _domain.Altp2m.SetSuppressVe(v, Gfn, false));
            Assert.Equal(P2mStatus.Ok, _domain.Altp2m.SetMemAccess(v, Gfn + 1, P2mAccess.R));
            Assert.Equal(P2mStatus.Ok, _domain.Altp2m.SetSuppressVe(v, Gfn + 1, false));
            _domain.Altp2m.Switch(Cpu, v);
            Cpu.EnableVe(veGfn);
            Assert.Equal(veGfn, Cpu.VeInfoGfn);

            ulong gpa = (Gfn << 12) | 0x10;
            Assert.Equal(FaultOutcome.VirtualizationException, _domain.HandleEptViolation(Cpu, gpa, AccessKind.Write, 0xFFFF_8000_0000_0010UL));
            ulong info = (0x100 + veGfn) << 12;
            Assert.Equal(48UL, _memory.ReadUInt64(info) & 0xFFFF_FFFF);
            Assert.Equal(0xFFFF_FFFFUL, _memory.ReadUInt64(info) >> 32);
            // Qualification as the exit reported it: write (bit 1), effective rights of the view's
            // r-only entry (bit 3), linear address valid and final translation (bits 7, 8).
            Assert.Equal(0x2UL | 0x8 | 0x180, _memory.ReadUInt64(info + 8));
            Assert.Equal(0xFFFF_8000_0000_0010UL, _memory.ReadUInt64(info + 16));
            Assert.Equal(gpa, _memory.ReadUInt64(info + 24));
            Assert.Equal((ulong)v, _memory.ReadUInt64(info + 32) & 0xFFFF);
            Assert.Equal(20, Cpu.TakePendingVector());
            Assert.Equal(-1, Cpu.PendingVector);
            Assert.Equal(P2mAccess.R, _domain.Altp2m.View(v).GetEntry(Gfn).Access);

            // The guest has not cleared the semaphore: the second violation goes to mem_access.
            _domain.MonitorMemAccess = true;
            Assert.Equal(FaultOutcome.MemAccessEvent, _domain.HandleEptViolation(Cpu, (Gfn + 1) << 12, AccessKind.Write, null));
            Assert.True(_domain.MemAccessEvents.TryRead(out MemAccessEvent ev));
            _domain.RespondToMemAccess(ev);

            // Once the guest clears it, #VE is delivered again.
            _memory.WriteUInt64(info, 0);
            Assert.Equal(FaultOutcome.VirtualizationException, _domain.HandleEptViolation(Cpu, (Gfn + 1) << 12, AccessKind.Write, null));
            Assert.Equal(~0UL, _memory.ReadUInt64(info + 16));   // no linear address
        }

        [Fact]
        public void SoftwareVe_SuppressedEntryOrNoPage_NoVe()
        {
            int v = _domain.Altp2m.CreateView();
            Assert.Equal(P2mStatus.Ok, _domain.Altp2m.SetMemAccess(v, Gfn, P2mAccess.R));    // suppress-#VE stays set
            _domain.Altp2m.Switch(Cpu, v);
            Cpu.EnableVe(0x90);
            Assert.Equal(FaultOutcome.Retry, _domain.HandleEptViolation(Cpu, Gfn << 12, AccessKind.Write, null));
            Assert.Equal(-1, Cpu.PendingVector);
            Assert.Equal(0UL, _memory.ReadUInt64((0x100 + 0x90UL) << 12));

            Assert.True(Cpu.DisableVe());
            Assert.False(Cpu.DisableVe());
            Assert.Equal(P2mStatus.Ok, _domain.Altp2m.SetMemAccess(v, Gfn + 1, P2mAccess.R));
            Assert.Equal(P2mStatus.Ok, _domain.Altp2m.SetSuppressVe(v, Gfn + 1, false));
            Assert.Equal(FaultOutcome.Retry, _domain.HandleEptViolation(Cpu, (Gfn + 1) << 12, AccessKind.Write, null));
            Assert.Equal(-1, Cpu.PendingVector);
        }

        [Fact]
        public void EnableVe_BadPageOrTwice_Throws()
        {
            Assert.Throws<ArgumentException>("veInfoGfn", () => Cpu.EnableVe(0x500));    // not mapped
            Assert.Throws<ArgumentOutOfRangeException>("veInfoGfn", () => Cpu.EnableVe(1UL << 36));
            Host.SetEntry(0x501, 0xFE000, PageOrder.Size4K, P2mType.MmioDirect, P2mAccess.RWX);
            Assert.Throws<ArgumentException>("veInfoGfn", () => Cpu.EnableVe(0x501));    // not RAM
            Cpu.EnableVe(0x90);
            Assert.Throws<InvalidOperationException>(() => Cpu.EnableVe(0x91));
            Assert.Equal(0x90UL, Cpu.VeInfoGfn);
        }

        [Fact]
        public void SoftwareVe_View0_HostEntryWithSveClear()
        {
            // FastEpt: the host is view 0 (Xen's altp2m view 0 is gone), so #VE works there too.
            SetHostAccess(Gfn, P2mAccess.RX);
            Assert.Equal(P2mStatus.Ok, _domain.Altp2m.SetSuppressVe(0, Gfn, false));
            Cpu.EnableVe(0x90);
            Assert.Equal(FaultOutcome.VirtualizationException, _domain.HandleEptViolation(Cpu, Gfn << 12, AccessKind.Write, null));
            Assert.Equal(0UL, _memory.ReadUInt64(((0x100 + 0x90UL) << 12) + 32) & 0xFFFF);
        }

        [Fact]
        public void GetMemAccess_InactiveViewThrows_CorruptAccessReadsAsNoEntry()
        {
            Assert.Throws<ArgumentException>("view", () => _domain.Altp2m.GetMemAccess(3, Gfn, out _));
            // A stored access of 12 is outside P2mAccess: the entry reads as a hole (Xen: -ERANGE).
            ulong root = Host.RootMfn << 12;
            ulong l3 = (_memory.ReadUInt64(root) & EptEntry.MfnMask);
            ulong l2 = (_memory.ReadUInt64(l3) & EptEntry.MfnMask);
            ulong l1 = (_memory.ReadUInt64(l2) & EptEntry.MfnMask);
            ulong pte = _memory.ReadUInt64(l1 + Gfn * 8);
            _memory.WriteUInt64(l1 + Gfn * 8, (pte & ~EptEntry.AccessMask) | (12UL << EptEntry.AccessShift));
            Assert.Equal(P2mStatus.NoEntry, _domain.Altp2m.GetMemAccess(0, Gfn, out P2mAccess a));
            Assert.Equal(P2mAccess.N, a);
        }

        [Fact]
        public void Xsa304_FetchFromSuperpageWithoutExecutableSuperpages_Shattered()
        {
            using var d = new Domain(_memory, new DomainOptions { P2m = new P2mOptions { ExecutableSuperpages = false } });
            d.HostP2m.SetEntry(0x200, 0x1000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(EptStatus.Violation, d.HostP2m.Translate(0x234000, AccessKind.Execute).Status);
            Assert.Equal(FaultOutcome.Retry, d.HandleEptViolation(d.Vcpus[0], 0x234000, AccessKind.Execute, null));
            Assert.Equal(0, d.HostP2m.GetEntry(0x234).Order);
            Assert.Equal(EptStatus.Ok, d.HostP2m.Translate(0x234000, AccessKind.Execute).Status);
            Assert.Equal(0x1035UL, d.HostP2m.GetEntry(0x235).Mfn);
        }
    }
}
