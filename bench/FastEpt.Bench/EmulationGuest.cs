// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Buffers.Binary;
using FastEpt.Testing;

namespace FastEpt.Bench
{
    /// <summary>
    /// The guest of the emulation benchmark: a <see cref="FastEpt.Domain"/> with
    /// <see cref="GuestRamBytes"/> of guest RAM in 4 KiB EPT leaves, <see cref="MmioPages"/> pages
    /// of MMIO owned by a <see cref="MemoryMmioDevice"/>, and 4-level long-mode guest page tables,
    /// in guest RAM, that map two linear 2 MiB regions with 4K pages: <see cref="RamGla"/> onto the
    /// 512 RAM data pages and <see cref="MmioGla"/> onto the 512 MMIO pages.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Guest-physical layout: the first 2 MiB of RAM holds the guest page tables (PML4, PDPT, one
    /// PD, two PTs), the second 2 MiB the data pages (GFNs 512 to 1023); the MMIO range starts at
    /// <see cref="MmioGpa"/>, far above RAM. Linear page <c>j</c> of a region maps page
    /// <c>j ^ x</c> of its GFN range, with a seeded <c>x</c> per region, so two linear neighbours
    /// are not physical neighbours. GFN <c>g</c> of RAM is backed by MFN
    /// <c>RamMfn + (g ^ 0x2A5)</c>, so no HPA equals its GPA. Every expected answer follows from
    /// that layout, independently of the tables.
    /// </para>
    /// <para>
    /// Every guest entry is written with its accessed flag (and a leaf's dirty flag) already set
    /// and EPT A/D is off, so neither reads nor writes change a paging structure;
    /// <see cref="Verify"/> checks that the tables stay bit for bit unchanged.
    /// </para>
    /// </remarks>
    public sealed class EmulationGuest : LongModeGuest
    {
        /// <summary>Guest RAM in bytes (4 MiB: 2 MiB of page tables, 2 MiB of data pages).</summary>
        public const long GuestRamBytes = 4L << 20;

        /// <summary>4K pages in each linear region (one guest page table).</summary>
        public const int RegionPages = 512;

        /// <summary>MMIO pages the device owns.</summary>
        public const int MmioPages = RegionPages;

        /// <summary>First GFN of the RAM data pages.</summary>
        public const ulong DataGfn = 512;

        /// <summary>First GPA of the MMIO range (4 GiB: far above guest RAM).</summary>
        public const ulong MmioGpa = 1UL << 32;

        /// <summary>First linear address of the RAM region (1 GiB-aligned, so one PD maps both regions).</summary>
        public const ulong RamGla = 0x0000_3C3C_4000_0000;

        /// <summary>First linear address of the MMIO region, the 2 MiB after the RAM region.</summary>
        public const ulong MmioGla = RamGla + (1UL << RegionBits);

        /// <summary>Every access is a supervisor data access (the write bit is added by <see cref="HvmEmulation.LinearWrite"/>).</summary>
        public const PageFaultErrorCode Pfec = PageFaultErrorCode.None;

        private const int PageBits = 12;
        private const int RegionBits = 21;
        private const ulong PageMask = (1UL << PageBits) - 1;
        private const ulong Pml4Gfn = 1, RamPtGfn = 16;
        private const ulong Scramble = 0x2A5;                    // GFN -> MFN: RamMfn + (gfn ^ Scramble)
        private const ulong TableFlags = GuestPageTableBuilder.Present | GuestPageTableBuilder.Writable | GuestPageTableBuilder.Accessed;
        private const ulong QualFinal = 1UL << 8;                // EPT violation qualification: the final access, not a paging structure
        private const ulong LeafFlags = TableFlags | GuestPageTableBuilder.Dirty;

        // Room for the EPT tables besides guest RAM.
        private const long TableReserveBytes = 4L << 20;

        private readonly ulong _ramXor;
        private readonly ulong _mmioXor;

        /// <summary>Builds the guest: the 4K EPT mapping of guest RAM, the MMIO range, then the guest page tables.</summary>
        /// <param name="seed">Chooses each region's page order.</param>
        public EmulationGuest(int seed)
            : base(GuestRamBytes, TableReserveBytes, Scramble)
        {
            try
            {
                Device = new MemoryMmioDevice(MmioGpa, MmioPages);
                Domain.MapMmio(MmioGpa >> PageBits, MmioPages, Device);

                Random random = new Random(seed);
                _ramXor = (ulong)random.Next(1, RegionPages);
                _mmioXor = (ulong)random.Next(1, RegionPages);
                BuildTables(Pml4Gfn, RamPtGfn, MapRegions);
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        /// <summary>The device behind the MMIO range.</summary>
        public MemoryMmioDevice Device { get; } = null!;

        /// <summary>
        /// Returns <paramref name="count"/> random linear addresses of 8-byte accesses in the MMIO
        /// region (<paramref name="mmio"/>) or the RAM region: 8-byte aligned inside one page, or,
        /// with <paramref name="crossing"/>, at page offset 0xFFC of a page whose linear successor
        /// is in the same region (4 bytes on each page). The same seed gives the same addresses.
        /// </summary>
        public static ulong[] RandomGlas(int count, bool mmio, bool crossing, int seed)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(count);
            Random random = new Random(seed);
            ulong region = mmio ? MmioGla : RamGla;
            ulong[] glas = new ulong[count];
            for (int i = 0; i < glas.Length; i++)
            {
                ulong page = (ulong)random.Next(crossing ? RegionPages - 1 : RegionPages);
                ulong offset = crossing ? 0xFFC : (ulong)random.Next(512) * 8;
                glas[i] = region + (page << PageBits) + offset;
            }

            return glas;
        }

        /// <summary>Whether <paramref name="gla"/> is in the MMIO region (else the RAM region).</summary>
        public static bool IsMmio(ulong gla) => gla >= MmioGla;

        /// <summary>The GPA that <paramref name="gla"/> maps to, from the layout (not the tables).</summary>
        public ulong ExpectedGpa(ulong gla)
        {
            bool mmio = IsMmio(gla);
            ulong page = ((gla - (mmio ? MmioGla : RamGla)) >> PageBits) ^ (mmio ? _mmioXor : _ramXor);
            return (mmio ? MmioGpa : DataGfn << PageBits) + (page << PageBits) + (gla & PageMask);
        }

        /// <summary>
        /// Checks 8-byte accesses at every address of <paramref name="glas"/>, all in one region,
        /// through <paramref name="emulation"/> against the layout: each address's bytes are set
        /// directly (guest RAM through <see cref="Memory"/>, or the device's array), read through
        /// <see cref="HvmEmulation.LinearRead"/> and compared, then written through
        /// <see cref="HvmEmulation.LinearWrite"/> and compared directly; every call must return
        /// <see cref="EmulationResult.Okay"/> and leave no cache entry or pending request after
        /// <see cref="HvmEmulation.Complete"/>. For MMIO it checks that the device saw one 8-byte
        /// access per access, or two 4-byte ones when the operand crosses a page, and for RAM none
        /// at all. Both pages of each access are also checked with <see cref="Vcpu.TranslateLinear"/>:
        /// RAM to the layout's GPA (4K level) and HPA, MMIO to an EPT violation on the final access
        /// at the layout's GPA. Finally, that the guest tables are unchanged (no A/D writes) and that every
        /// page reference taken was dropped.
        /// </summary>
        /// <exception cref="InvalidOperationException">An access gave a wrong answer or result.</exception>
        public void Verify(HvmEmulation emulation, ReadOnlySpan<ulong> glas, int seed)
        {
            ArgumentNullException.ThrowIfNull(emulation);
            ulong tablesBefore = TableChecksum();
            long referencesBefore = DataReferences();
            bool mmio = glas.Length != 0 && IsMmio(glas[0]);
            bool crossing = glas.Length != 0 && (glas[0] & PageMask) > PageMask - 7;
            Random random = new Random(seed);
            Span<byte> buffer = stackalloc byte[8];
            Device.ResetCounts();
            foreach (ulong gla in glas)
            {
                if (IsMmio(gla) != mmio || ((gla & PageMask) > PageMask - 7) != crossing)
                {
                    throw new InvalidOperationException($"EmulationGuest: GLA 0x{gla:X} is not of the pool's kind.");
                }

                for (ulong b = 0; b < 8; b += 4)
                {
                    // RAM: translated to the layout's HPA; MMIO: an EPT violation on the final access at the layout's GPA.
                    ulong gpa = ExpectedGpa(gla + b);
                    GuestTranslation t = Vcpu.TranslateLinear(gla + b, Pfec);
                    bool good = mmio
                        ? t.Status == GuestStatus.EptViolation && t.Gpa == gpa && (t.Ept.Qualification & QualFinal) != 0
                        : t.Status == GuestStatus.Ok && t.Gpa == gpa && t.Level == 1 && t.Hpa == ExpectedHpa(gpa);
                    if (!good)
                    {
                        throw new InvalidOperationException(mmio
                            ? $"EmulationGuest: TranslateLinear(0x{gla + b:X}) gave {t}; expected an EPT violation on the final access, gpa=0x{gpa:X}."
                            : $"EmulationGuest: TranslateLinear(0x{gla + b:X}) gave {t}; expected Ok gpa=0x{gpa:X} level=1 hpa=0x{ExpectedHpa(gpa):X}.");
                    }
                }

                ulong planted = (ulong)random.NextInt64();
                SetDirect(gla, planted);
                Check(emulation, gla, emulation.LinearRead(gla, buffer, Pfec), "LinearRead");
                if (BinaryPrimitives.ReadUInt64LittleEndian(buffer) != planted)
                {
                    throw new InvalidOperationException(
                        $"EmulationGuest: LinearRead(0x{gla:X}) gave 0x{BinaryPrimitives.ReadUInt64LittleEndian(buffer):X}; the {(mmio ? "device" : "RAM")} holds 0x{planted:X}.");
                }

                ulong written = (ulong)random.NextInt64();
                BinaryPrimitives.WriteUInt64LittleEndian(buffer, written);
                Check(emulation, gla, emulation.LinearWrite(gla, buffer, Pfec), "LinearWrite");
                if (GetDirect(gla) != written)
                {
                    throw new InvalidOperationException(
                        $"EmulationGuest: LinearWrite(0x{gla:X}, 0x{written:X}) left 0x{GetDirect(gla):X} in the {(mmio ? "device" : "RAM")}.");
                }
            }

            long accesses = 2L * glas.Length;       // one read and one write per address
            long eights = mmio && !crossing ? accesses : 0;
            long fours = mmio && crossing ? 2 * accesses : 0;
            if (Device.AccessesOfSize(8) != eights || Device.AccessesOfSize(4) != fours || Device.Accesses != eights + fours)
            {
                throw new InvalidOperationException(
                    $"EmulationGuest: the device saw {Device.AccessesOfSize(8)} 8-byte, {Device.AccessesOfSize(4)} 4-byte and {Device.Accesses} accesses in all; "
                    + $"expected {eights} 8-byte and {fours} 4-byte ones.");
            }

            if (TableChecksum() != tablesBefore)
            {
                throw new InvalidOperationException("EmulationGuest: emulated accesses write to the guest page tables; the benchmark would time A/D updates.");
            }

            if (DataReferences() != referencesBefore)
            {
                throw new InvalidOperationException($"EmulationGuest: the data pages hold {DataReferences()} references after the accesses, {referencesBefore} before.");
            }
        }

        private static void Check(HvmEmulation emulation, ulong gla, EmulationResult result, string call)
        {
            if (result != EmulationResult.Okay)
            {
                throw new InvalidOperationException($"EmulationGuest: {call}(0x{gla:X}) returned {result}: {emulation.LastFailure}.");
            }

            emulation.Complete();
            if (emulation.CacheEntriesInUse != 0 || emulation.HasPendingRequest)
            {
                throw new InvalidOperationException($"EmulationGuest: after {call}(0x{gla:X}) and Complete() the MMIO cache is not empty.");
            }
        }

        // The 8 bytes at `gla`, byte by byte through the layout: guest RAM or the device's array.
        private ulong GetDirect(ulong gla)
        {
            ulong value = 0;
            for (int b = 0; b < 8; b++)
            {
                value |= (ulong)ByteAt(gla + (ulong)b) << (8 * b);
            }

            return value;
        }

        private void SetDirect(ulong gla, ulong value)
        {
            for (int b = 0; b < 8; b++)
            {
                ByteAt(gla + (ulong)b) = (byte)(value >> (8 * b));
            }
        }

        private ref byte ByteAt(ulong gla)
        {
            ulong gpa = ExpectedGpa(gla);
            if (IsMmio(gla))
            {
                return ref Device.Bytes[(int)(gpa - MmioGpa)];
            }

            ulong hpa = ExpectedHpa(gpa);
            return ref Memory.Frame(hpa >> PageBits)[(int)(hpa & PageMask)];
        }

        // PML4, PDPT and the one PD at GFNs 1 to 3; the RAM region's page table at GFN 16, the MMIO region's at 17.
        private void MapRegions(GuestPageTableBuilder tables)
        {
            foreach (ulong region in (ReadOnlySpan<ulong>)[RamGla, MmioGla])
            {
                for (ulong j = 0; j < RegionPages; j++)
                {
                    ulong gla = region + (j << PageBits);
                    tables.Map(gla, ExpectedGpa(gla), PageOrder.Size4K, LeafFlags, TableFlags);
                }
            }
        }

        // References held on the data pages, all together.
        private long DataReferences()
        {
            long sum = 0;
            for (ulong gfn = DataGfn; gfn < DataGfn + RegionPages; gfn++)
            {
                sum += Memory.ReferenceCount(MfnOf(gfn));
            }

            return sum;
        }
    }
}
