// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;

namespace FastEpt.Testing
{
    /// <summary>
    /// Builds stage-1 (IA-32e, 4- or 5-level) guest page tables in guest RAM for the tests and
    /// the benchmarks: a root table, then <see cref="Map"/> of a linear address to a
    /// guest-physical page of 4 KiB, 2 MiB or 1 GiB, taking (and clearing) a table frame for every
    /// table the path lacks.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Guest RAM must already be mapped in the EPT; where each guest frame lies in host memory is
    /// the fixture's layout (<c>mfnOf</c>), so the builder writes the frames the fixture
    /// describes even when a test later remaps a table page in the EPT. Table frames are taken
    /// in order: the upper tables (the root included) from one run of GFNs, the page tables
    /// (level 1) from another, so a fixture can keep its tables where its tests expect them.
    /// </para>
    /// <para>
    /// Entries are written exactly as given: a table entry is the child's address ORed with
    /// <c>tableFlags</c>, a leaf the page's address ORed with <c>flags</c> (and PS for a 2M or 1G
    /// page). Nothing is added, so A/D bits, reserved bits and missing rights are the caller's
    /// choice (Intel SDM Vol. 3A 4.5, tables 4-14 to 4-20).
    /// </para>
    /// </remarks>
    internal sealed class GuestPageTableBuilder
    {
        /// <summary>P (bit 0): the entry is present.</summary>
        public const ulong Present = 1UL << 0;

        /// <summary>R/W (bit 1): writes allowed.</summary>
        public const ulong Writable = 1UL << 1;

        /// <summary>U/S (bit 2): user-mode accesses allowed.</summary>
        public const ulong User = 1UL << 2;

        /// <summary>A (bit 5): accessed.</summary>
        public const ulong Accessed = 1UL << 5;

        /// <summary>D (bit 6): dirty (leaves only).</summary>
        public const ulong Dirty = 1UL << 6;

        /// <summary>PS (bit 7): a PDE or PDPTE that maps a 2M or 1G page.</summary>
        public const ulong PageSize = 1UL << 7;

        private const int PageBits = 12;
        private const ulong PageMask = (1UL << PageBits) - 1;
        private const ulong AddressMask = 0x000F_FFFF_FFFF_F000;   // bits 51:12

        private readonly HostMemory _memory;
        private readonly Func<ulong, ulong> _mfnOf;
        private readonly List<ulong> _tableGfns = new();
        private ulong _nextTableGfn;
        private ulong _nextPageTableGfn;

        /// <summary>Takes the root table (the first upper-table GFN) and clears it.</summary>
        /// <param name="memory">The host memory under guest RAM.</param>
        /// <param name="mfnOf">The host frame of a guest frame, as the fixture laid guest RAM out.</param>
        /// <param name="levels">4 (LongMode4) or 5 (LongMode5).</param>
        /// <param name="firstTableGfn">The GFN of the root; later upper tables (levels 2 and up) take the GFNs after it.</param>
        /// <param name="firstPageTableGfn">The GFN of the first page table (level 1); later ones take the GFNs after it.</param>
        public GuestPageTableBuilder(HostMemory memory, Func<ulong, ulong> mfnOf, int levels, ulong firstTableGfn, ulong firstPageTableGfn)
        {
            ArgumentNullException.ThrowIfNull(memory);
            ArgumentNullException.ThrowIfNull(mfnOf);
            if (levels is not (4 or 5))
            {
                throw new ArgumentOutOfRangeException(nameof(levels), levels, "Guest paging has 4 or 5 levels.");
            }

            _memory = memory;
            _mfnOf = mfnOf;
            Levels = levels;
            _nextTableGfn = firstTableGfn;
            _nextPageTableGfn = firstPageTableGfn;
            RootGfn = TakeTable(levels);
        }

        /// <summary>4 or 5.</summary>
        public int Levels { get; }

        /// <summary>The GFN of the top table (PML4, or PML5 with 5 levels).</summary>
        public ulong RootGfn { get; }

        /// <summary>The CR3 that points at the root.</summary>
        public ulong Cr3 => RootGfn << PageBits;

        /// <summary>Every table taken so far, root first, in the order taken.</summary>
        public IReadOnlyList<ulong> TableGfns => _tableGfns;

        /// <summary>The index of <paramref name="gla"/> in a table of <paramref name="level"/> (1 = page table).</summary>
        public static ulong Index(ulong gla, int level) => (gla >> (PageBits + (9 * (level - 1)))) & 511;

        /// <summary>
        /// Maps the page of <paramref name="gla"/> (its offset bits are ignored) to the
        /// guest-physical page at <paramref name="gpa"/>, taking the tables the path lacks.
        /// </summary>
        /// <param name="gla">A linear address in the page to map.</param>
        /// <param name="gpa">The page's guest-physical address, aligned to <paramref name="size"/>.</param>
        /// <param name="size">4K (a PTE), 2M (a PDE with PS) or 1G (a PDPTE with PS).</param>
        /// <param name="flags">The leaf's flags (PS is added for 2M and 1G).</param>
        /// <param name="tableFlags">The flags of every table entry this call writes.</param>
        /// <exception cref="InvalidOperationException">A large page is already mapped where a table is needed.</exception>
        public void Map(ulong gla, ulong gpa, PageOrder size, ulong flags, ulong tableFlags)
        {
            int level = LeafLevel(size);
            if ((gpa & ((1UL << (PageBits + (int)size)) - 1)) != 0)
            {
                throw new ArgumentException($"GPA 0x{gpa:X} is not aligned to a {size} page.", nameof(gpa));
            }

            ulong table = TableFor(gla, level, tableFlags);
            Write(Slot(table, gla, level), gpa | flags | (level > 1 ? PageSize : 0));
        }

        /// <summary>Clears the leaf entry of a <paramref name="size"/> page at <paramref name="gla"/>.</summary>
        public void Unmap(ulong gla, PageOrder size) => Write(EntryGpa(gla, LeafLevel(size)), 0);

        /// <summary>
        /// The GFN of the table at <paramref name="level"/> on the path of <paramref name="gla"/>,
        /// taking (and linking with <paramref name="tableFlags"/>) every table above it that is missing.
        /// </summary>
        public ulong TableFor(ulong gla, int level, ulong tableFlags)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(level, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(level, Levels);
            ulong table = RootGfn;
            for (int above = Levels; above > level; above--)
            {
                ulong slot = Slot(table, gla, above);
                ulong pte = Read(slot);
                if (pte == 0)
                {
                    ulong child = TakeTable(above - 1);
                    Write(slot, (child << PageBits) | tableFlags);
                    table = child;
                }
                else if (above is 2 or 3 && (pte & PageSize) != 0)
                {
                    throw new InvalidOperationException($"GLA 0x{gla:X}: a large page is mapped at level {above}, where a table is needed.");
                }
                else
                {
                    table = (pte & AddressMask) >> PageBits;
                }
            }

            return table;
        }

        /// <summary>The GPA of the entry at <paramref name="level"/> on the path of <paramref name="gla"/>, following the tables there are.</summary>
        /// <exception cref="InvalidOperationException">A table on the path is missing.</exception>
        public ulong EntryGpa(ulong gla, int level)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(level, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(level, Levels);
            ulong table = RootGfn;
            for (int above = Levels; above > level; above--)
            {
                ulong pte = Read(Slot(table, gla, above));
                if (pte == 0 || (above is 2 or 3 && (pte & PageSize) != 0))
                {
                    throw new InvalidOperationException($"GLA 0x{gla:X}: no table below level {above}.");
                }

                table = (pte & AddressMask) >> PageBits;
            }

            return Slot(table, gla, level);
        }

        /// <summary>Reads the guest-physical quadword at <paramref name="gpa"/> (through the fixture's layout, not the EPT).</summary>
        public ulong Read(ulong gpa) => _memory.ReadUInt64(HpaOf(gpa));

        /// <summary>Writes the guest-physical quadword at <paramref name="gpa"/> (through the fixture's layout, not the EPT).</summary>
        public void Write(ulong gpa, ulong value) => _memory.WriteUInt64(HpaOf(gpa), value);

        private static int LeafLevel(PageOrder size) => size switch
        {
            PageOrder.Size4K => 1,
            PageOrder.Size2M => 2,
            PageOrder.Size1G => 3,
            _ => throw new ArgumentOutOfRangeException(nameof(size), size, null),
        };

        private static ulong Slot(ulong tableGfn, ulong gla, int level) => (tableGfn << PageBits) | (Index(gla, level) * 8);

        private ulong HpaOf(ulong gpa) => (_mfnOf(gpa >> PageBits) << PageBits) | (gpa & PageMask);

        // The next free GFN for a table of `level`, its frame cleared.
        private ulong TakeTable(int level)
        {
            ulong gfn = level == 1 ? _nextPageTableGfn++ : _nextTableGfn++;
            _memory.Frame(_mfnOf(gfn)).Clear();
            _tableGfns.Add(gfn);
            return gfn;
        }
    }
}
