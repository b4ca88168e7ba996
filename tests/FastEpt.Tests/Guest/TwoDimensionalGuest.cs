// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Testing;

namespace FastEpt.Tests.Guest
{
    /// <summary>
    /// A domain with 4 MiB of guest RAM (GFN g → MFN RamMfn + g, 4K RamRw RWX in the host p2m),
    /// a 4-level stage-1 hierarchy at GFNs 0x10..0x13 mapping <see cref="Gla"/> to data GFN 0x20,
    /// and vCPU 0 in LongMode4 on it (WP = NXE = 1).
    /// </summary>
    internal sealed class TwoDimensionalGuest : IDisposable
    {
        public const ulong Gla = 0x0000_1234_5678_9ABC;
        public const ulong Pml4Gfn = 0x10, PdptGfn = 0x11, PdGfn = 0x12, PtGfn = 0x13, DataGfn = 0x20;
        public const ulong Leaf2M = 0x20_0000, Leaf1G = 0;
        public const ulong RamFrames = 0x400;

        public TwoDimensionalGuest(bool ad, bool pagingWrite = false)
        {
            Memory = new HostMemory(0x1000L * 4096);
            Domain = new Domain(Memory, new DomainOptions { AltViews = 2, P2m = new P2mOptions { AccessDirty = ad, PagingWriteSupported = pagingWrite } });
            RamMfn = Memory.AllocateFrames((long)RamFrames);
            for (ulong g = 0; g < RamFrames; g++)
            {
                Domain.HostP2m.SetEntry(g, RamMfn + g, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            BuildTables(extra: 0);
            Cpu.Mode = GuestPagingMode.LongMode4;
            Cpu.Cr3 = Pml4Gfn << 12;
            Cpu.Wp = true;
            Cpu.Nxe = true;
        }

        public HostMemory Memory { get; }

        public Domain Domain { get; }

        public ulong RamMfn { get; }

        public Vcpu Cpu => Domain.Vcpus[0];

        public ulong FinalGpa { get; private set; }

        public ulong FinalHpa => (Domain.HostP2m.GetEntry(FinalGpa >> 12).Mfn << 12) | (FinalGpa & 0xFFF);

        public static ulong TableGfn(int level) => level switch
        {
            4 => Pml4Gfn,
            3 => PdptGfn,
            2 => PdGfn,
            1 => PtGfn,
            _ => throw new ArgumentOutOfRangeException(nameof(level)),
        };

        public static ulong Index(ulong gla, int level) => GuestPageTableBuilder.Index(gla, level);

        public ulong EntryGpa(int level) => (TableGfn(level) << 12) | (Index(Gla, level) * 8);

        /// <summary>Writes the four tables (P|W|U plus <paramref name="extra"/>) down to a leaf at <paramref name="leafLevel"/>.</summary>
        public void BuildTables(ulong extra, int leafLevel = 1)
        {
            // All four frames start clean, the ones a large leaf leaves unused included.
            for (int level = 4; level >= 1; level--)
            {
                Memory.Frame(RamMfn + TableGfn(level)).Clear();
            }

            const ulong Flags = Pte.Present | Pte.Writable | Pte.User;
            GuestPageTableBuilder tables = new(Memory, gfn => RamMfn + gfn, levels: 4, firstTableGfn: Pml4Gfn, firstPageTableGfn: PtGfn);
            (ulong leaf, PageOrder size, ulong offsetMask) = leafLevel switch
            {
                1 => (DataGfn << 12, PageOrder.Size4K, 0xFFFUL),
                2 => (Leaf2M, PageOrder.Size2M, 0x1F_FFFFUL),
                _ => (Leaf1G, PageOrder.Size1G, 0x3FFF_FFFFUL),
            };
            tables.Map(Gla, leaf, size, Flags | extra, Flags | extra);
            FinalGpa = leaf | (Gla & offsetMask);

            // The data page of a 1G leaf lies outside the 4 MiB of RAM: give it a frame of its own.
            if (!Domain.HostP2m.GetEntry(FinalGpa >> 12).IsMapped)
            {
                ulong extraMfn = Memory.AllocateFrame();
                Domain.HostP2m.SetEntry(FinalGpa >> 12, extraMfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }
        }

        public ulong ReadEntry(int level) => ReadGuest(EntryGpa(level));

        public void WriteEntry(int level, ulong value) => WriteGuest(EntryGpa(level), value);

        public ulong ReadGuest(ulong gpa) => Memory.ReadUInt64(((RamMfn + (gpa >> 12)) << 12) | (gpa & 0xFFF));

        public void WriteGuest(ulong gpa, ulong value) => Memory.WriteUInt64(((RamMfn + (gpa >> 12)) << 12) | (gpa & 0xFFF), value);

        /// <summary>The four entries of the walk, PML4E first (as guest RAM holds them at the host's GFN → MFN).</summary>
        public ulong[] Entries() => [ReadEntry(4), ReadEntry(3), ReadEntry(2), ReadEntry(1)];

        /// <summary>The four table frames, PML4 first.</summary>
        public ulong[][] TableFrames()
        {
            ulong[][] frames = new ulong[4][];
            for (int level = 4; level >= 1; level--)
            {
                frames[4 - level] = new ulong[512];
                for (int s = 0; s < 512; s++)
                {
                    frames[4 - level][s] = ReadGuest((TableGfn(level) << 12) | ((ulong)s * 8));
                }
            }

            return frames;
        }

        public void SetAccess(int view, ulong gfn, P2mAccess access) => Assert.Equal(P2mStatus.Ok, Domain.Altp2m.SetMemAccess(view, gfn, access));

        /// <summary>Rewrites the host p2m's 4K leaf entry of <paramref name="gfn"/> in place (live tables, no API).</summary>
        public void PokeEptLeaf(ulong gfn, Func<ulong, ulong> change)
        {
            ulong hpa = EptLeafHpa(gfn);
            Memory.WriteUInt64(hpa, change(Memory.ReadUInt64(hpa)));
        }

        /// <summary>Where the host p2m's 4K leaf entry of <paramref name="gfn"/> lies in host memory.</summary>
        public ulong EptLeafHpa(ulong gfn)
        {
            const ulong MfnMask = 0x000F_FFFF_FFFF_F000;
            P2m p2m = Domain.HostP2m;
            ulong table = p2m.RootMfn;
            for (int level = p2m.Levels; level > 1; level--)
            {
                ulong e = Memory.ReadUInt64((table << 12) + (((gfn >> (9 * (level - 1))) & 511) * 8));
                Assert.True((e & 7) != 0 && (e & 0x80) == 0, $"EPT level {level} of GFN 0x{gfn:X} is not a table pointer");
                table = (e & MfnMask) >> 12;
            }

            return (table << 12) + ((gfn & 511) * 8);
        }

        /// <summary>
        /// <see cref="Vcpu.TranslateLinear"/>, checked against <see cref="Vcpu.TranslateLinearBatch"/>
        /// of the same address right after (the A/D bits the first call set never change an outcome).
        /// </summary>
        public GuestTranslation Walk(ulong gla, PageFaultErrorCode pfec)
        {
            GuestTranslation single = Cpu.TranslateLinear(gla, pfec);
            GuestTranslation[] batch = new GuestTranslation[1];
            Cpu.TranslateLinearBatch([gla], pfec, batch);
            Assert.Equal(single, batch[0]);
            return single;
        }

        public void Dispose()
        {
            Domain.Dispose();
            Memory.Dispose();
        }
    }
}
