// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.DomainTests
{
    // docs/model/altp2m.md §4.8 scenarios, adapted to view 0 = host (docs/model/README.md §0.5), plus lifecycle and
    // bad-input behaviour of Domain and Altp2m.
    public sealed partial class Altp2mScenarioTests : IDisposable
    {
        private readonly HostMemory _memory = new(0x90000L << 12);
        private readonly Domain _domain;

        public Altp2mScenarioTests()
            => _domain = new Domain(_memory, new DomainOptions { Vcpus = 2, AltViews = 10 });

        public void Dispose()
        {
            _domain.Dispose();
            _memory.Dispose();
        }

        private P2m Host => _domain.HostP2m;

        private Altp2m Alt => _domain.Altp2m;

        [Theory]
        [InlineData(-1)]
        [InlineData(512)]
        [InlineData(513)]
        public void Create_AltViewsOutOfRange_Throws(int views)
        {
            var ex = Assert.Throws<ArgumentOutOfRangeException>("options", () => new Domain(_memory, new DomainOptions { AltViews = views }));
            Assert.Contains("AltViews", ex.Message);
        }

        [Fact]
        public void Create_511Views_AllUsable()
        {
            using var d = new Domain(_memory, new DomainOptions { AltViews = 511 });
            Assert.Equal(512, d.Altp2m.ViewCount);
            int last = 0;
            for (int i = 0; i < 511; i++)
            {
                last = d.Altp2m.CreateView();
            }

            Assert.Equal(511, last);
            Assert.Throws<InvalidOperationException>(() => d.Altp2m.CreateView());
        }

        [Fact]
        public void AltViewsZero_AltP2mOff_OnlyHost()
        {
            using var d = new Domain(_memory, new DomainOptions { AltViews = 0 });
            Assert.False(d.Altp2m.IsEnabled);
            Assert.Equal(1, d.Altp2m.ViewCount);
            Assert.Same(d.HostP2m, d.Altp2m.View(0));
            Assert.Throws<InvalidOperationException>(() => d.Altp2m.CreateView());
            Assert.Throws<ArgumentOutOfRangeException>("view", () => d.Altp2m.View(1));
        }

        [Fact]
        public void Lifecycle_Spec48_EnableCreateDestroySwitchVisibility()
        {
            // Every vCPU starts on view 0; only view 0 is active.
            Assert.All(_domain.Vcpus, v => Assert.Equal(0, v.View));
            Assert.True(Alt.IsActive(0));
            for (int i = 1; i < 10; i++)
            {
                Assert.False(Alt.IsActive(i));
            }

            int v1 = Alt.CreateView(P2mAccess.R);
            Assert.Equal(1, v1);
            Assert.Equal(P2mAccess.R, Alt.DefaultAccess(1));
            Assert.Throws<ArgumentException>("view", () => Alt.DestroyView(0));

            Alt.Switch(_domain.Vcpus[1], 1);
            Assert.Throws<InvalidOperationException>(() => Alt.DestroyView(1));

            // Hidden: the domain-wide switch fails, the per-vCPU switch still works.
            Alt.SetVisibility(1, false);
            Assert.False(Alt.SwitchAll(1));
            Assert.Equal(0, _domain.Vcpus[0].View);
            Alt.Switch(_domain.Vcpus[0], 1);
            Assert.Equal(1, _domain.Vcpus[0].View);

            Alt.SwitchAll(0);
            Alt.DestroyView(1);
            Assert.False(Alt.IsActive(1));
            Assert.Throws<ArgumentException>("view", () => Alt.DestroyView(1));
            Assert.Throws<ArgumentException>("view", () => Alt.View(1));
            Assert.Throws<ArgumentException>("view", () => Alt.Switch(_domain.Vcpus[0], 1));
            Assert.Equal(1, Alt.CreateView());      // the index is free again
        }

        [Fact]
        public void BadArguments_ThrowNamingTheArgument_AndChangeNothing()
        {
            Alt.CreateView();
            Assert.Throws<ArgumentOutOfRangeException>("view", () => Alt.SetMemAccess(11, 0, P2mAccess.R));
            Assert.Throws<ArgumentOutOfRangeException>("view", () => Alt.View(-1));
            Assert.Throws<ArgumentOutOfRangeException>("access", () => Alt.SetMemAccess(1, 0, (P2mAccess)11));
            Assert.Throws<ArgumentOutOfRangeException>("access", () => Alt.CreateView((P2mAccess)42));
            Assert.Throws<ArgumentOutOfRangeException>("gfn", () => Alt.SetSuppressVe(1, 1UL << 36, true));
            Assert.Throws<ArgumentOutOfRangeException>("newGfn", () => Alt.ChangeGfn(1, 0x10, 1UL << 40));
            Assert.Throws<ArgumentException>("view", () => Alt.ChangeGfn(0, 0x10, 0x20));
            Assert.Throws<ArgumentException>("view", () => Alt.SetMemAccess(2, 0x10, P2mAccess.R));
            Assert.Throws<ArgumentNullException>("vcpu", () => Alt.Switch(null!, 1));
            using var other = new Domain(_memory, new DomainOptions());
            Assert.Throws<ArgumentException>("vcpu", () => Alt.Switch(other.Vcpus[0], 1));
            Assert.Throws<ArgumentException>("vcpu", () => _domain.HandleEptViolation(other.Vcpus[0], 0, AccessKind.Read, null));
            Assert.Throws<ArgumentOutOfRangeException>("access", () => _domain.HandleEptViolation(_domain.Vcpus[0], 0, 0, null));
            Assert.Throws<ArgumentOutOfRangeException>("gpa", () => _domain.HandleEptViolation(_domain.Vcpus[0], 1UL << 48, AccessKind.Read, null));

            // Write-without-read on a RamRw page: refused before the view copies anything.
            Host.SetEntry(0x200, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            Assert.Throws<ArgumentException>("access", () => Alt.SetMemAccess(1, 0x234, P2mAccess.W));
            Assert.False(Alt.View(1).GetEntry(0x200).IsMapped);
            Assert.Equal(1, Alt.View(1).TableFrameCount);
        }

        [Fact]
        public void LazyCopy_ReadFaultInEmptyView_Copies2MWithViewDefaultAccess()
        {
            Host.SetEntry(0x200, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            int v = Alt.CreateView(P2mAccess.R);
            Vcpu cpu = _domain.Vcpus[0];
            Alt.Switch(cpu, v);
            Assert.Equal(EptStatus.Violation, Alt.View(v).Translate(0x234000, AccessKind.Read).Status);

            Assert.Equal(FaultOutcome.Retry, _domain.HandleEptViolation(cpu, 0x234000, AccessKind.Read, null));

            P2mEntry e = Alt.View(v).GetEntry(0x234);
            Assert.Equal((0x80034UL, P2mType.RamRw, P2mAccess.R, 9, true), (e.Mfn, e.Type, e.Access, e.Order, e.IsMapped));
            Assert.Equal(0x80034000UL, Alt.View(v).Translate(0x234000, AccessKind.Read).Hpa);
            // The write is now a mem_access violation of the view (no listener: relaxed, retried).
            Assert.Equal(EptStatus.Violation, Alt.View(v).Translate(0x234000, AccessKind.Write).Status);
        }

        [Fact]
        public void LazyCopy_ViewHasTableBelow_CopiesOnly4K()
        {
            Host.SetEntry(0x200, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            int v = Alt.CreateView();
            Assert.Equal(P2mStatus.Ok, Alt.SetSuppressVe(v, 0x201, false));      // a 4K entry: the 2M slot is a table now
            Alt.Switch(_domain.Vcpus[0], v);
            Assert.Equal(FaultOutcome.Retry, _domain.HandleEptViolation(_domain.Vcpus[0], 0x234000, AccessKind.Read, null));
            Assert.Equal(0, Alt.View(v).GetEntry(0x234).Order);
            Assert.False(Alt.View(v).GetEntry(0x235).IsMapped);
        }

        [Fact]
        public void SetMemAccess_EmptyView_CopiesWhole2MThenSplits_HostUnchanged()
        {
            Host.SetEntry(0x200, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            int v = Alt.CreateView(P2mAccess.R);
            Assert.Equal(P2mStatus.Ok, Alt.SetMemAccess(v, 0x234, P2mAccess.RW));

            P2m view = Alt.View(v);
            for (ulong g = 0x200; g < 0x400; g++)
            {
                P2mEntry e = view.GetEntry(g);
                Assert.Equal(0, e.Order);
                Assert.Equal(0x80000 + (g - 0x200), e.Mfn);
                Assert.Equal(g == 0x234 ? P2mAccess.RW : P2mAccess.R, e.Access);
                Assert.True(e.SuppressVe);
            }

            P2mEntry h = Host.GetEntry(0x234);
            Assert.Equal((9, P2mAccess.RWX), (h.Order, h.Access));
        }

        [Fact]
        public void SetMemAccess_ViewHasOwnEntriesInSuperpage_CopyNeverOverwritesThem()
        {
            Host.SetEntry(0x200, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            int v = Alt.CreateView(P2mAccess.RWX);
            Assert.Equal(P2mStatus.Ok, Alt.SetMemAccess(v, 0x201, P2mAccess.X));
            Assert.Equal(P2mStatus.Ok, Alt.SetMemAccess(v, 0x234, P2mAccess.RW));
            Assert.Equal(P2mAccess.X, Alt.View(v).GetEntry(0x201).Access);   // not widened by the second copy
        }

        [Fact]
        public void SetMemAccess_HostMmioDirect_InvalidType_ViewUnchanged()
        {
            Host.SetEntry(0x300, 0xFE000, PageOrder.Size4K, P2mType.MmioDirect, P2mAccess.RWX);
            int v = Alt.CreateView();
            Assert.Equal(P2mStatus.InvalidType, Alt.SetMemAccess(v, 0x300, P2mAccess.R));
            Assert.False(Alt.View(v).GetEntry(0x300).IsMapped);
            Assert.Equal(P2mStatus.NoEntry, Alt.SetMemAccess(v, 0x301, P2mAccess.R));
        }

        [Fact]
        public void SetMemAccess_View0_SetsHost4KAndPropagatesStricterOnly()
        {
            Host.SetEntry(0x10, 0x100, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(P2mStatus.Ok, Alt.SetMemAccess(0, 0x10, P2mAccess.RX));
            Assert.Equal(P2mAccess.RX, Host.GetEntry(0x10).Access);
            Assert.Equal(P2mStatus.NoEntry, Alt.SetMemAccess(0, 0x11, P2mAccess.RX));
            Assert.Equal(P2mStatus.Ok, Alt.GetMemAccess(0, 0x10, out P2mAccess a));
            Assert.Equal(P2mAccess.RX, a);
        }

        [Fact]
        public void SuppressVe_SeedScenario_FreshViewHostMappedBefore()
        {
            // The seed bug: the host mapped g before the view existed; the view never faulted on it.
            Host.SetEntry(0x50, 0x150, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RW);
            int v1 = Alt.CreateView(P2mAccess.RW);
            int v2 = Alt.CreateView();
            Assert.Equal(P2mStatus.Ok, Alt.SetSuppressVe(v1, 0x50, false));
            P2mEntry e = Alt.View(v1).GetEntry(0x50);
            Assert.Equal((0x150UL, P2mAccess.RW, false), (e.Mfn, e.Access, e.SuppressVe));
            Assert.Equal(P2mStatus.Ok, Alt.GetSuppressVe(v1, 0x50, out bool s1));
            Assert.False(s1);

            // docs/model/README.md §0.3: an empty view answers from the host entry (Xen: -ESRCH).
            Host.SetEntry(0x51, 0x151, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RW, SuppressVe.Clear);
            Assert.Equal(P2mStatus.Ok, Alt.GetSuppressVe(v2, 0x51, out bool s2));
            Assert.False(s2);
            Assert.False(Alt.View(v2).GetEntry(0x51).IsMapped);    // a get changes nothing

            Assert.Equal(P2mStatus.NoEntry, Alt.GetSuppressVe(v2, 0x60, out bool s3));
            Assert.True(s3);
            Assert.Equal(P2mStatus.NoEntry, Alt.SetSuppressVe(v1, 0x60, false));   // host mmio_dm hole
        }

        [Fact]
        public void SuppressVe_HostFallback_UsesViewDefaultAccessNotHosts()
        {
            // docs/model/altp2m.md §4.4 QUIRK fixed: the 4K host fallback gives the view's default access, as the
            // superpage case and a lazy copy do, not the host entry's.
            Host.SetEntry(0x50, 0x150, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RW);
            int v = Alt.CreateView(P2mAccess.RX);
            Assert.Equal(P2mStatus.Ok, Alt.SetSuppressVe(v, 0x50, false));
            Assert.Equal(P2mAccess.RX, Alt.View(v).GetEntry(0x50).Access);
        }

        [Fact]
        public void SuppressVe_View0_RequiresHostEntry()
        {
            Assert.Equal(P2mStatus.NoEntry, Alt.SetSuppressVe(0, 0x70, false));
            Assert.False(Host.GetEntry(0x70).IsMapped);    // no empty entry carrying only the bit (docs/model/altp2m.md §4.6 QUIRK)
            Host.SetEntry(0x70, 0x170, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Assert.Equal(P2mStatus.Ok, Alt.SetSuppressVe(0, 0x70, false));
            Assert.False(Host.GetEntry(0x70).SuppressVe);
        }

        [Fact]
        public void Sharing_ViewOperationOnSharedHostPage_NeedsUnshare()
        {
            _memory.Frame(0x180).Fill(0xAB);
            Host.SetEntry(0x80, 0x180, PageOrder.Size4K, P2mType.RamShared, P2mAccess.RWX);
            int v = Alt.CreateView();
            Assert.Equal(P2mStatus.InvalidType, Alt.SetMemAccess(v, 0x80, P2mAccess.RWX));
            Assert.Equal(P2mStatus.InvalidType, Alt.SetSuppressVe(v, 0x80, false));
            Assert.False(Alt.View(v).GetEntry(0x80).IsMapped);

            // A write fault in the view cannot copy the shared page without unsharing it.
            Alt.Switch(_domain.Vcpus[0], v);
            Assert.Equal(FaultOutcome.Unhandled, _domain.HandleEptViolation(_domain.Vcpus[0], 0x80000, AccessKind.Write, null));
            Assert.False(Alt.View(v).GetEntry(0x80).IsMapped);

            // A read fault copies it read-only (the type allows no write in any view).
            Assert.Equal(FaultOutcome.Retry, _domain.HandleEptViolation(_domain.Vcpus[0], 0x80000, AccessKind.Read, null));
            Assert.Equal(P2mType.RamShared, Alt.View(v).GetEntry(0x80).Type);
            Assert.Equal(EptStatus.Violation, Alt.View(v).Translate(0x80000, AccessKind.Write).Status);

            _domain.UnshareCallback = _domain.UnsharePage;
            Assert.Equal(FaultOutcome.Retry, _domain.HandleEptViolation(_domain.Vcpus[0], 0x80000, AccessKind.Write, null));
            P2mEntry h = Host.GetEntry(0x80);
            Assert.Equal(P2mType.RamRw, h.Type);
            Assert.NotEqual(0x180UL, h.Mfn);
            Assert.Equal(0xAB, _memory.Frame(h.Mfn)[100]);
            P2mEntry e = Alt.View(v).GetEntry(0x80);
            Assert.Equal((h.Mfn, P2mType.RamRw), (e.Mfn, e.Type));     // propagated: the private copy
        }

        [Fact]
        public void Sharing_HostSharesARemapSource_ViewReset()
        {
            Host.SetEntry(0x10, 0x110, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            Host.SetEntry(0x20, 0x120, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            int v = Alt.CreateView();
            Alt.ChangeGfn(v, 0x10, 0x20);
            Assert.Equal(EptStatus.Ok, Alt.View(v).Translate(0x10000, AccessKind.Write).Status);
            // The host now shares frame 0x120 in place: the view's writable remap must go.
            Host.SetEntry(0x20, 0x120, PageOrder.Size4K, P2mType.RamShared, P2mAccess.RWX);
            Assert.NotEqual(EptStatus.Ok, Alt.View(v).Translate(0x10000, AccessKind.Write).Status);
        }

        [Fact]
        public void MapMmio_RemovesRamAndReportsMmio()
        {
            var dev = new NullDevice();
            Host.SetEntry(0x200, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            _domain.MapMmio(0x210, 0x10, dev);
            Assert.False(Host.GetEntry(0x210).IsMapped);
            Assert.False(Host.GetEntry(0x21F).IsMapped);
            Assert.True(Host.GetEntry(0x220).IsMapped);
            Assert.True(Host.GetEntry(0x20F).IsMapped);
            Assert.True(_domain.TryGetMmioDevice(0x215, out IMmioDevice found));
            Assert.Same(dev, found);
            Assert.False(_domain.TryGetMmioDevice(0x220, out _));
            Assert.Equal(FaultOutcome.Mmio, _domain.HandleEptViolation(_domain.Vcpus[0], 0x215008, AccessKind.Read, null));
            Assert.Equal(FaultOutcome.Unhandled, _domain.HandleEptViolation(_domain.Vcpus[0], 0x900000, AccessKind.Read, null));
            Assert.Throws<ArgumentException>("gfn", () => _domain.MapMmio(0x21F, 1, dev));
            Assert.Throws<ArgumentNullException>("device", () => _domain.MapMmio(0x400, 1, null!));
            Assert.Throws<ArgumentOutOfRangeException>("pages", () => _domain.MapMmio(0x400, 0, dev));
            Assert.Throws<ArgumentOutOfRangeException>("gfn", () => _domain.MapMmio((1UL << 36) - 1, 2, dev));
        }

        [Fact]
        public void TypeHandling_WritesToReadOnlyAndLogDirty()
        {
            Host.SetEntry(0x30, 0x130, PageOrder.Size4K, P2mType.RamRo, P2mAccess.RWX);
            Host.SetEntry(0x31, 0x131, PageOrder.Size4K, P2mType.RamLogDirty, P2mAccess.RWX);
            Vcpu cpu = _domain.Vcpus[0];
            Assert.Equal(FaultOutcome.Mmio, _domain.HandleEptViolation(cpu, 0x30000, AccessKind.Write, null));
            Assert.Equal(FaultOutcome.Retry, _domain.HandleEptViolation(cpu, 0x31000, AccessKind.Write, null));
            Assert.Equal(P2mType.RamRw, Host.GetEntry(0x31).Type);
            Assert.Equal(EptStatus.Ok, Host.Translate(0x31000, AccessKind.Write).Status);
        }

        [Fact]
        public void PodPool_FaultPopulatesHostThenView()
        {
            using var d = new Domain(_memory, new DomainOptions { PodFrames = 16 });
            d.HostP2m.SetEntry(0x400, Mfn.Invalid, PageOrder.Size4K, P2mType.PopulateOnDemand, P2mAccess.N);
            int v = d.Altp2m.CreateView();
            d.Altp2m.Switch(d.Vcpus[0], v);
            Assert.Equal(FaultOutcome.Retry, d.HandleEptViolation(d.Vcpus[0], 0x400000, AccessKind.Read, null));
            P2mEntry h = d.HostP2m.GetEntry(0x400);
            Assert.Equal(P2mType.RamRw, h.Type);
            Assert.Equal(h.Mfn, d.Altp2m.View(v).GetEntry(0x400).Mfn);
            Assert.Equal(15, d.HostP2m.Pod.FreeFrames);
        }

        [Fact]
        public void Dispose_GivesBackEveryFrame()
        {
            long before = _memory.AllocatedFrameCount;
            var d = new Domain(_memory, new DomainOptions { PodFrames = 8 });
            d.HostP2m.SetEntry(0x200, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            int v = d.Altp2m.CreateView();
            d.Altp2m.SetMemAccess(v, 0x234, P2mAccess.R);
            d.Altp2m.DestroyView(v);
            d.Altp2m.CreateView();
            d.Dispose();
            Assert.Equal(before, _memory.AllocatedFrameCount);
            Assert.Throws<ObjectDisposedException>(() => d.Altp2m.CreateView());
        }

        [Fact]
        public async Task ReadmeExample_Runs()
        {
            HostMemory memory = _memory;
            using var domain = new Domain(memory, new DomainOptions { Vcpus = 2, AltViews = 4 });
            domain.HostP2m.SetEntry(0x200, 0x80000, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            int view = domain.Altp2m.CreateView(P2mAccess.RX);
            domain.Altp2m.SetMemAccess(view, 0x234, P2mAccess.R);
            domain.Altp2m.Switch(domain.Vcpus[0], view);
            domain.MonitorMemAccess = true;
            FaultOutcome o = domain.HandleEptViolation(domain.Vcpus[0], 0x234000, AccessKind.Write, gla: null);
            Assert.Equal(FaultOutcome.MemAccessEvent, o);
            Assert.True(domain.Vcpus[0].IsPaused);
            MemAccessEvent ev = await domain.MemAccessEvents.ReadAsync();
            domain.RespondToMemAccess(ev, switchToView: 0);
            Assert.Equal((0, false), (domain.Vcpus[0].View, domain.Vcpus[0].IsPaused));
            Assert.Equal(P2mAccess.RX, domain.Altp2m.View(view).GetEntry(0x235).Access);
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
