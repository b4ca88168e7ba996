// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.CompilerServices;
using Xunit.Abstractions;

namespace FastEpt.Tests.P2mTests
{
    /// <summary>
    /// The walker's accessed/dirty updates against writers (Intel SDM 29.3.5; docs/model/ept.md
    /// §1.5): an update is a compare-exchange against the value the walk read, and a walk whose
    /// update finds the slot changed starts again from the root. Deterministic: the test seam
    /// <see cref="P2m.AccessDirtyRaceHook"/> runs a writer inside the window between the walk's
    /// read of a slot and its update of that slot. A blind atomic OR there would turn a removed
    /// entry into a valid RAM entry of MFN 0; a walk that kept going would return a mapping that
    /// was removed before the translation completed.
    /// </summary>
    [Collection(P2mConcurrencyCollection.Name)]     // retirement under a reader section: keep the epoch quiet
    public sealed partial class AccessDirtyRaceTests
    {
        private const ulong A = EptEntry.AccessedBit, D = EptEntry.DirtyBit;
        private const ulong Gfn = 0x40123;                  // inside a 1 GiB region of its own
        private const ulong Mfn1 = 0x523, Mfn2 = 0x756;

        private readonly ITestOutputHelper _output;

        public AccessDirtyRaceTests(ITestOutputHelper output) => _output = output;

        [Fact]
        public void TestSeam_IsLive()
        {
            Assert.True(P2m.TestHooksEnabled, "the AppContext switch must be set before P2m is first used (see TestHooksSwitch)");
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void LeafRemovedBetweenReadAndDirtyUpdate_StaysRemoved_AndTheWalkReportsNotPresent(bool batch)
        {
            using Fixture f = new();
            // PML log-dirty: writable, dirty clear, so a write must set D on the leaf.
            f.P2m.SetEntry(Gfn, Mfn1, PageOrder.Size4K, P2mType.RamLogDirty, P2mAccess.RWX);
            ulong leafHpa = f.SlotHpa(Gfn, 1);
            Assert.Equal(0UL, f.Memory.ReadUInt64(leafHpa) & D);

            EptTranslation t = f.WithHookOnce(1, () => f.P2m.SetEntry(Gfn, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N),
                                              () => f.Translate(Gfn << 12 | 0x18, AccessKind.Write, batch));

            ulong slot = f.Memory.ReadUInt64(leafHpa);
            Assert.True((slot & ~EptEntry.SuppressVeBit) == 0, $"the removed slot reads 0x{slot:X16}");
            P2mEntry e = f.P2m.GetEntry(Gfn);
            Assert.False(e.IsMapped, $"a removed GFN reads as {e}");
            Assert.Equal(new EptTranslation(EptStatus.Violation, 0, 1, (ulong)AccessKind.Write), t);
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void LeafRemappedBetweenReadAndDirtyUpdate_TheWalkUsesTheNewEntry(bool batch)
        {
            using Fixture f = new();
            f.P2m.SetEntry(Gfn, Mfn1, PageOrder.Size4K, P2mType.RamLogDirty, P2mAccess.RWX);
            ulong leafHpa = f.SlotHpa(Gfn, 1);

            EptTranslation t = f.WithHookOnce(1, () => f.P2m.SetEntry(Gfn, Mfn2, PageOrder.Size4K, P2mType.RamLogDirty, P2mAccess.RWX),
                                              () => f.Translate(Gfn << 12 | 0x18, AccessKind.Write, batch));

            Assert.Equal(new EptTranslation(EptStatus.Ok, Mfn2 << 12 | 0x18, 1, 0), t);
            ulong slot = f.Memory.ReadUInt64(leafHpa);
            Assert.Equal(Mfn2, (slot & EptEntry.MfnMask) >> 12);
            Assert.True((slot & (A | D)) == (A | D), $"the re-walk must set A and D on the entry it used: 0x{slot:X16}");
            Assert.Equal(new P2mEntry(Mfn2, P2mType.RamLogDirty, P2mAccess.RWX, true, true, 0), f.P2m.GetEntry(Gfn));
        }

        [Theory]
        [InlineData(2, false)]
        [InlineData(2, true)]
        [InlineData(3, false)]
        [InlineData(4, false)]
        public void PointerRemovedBetweenReadAndAccessedUpdate_StaysRemoved_AndTheWalkReportsNotPresent(int level, bool batch)
        {
            using Fixture f = new();
            f.P2m.SetEntry(Gfn, Mfn1, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            // A hypervisor harvesting accessed flags cleared A on the pointer at `level`.
            ulong pointerHpa = f.SlotHpa(Gfn, level);
            f.Memory.WriteUInt64(pointerHpa, f.Memory.ReadUInt64(pointerHpa) & ~A);
            int order = 9 * (level - 1);
            ulong first = Gfn >> order << order;

            Action remove = level == 4
                ? () => f.Memory.WriteUInt64(pointerHpa, EptEntry.SuppressVeBit)    // no order covers a PML4E: unlink by hand
                : () => f.P2m.SetEntry(first, Mfn.Invalid, (PageOrder)order, P2mType.Invalid, P2mAccess.N);
            EptTranslation t = f.WithHookOnce(level, remove, () => f.Translate(Gfn << 12, AccessKind.Read, batch));

            ulong slot = f.Memory.ReadUInt64(pointerHpa);
            Assert.True((slot & ~EptEntry.SuppressVeBit) == 0, $"the removed level-{level} slot reads 0x{slot:X16}");
            P2mEntry e = f.P2m.GetEntry(Gfn);
            Assert.False(e.IsMapped, $"a removed GFN reads as {e}");
            Assert.Equal(new EptTranslation(EptStatus.Violation, 0, level, (ulong)AccessKind.Read), t);
        }

        [Fact]
        public void EntryUnchangedInTheWindow_TheUpdateLandsOnce()
        {
            using Fixture f = new();
            f.P2m.SetEntry(Gfn, Mfn1, PageOrder.Size4K, P2mType.RamLogDirty, P2mAccess.RWX);
            ulong leafHpa = f.SlotHpa(Gfn, 1);
            ulong before = f.Memory.ReadUInt64(leafHpa);
            int calls = 0;
            EptTranslation t = f.WithHookOnce(1, () => calls++, () => f.P2m.Translate(Gfn << 12, AccessKind.Write));
            Assert.Equal(1, calls);
            Assert.Equal(new EptTranslation(EptStatus.Ok, Mfn1 << 12, 1, 0), t);
            Assert.Equal(before | D, f.Memory.ReadUInt64(leafHpa));
        }

        /// <summary>A p2m with accessed/dirty flags and PML over 16 MiB of host memory.</summary>
        private sealed class Fixture : IDisposable
        {
            public Fixture()
            {
                Memory = new HostMemory(16L << 20);    // 4096 frames; the tables take the first few
                P2m = new P2m(Memory, new P2mOptions { AccessDirty = true, PmlEnabled = true });
            }

            public HostMemory Memory { get; }

            public P2m P2m { get; }

            /// <summary>The HPA of the slot that maps <paramref name="gfn"/> at <paramref name="level"/> (the path must exist).</summary>
            public ulong SlotHpa(ulong gfn, int level)
            {
                ulong table = P2m.RootMfn;
                for (int l = P2m.Levels; ; l--)
                {
                    ulong hpa = (table << 12) + (((gfn >> (9 * (l - 1))) & 511) * 8);
                    if (l == level)
                    {
                        return hpa;
                    }

                    ulong e = Memory.ReadUInt64(hpa);
                    Assert.True((e & 7) != 0 && (e & 0x80) == 0, $"level {l} of GFN 0x{gfn:X} is no table pointer: 0x{e:X16}");
                    table = (e & EptEntry.MfnMask) >> 12;
                }
            }

            public EptTranslation Translate(ulong gpa, AccessKind access, bool batch)
            {
                if (!batch)
                {
                    return P2m.Translate(gpa, access);
                }

                var results = new EptTranslation[1];
                P2m.TranslateBatch([gpa], access, results);
                return results[0];
            }

            /// <summary>
            /// Runs <paramref name="walk"/> with <paramref name="inWindow"/> run once, by this
            /// thread, inside the first A/D window the walk opens, which must be at <paramref name="level"/>.
            /// </summary>
            public EptTranslation WithHookOnce(int level, Action inWindow, Func<EptTranslation> walk)
            {
                int fired = 0;
                P2m.AccessDirtyRaceHook = (l, _) =>
                {
                    if (fired++ == 0)
                    {
                        Assert.Equal(level, l);
                        inWindow();
                    }
                };
                try
                {
                    EptTranslation t = walk();
                    Assert.True(fired > 0, "the walk opened no accessed/dirty window");
                    return t;
                }
                finally
                {
                    P2m.AccessDirtyRaceHook = null;
                }
            }

            public void Dispose()
            {
                P2m.Dispose();
                Memory.Dispose();
            }
        }
    }

    // Turns on the library's test seams (P2m.AccessDirtyRaceHook) for this test run. Module
    // initialisers run when the assembly loads, before any test touches P2m.
    internal static class TestHooksSwitch
    {
        [ModuleInitializer]
        internal static void Enable() => AppContext.SetSwitch("FastEpt.Walker.TestHooks", true);
    }
}
