// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Testing;

namespace FastEpt.Tests.Tlb
{
    /// <summary>
    /// A domain for the combined-TLB tests: 4 MiB of guest RAM (GFN g → MFN RamMfn + g, 4K RamRw
    /// RWX in the host p2m, two alternate views), a 4-level stage-1 hierarchy mapping
    /// <see cref="Pages"/> consecutive 4K linear pages at <see cref="Base"/> and one 2M linear
    /// page at <see cref="LargeBase"/>, and vCPU 0 in LongMode4 on it (WP = NXE = 1). Table
    /// entries are P|W|U|A; leaves are whatever the test writes.
    /// </summary>
    internal sealed class LinearTlbGuest : IDisposable
    {
        public const int Pages = 16;
        public const ulong Base = 0x0000_7F12_3450_0000;       // 2M-aligned: the 4K pages share one page table
        public const ulong LargeBase = 0x0000_7F12_3480_0000;
        public const ulong FirstDataGfn = 0x100, DataGfns = 16;  // 4K targets
        public const ulong LargeGpa = 0x20_0000;                 // GFNs 0x200..0x3FF: the 2M target (also 0x0 .. is tables)
        public const ulong RamFrames = 0x400;
        public const ulong TableFlags = GuestPageTableBuilder.Present | GuestPageTableBuilder.Writable | GuestPageTableBuilder.User | GuestPageTableBuilder.Accessed;
        public const ulong Rwu = GuestPageTableBuilder.Present | GuestPageTableBuilder.Writable | GuestPageTableBuilder.User;
        public const ulong Global = 1UL << 8, Xd = 1UL << 63;

        public LinearTlbGuest(bool accessDirty = false)
        {
            Memory = new HostMemory(0x1000L * 4096);
            Domain = new Domain(Memory, new DomainOptions { AltViews = 2, P2m = new P2mOptions { AccessDirty = accessDirty } });
            RamMfn = Memory.AllocateFrames((long)RamFrames);
            for (ulong g = 0; g < RamFrames; g++)
            {
                Domain.HostP2m.SetEntry(g, RamMfn + g, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            Tables = new GuestPageTableBuilder(Memory, gfn => RamMfn + gfn, levels: 4, firstTableGfn: 0x10, firstPageTableGfn: 0x40);
            for (int i = 0; i < Pages; i++)
            {
                MapPage(i, FirstDataGfn + (ulong)i, Rwu);
            }

            Tables.Map(LargeBase, LargeGpa, PageOrder.Size2M, Rwu, TableFlags);
            Cpu.Mode = GuestPagingMode.LongMode4;
            Cpu.Cr3 = Tables.Cr3;
            Cpu.Wp = true;
            Cpu.Nxe = true;
        }

        public HostMemory Memory { get; }

        public Domain Domain { get; }

        public ulong RamMfn { get; }

        public GuestPageTableBuilder Tables { get; }

        public Vcpu Cpu => Domain.Vcpus[0];

        public LinearTlb Tlb => Cpu.Tlb;

        public static ulong PageGla(int i) => Base + ((ulong)i << 12);

        /// <summary>Writes the leaf of 4K page <paramref name="i"/>: GFN <paramref name="gfn"/> with <paramref name="flags"/>.</summary>
        public void MapPage(int i, ulong gfn, ulong flags) => Tables.Map(PageGla(i), gfn << 12, PageOrder.Size4K, flags, TableFlags);

        /// <summary>The leaf entry of 4K page <paramref name="i"/> as it is in guest memory.</summary>
        public ulong Leaf(int i) => Tables.Read(Tables.EntryGpa(PageGla(i), 1));

        public ulong HpaOfGfn(ulong gfn) => (RamMfn + gfn) << 12;

        public void Dispose()
        {
            Domain.Dispose();
            Memory.Dispose();
        }
    }
}
