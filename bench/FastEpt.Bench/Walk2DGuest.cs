// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using FastEpt.Testing;

namespace FastEpt.Bench
{
    /// <summary>
    /// The guest of the 2D-walk benchmark: a <see cref="FastEpt.Domain"/> whose host p2m maps
    /// <see cref="GuestRamBytes"/> of guest RAM with 4 KiB EPT leaves, and 4-level long-mode
    /// guest page tables, in that guest RAM, that map a linear range of <see cref="RegionCount"/>
    /// 2 MiB regions: half of them (a seeded choice) as one 2M PDE leaf each, the other half as
    /// 512 4K PTEs each.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Guest-physical layout: the first 2 MiB region holds the guest page tables (PML4, PDPT,
    /// one PD, one PT per 4K region); linear region <c>r</c> (at <see cref="GlaBase"/> +
    /// <c>r</c> × 2 MiB) maps guest-physical region <c>r + 1</c>, a 4K region with its pages in a
    /// seeded per-region order. GFN <c>g</c> is backed by MFN <c>RamMfn + (g ^ 0x5A5)</c>, so no
    /// HPA equals its GPA. Every expected answer follows from that layout, independently of the
    /// tables.
    /// </para>
    /// <para>
    /// Every guest entry is written with its accessed flag (and a leaf's dirty flag) already set,
    /// so read walks write nothing to guest memory; <see cref="Verify"/> checks that the tables
    /// stay unchanged over a pass. A 4K-page walk reads 4 guest entries (4 EPT walks, then the
    /// final one: 5), a 2M-page walk 3 (4 EPT walks in all).
    /// </para>
    /// </remarks>
    public sealed class Walk2DGuest : LongModeGuest
    {
        /// <summary>Guest RAM in bytes (256 MiB).</summary>
        public const long GuestRamBytes = 256L << 20;

        /// <summary>log2 of a 2 MiB region.</summary>
        public const int RegionBits = 21;

        /// <summary>Linear 2 MiB regions the guest tables map: every guest-physical region but the first, which holds the tables.</summary>
        public const int RegionCount = (int)(GuestRamBytes >> RegionBits) - 1;

        /// <summary>First linear address of the mapped range (1 GiB-aligned, so one PD maps it all).</summary>
        public const ulong GlaBase = 0x0000_5A5A_C000_0000;

        /// <summary>The access every walk makes: a supervisor data read.</summary>
        public const PageFaultErrorCode Pfec = PageFaultErrorCode.None;

        private const int PageBits = 12;
        private const ulong Pml4Gfn = 1, FirstPtGfn = 16;
        private const ulong Scramble = 0x5A5;                    // GFN -> MFN: RamMfn + (gfn ^ Scramble)
        private const ulong TableFlags = GuestPageTableBuilder.Present | GuestPageTableBuilder.Writable | GuestPageTableBuilder.Accessed;
        private const ulong LeafFlags = TableFlags | GuestPageTableBuilder.Dirty;

        // Room for the EPT tables besides guest RAM: 128 leaf tables and 3 upper ones.
        private const long TableReserveBytes = 16L << 20;

        private readonly bool[] _is4K = new bool[RegionCount];
        private readonly ulong[] _pageXor = new ulong[RegionCount];   // 4K region: linear page j -> GPA page j ^ x

        /// <summary>Builds the guest: the 4K EPT mapping of guest RAM, then the guest page tables.</summary>
        /// <param name="seed">Chooses the 4K regions and their page orders.</param>
        public Walk2DGuest(int seed)
            : base(GuestRamBytes, TableReserveBytes, Scramble)
        {
            try
            {
                // Exactly half of the regions (rounded down) in 4K pages, chosen by a seeded shuffle.
                Random random = new Random(seed);
                int[] order = new int[RegionCount];
                for (int i = 0; i < order.Length; i++)
                {
                    order[i] = i;
                }

                random.Shuffle(order);
                for (int i = 0; i < RegionCount / 2; i++)
                {
                    _is4K[order[i]] = true;
                }

                for (int r = 0; r < RegionCount; r++)
                {
                    _pageXor[r] = _is4K[r] ? (ulong)random.Next(512) : 0;
                }

                Regions4K = RegionCount / 2;
                BuildTables(Pml4Gfn, FirstPtGfn, MapRegions);
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        /// <summary>The stage-2 hierarchy: <see cref="Domain.HostP2m"/>.</summary>
        public P2m P2m => Domain.HostP2m;

        /// <summary>Linear regions mapped with 4K guest pages; the other <see cref="Regions2M"/> are 2M pages.</summary>
        public int Regions4K { get; }

        /// <summary>Linear regions mapped with one 2M guest page each.</summary>
        public int Regions2M => RegionCount - Regions4K;

        /// <summary>Whether linear region <paramref name="region"/> is mapped with 4K guest pages.</summary>
        public bool IsRegion4K(int region) => _is4K[region];

        /// <summary>
        /// Returns <paramref name="count"/> random linear addresses in the mapped range: a uniform
        /// byte address (so about half in 4K regions). The same seed gives the same addresses.
        /// </summary>
        public static ulong[] RandomGlas(int count, int seed)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(count);
            Random random = new Random(seed);
            ulong[] glas = new ulong[count];
            for (int i = 0; i < glas.Length; i++)
            {
                glas[i] = GlaBase + (ulong)random.NextInt64((long)RegionCount << RegionBits);
            }

            return glas;
        }

        /// <summary>The GPA that <paramref name="gla"/> maps to, from the layout (not the tables).</summary>
        public ulong ExpectedGpa(ulong gla)
        {
            ulong offset = gla - GlaBase;
            int region = (int)(offset >> RegionBits);
            ulong regionGpa = (ulong)(region + 1) << RegionBits;
            if (!_is4K[region])
            {
                return regionGpa | (offset & ((1UL << RegionBits) - 1));
            }

            ulong page = ((offset >> PageBits) & 511) ^ _pageXor[region];
            return regionGpa | (page << PageBits) | (gla & 0xFFF);
        }

        /// <summary>
        /// Walks every address of <paramref name="glas"/> with <see cref="Vcpu.TranslateLinear"/>
        /// and checks it against the layout (GPA, page level, HPA) and against
        /// <see cref="P2m.Translate"/> of its GPA, then checks
        /// <see cref="Vcpu.TranslateLinearBatch"/> against the single walks, and that a second pass
        /// leaves the guest tables bit for bit unchanged (no A/D writes in the steady state).
        /// Returns each address's GPA, for the 1D baseline.
        /// </summary>
        /// <exception cref="InvalidOperationException">A walk gave a wrong answer, or walks write to the guest tables.</exception>
        public ulong[] Verify(ReadOnlySpan<ulong> glas)
        {
            ulong before = TableChecksum();
            ulong[] gpas = new ulong[glas.Length];
            GuestTranslation[] single = new GuestTranslation[glas.Length];
            for (int i = 0; i < glas.Length; i++)
            {
                ulong gla = glas[i];
                GuestTranslation t = Vcpu.TranslateLinear(gla, Pfec);
                ulong gpa = ExpectedGpa(gla);
                int level = _is4K[(int)((gla - GlaBase) >> RegionBits)] ? 1 : 2;
                EptTranslation e = P2m.Translate(gpa, AccessKind.Read);
                if (t.Status != GuestStatus.Ok || t.Gpa != gpa || t.Level != level || e.Status != EptStatus.Ok
                    || e.Hpa != ExpectedHpa(gpa) || t.Hpa != e.Hpa)
                {
                    throw new InvalidOperationException(
                        $"Walk2DGuest: TranslateLinear(0x{gla:X}) gave {t}; expected Ok gpa=0x{gpa:X} level={level} "
                        + $"hpa=0x{ExpectedHpa(gpa):X}; Translate(0x{gpa:X}) gave {e}.");
                }

                gpas[i] = t.Gpa;
                single[i] = t;
            }

            ulong afterFirst = TableChecksum();
            GuestTranslation[] batch = new GuestTranslation[glas.Length];
            Vcpu.TranslateLinearBatch(glas, Pfec, batch);
            for (int i = 0; i < glas.Length; i++)
            {
                if (batch[i] != single[i])
                {
                    throw new InvalidOperationException(
                        $"Walk2DGuest: TranslateLinearBatch gave {batch[i]} for GLA 0x{glas[i]:X}; TranslateLinear gives {single[i]}.");
                }
            }

            if (TableChecksum() != afterFirst)
            {
                throw new InvalidOperationException("Walk2DGuest: read walks keep writing to the guest page tables; the benchmark would time A/D updates.");
            }

            if (afterFirst != before)
            {
                Console.WriteLine("// Walk2DGuest: the first pass changed the guest tables (A/D); later passes do not.");
            }

            return gpas;
        }

        // PML4, PDPT and the one PD at GFNs 1 to 3, the page tables from GFN 16 in region order.
        private void MapRegions(GuestPageTableBuilder tables)
        {
            for (int r = 0; r < RegionCount; r++)
            {
                ulong gla = GlaBase + ((ulong)r << RegionBits);
                ulong regionGpa = (ulong)(r + 1) << RegionBits;
                if (!_is4K[r])
                {
                    tables.Map(gla, regionGpa, PageOrder.Size2M, LeafFlags, TableFlags);
                    continue;
                }

                for (ulong j = 0; j < 512; j++)
                {
                    ulong pageGpa = regionGpa | ((j ^ _pageXor[r]) << PageBits);
                    tables.Map(gla | (j << PageBits), pageGpa, PageOrder.Size4K, LeafFlags, TableFlags);
                }
            }

            if (tables.TableGfns[^1] >= 512)
            {
                throw new InvalidOperationException("Walk2DGuest: the guest tables do not fit in the first 2 MiB region.");
            }
        }
    }
}
