// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Runtime.InteropServices;
using FastEpt.Interop;

namespace FastEpt.Bench
{
    /// <summary>How much table memory a scenario's guest needs, and so where its walks are served from.</summary>
    public enum Footprint
    {
        /// <summary>1 GiB of guest RAM: 2 MiB of 4K leaf tables, which the caches hold.</summary>
        CacheResident,

        /// <summary>64 GiB of guest RAM: 128 MiB of 4K leaf tables, meant to be served from DRAM.</summary>
        Dram,
    }

    /// <summary>The page sizes a scenario's guest is mapped with.</summary>
    public enum Mapping
    {
        /// <summary>Every 4 KiB frame its own leaf: a translation is a full 4-level walk.</summary>
        Page4K,

        /// <summary>Every 2 MiB region one superpage: 3-level walks, 512 times fewer leaf entries.</summary>
        Page2M,

        /// <summary>Each 2 MiB region, by a seeded coin flip, one 2M superpage or 512 4K pages.</summary>
        Mixed,
    }

    /// <summary>The order of the GPAs a scenario translates.</summary>
    public enum GpaPattern
    {
        /// <summary>Uniformly random pages (and offsets) over the whole guest.</summary>
        Random,

        /// <summary>Consecutive pages from a random start (a guest streaming through memory).</summary>
        Sequential,
    }

    /// <summary>
    /// A scenario's guest: <see cref="GuestBytes"/> of RAM mapped GFN <c>i</c> to MFN <c>i</c>
    /// (host memory is reserved lazily, and guest frames are never touched: only table frames
    /// get committed) with the page sizes of its <see cref="Mapping"/>, as
    /// <see cref="P2mType.RamRw"/> with <see cref="P2mAccess.RWX"/>. Every expected answer
    /// follows from that: a GPA translates to HPA = GPA, at level 1 in a 4K region and level 2
    /// in a 2M one.
    /// </summary>
    /// <remarks>
    /// Guests are built once per process and cached by (footprint, mapping), so in-process
    /// runs pay for the 64 GiB guests once, whatever the number of benchmark cases. They are
    /// only read after construction. Besides the p2m, a guest keeps a side table with each
    /// 2 MiB region's leaf-slot base (the 4K leaf table, or the PDE of a 2M page), which the
    /// load baselines use to touch exactly the leaf slot a walk would, without walking.
    /// </remarks>
    public sealed unsafe class ScenarioGuest : IDisposable
    {
        /// <summary>log2 of a 2 MiB region.</summary>
        public const int RegionBits = 21;

        private const ulong FrameMask = 0x000F_FFFF_FFFF_F000;
        private const int MixedSeed = 20260417;

        private static readonly Dictionary<(Footprint, Mapping), ScenarioGuest> Cache = new();
        private static readonly object CacheLock = new();

        private bool _disposed;

        private ScenarioGuest(Footprint footprint, Mapping mapping)
        {
            Footprint = footprint;
            Mapping = mapping;
            GuestBytes = footprint == Footprint.Dram ? 64L << 30 : 1L << 30;
            RegionCount = (int)(GuestBytes >> RegionBits);

            // Leaf tables (1/512 of the guest), the few upper tables, and room to spare.
            Memory = new HostMemory(GuestBytes + (GuestBytes >> 9) + (64L << 20));
            try
            {
                // Guest RAM first, from MFN 0, so that it is 2M- (and 1G-) aligned and GFN = MFN.
                ulong first = Memory.AllocateFrames(GuestBytes >> 12);
                if (first != 0)
                {
                    throw new InvalidOperationException($"Guest RAM should start at MFN 0, got 0x{first:X}.");
                }

                P2m = new P2m(Memory);
                Stopwatch watch = Stopwatch.StartNew();
                Build();
                BuildTime = watch.Elapsed;
                Native = new NativeWalker(P2m);
                SlotTable = (SlotRegion*)NativeMemory.AlignedAlloc((nuint)RegionCount * (nuint)sizeof(SlotRegion), 64);
                FillSlotTable();
                CheckSlots();
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        /// <summary>Where a 2 MiB region's leaf slots are: slot of GPA g = <c>Base + ((g &gt;&gt; 12) &amp; Mask) * 8</c>.</summary>
        [StructLayout(LayoutKind.Sequential)]
        public struct SlotRegion
        {
            /// <summary>The 4K leaf table's address, or a 2M page's PDE address.</summary>
            public ulong* Base;

            /// <summary>511 for a 4K region, 0 for a 2M page (one slot for the whole region).</summary>
            public ulong Mask;
        }

        /// <summary>The footprint this guest was built for.</summary>
        public Footprint Footprint { get; }

        /// <summary>The mapping this guest was built with.</summary>
        public Mapping Mapping { get; }

        /// <summary>Guest RAM in bytes (1 GiB or 64 GiB).</summary>
        public long GuestBytes { get; }

        /// <summary>Number of 2 MiB regions of guest RAM.</summary>
        public int RegionCount { get; }

        /// <summary>The host memory under the tables (and, nominally, the guest RAM).</summary>
        public HostMemory Memory { get; }

        /// <summary>The guest's EPT hierarchy.</summary>
        public P2m P2m { get; } = null!;

        /// <summary>The native twin over the same tables.</summary>
        public NativeWalker Native { get; } = null!;

        /// <summary>How long building the tables took.</summary>
        public TimeSpan BuildTime { get; }

        /// <summary>One <see cref="SlotRegion"/> per 2 MiB region (native memory, 64-byte aligned).</summary>
        public SlotRegion* SlotTable { get; private set; }

        /// <summary>Returns the cached guest for this footprint and mapping, building it on first use.</summary>
        public static ScenarioGuest Get(Footprint footprint, Mapping mapping)
        {
            lock (CacheLock)
            {
                if (!Cache.TryGetValue((footprint, mapping), out ScenarioGuest? guest))
                {
                    guest = new ScenarioGuest(footprint, mapping);
                    Console.WriteLine($"// ScenarioGuest {footprint}/{mapping}: built in {guest.BuildTime.TotalSeconds:F2} s, "
                        + $"{guest.P2m.TableFrameCount * 4096.0 / (1 << 20):F1} MiB of tables");
                    Cache.Add((footprint, mapping), guest);
                }

                return guest;
            }
        }

        /// <summary>Disposes every cached guest (at process exit).</summary>
        public static void DisposeAll()
        {
            lock (CacheLock)
            {
                foreach (ScenarioGuest guest in Cache.Values)
                {
                    guest.Dispose();
                }

                Cache.Clear();
            }
        }

        /// <summary>Whether 2 MiB region <paramref name="region"/> is mapped with 4K pages.</summary>
        public bool IsRegion4K(long region) => Mapping switch
        {
            Mapping.Page4K => true,
            Mapping.Page2M => false,
            _ => (Mix((ulong)region ^ MixedSeed) & 1) == 0,
        };

        /// <summary>The address of the leaf slot a walk of <paramref name="gpa"/> ends at, from the side table.</summary>
        public ulong* LeafSlot(ulong gpa)
        {
            SlotRegion r = SlotTable[gpa >> RegionBits];
            return r.Base + ((gpa >> 12) & r.Mask);
        }

        /// <summary>
        /// <paramref name="count"/> GPAs inside guest RAM in the given pattern, each with a random
        /// byte offset; the same seed gives the same addresses.
        /// </summary>
        public ulong[] MakeGpas(GpaPattern pattern, int count, int seed)
        {
            Random random = new Random(seed);
            ulong frames = (ulong)GuestBytes >> 12;
            ulong[] gpas = new ulong[count];
            ulong start = (ulong)random.NextInt64((long)frames);
            for (int i = 0; i < gpas.Length; i++)
            {
                ulong gfn = pattern == GpaPattern.Random ? (ulong)random.NextInt64((long)frames) : (start + (ulong)i) % frames;
                gpas[i] = (gfn << 12) | (uint)random.Next(4096);
            }

            return gpas;
        }

        /// <summary>
        /// Checks <paramref name="gpas"/> against the intended mapping: the managed walk gives
        /// Ok, HPA = GPA and the level of the region's page size; the native walk gives the same;
        /// the side table names the slot holding that very frame.
        /// </summary>
        /// <exception cref="InvalidOperationException">Anything differs.</exception>
        public void Verify(ReadOnlySpan<ulong> gpas)
        {
            foreach (ulong gpa in gpas)
            {
                bool is4K = IsRegion4K((long)(gpa >> RegionBits));
                int level = is4K ? 1 : 2;
                EptTranslation managed = P2m.Translate(gpa, AccessKind.Read);
                if (managed.Status != EptStatus.Ok || managed.Hpa != gpa || managed.Level != level)
                {
                    throw new InvalidOperationException(
                        $"{Footprint}/{Mapping}: Translate(0x{gpa:X}) gave {managed}; expected Ok 0x{gpa:X} at level {level}.");
                }

                EptTranslation native = Native.Translate(gpa, AccessKind.Read);
                if (native != managed)
                {
                    throw new InvalidOperationException($"{Footprint}/{Mapping}: native {native} and managed {managed} differ for GPA 0x{gpa:X}.");
                }

                ulong frame = *LeafSlot(gpa) & FrameMask;
                ulong expected = is4K ? gpa & ~0xFFFUL : gpa & ~((1UL << RegionBits) - 1);
                if (frame != expected)
                {
                    throw new InvalidOperationException($"{Footprint}/{Mapping}: the side table's leaf slot for GPA 0x{gpa:X} holds frame 0x{frame:X}, expected 0x{expected:X}.");
                }
            }
        }

        /// <summary>Disposes the tables, the host memory and the side table.</summary>
        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            NativeMemory.AlignedFree(SlotTable);
            SlotTable = null;
            P2m?.Dispose();
            Memory.Dispose();
        }

        // The tables are built by P2m.SetEntry only. A 4K region is mapped as one 2M page and
        // then one of its 4K pages is set to the frame it already maps: SetEntry splits the
        // superpage (Xen's ept_split_super_page) into a leaf table of 512 4K entries, for 2
        // calls instead of 512, so a 64 GiB guest builds in about a second instead of 16.7
        // million calls. CheckSlots proves the result is what 4K SetEntry calls give, bit for
        // bit. FASTEPT_BENCH_DIRECT_BUILD=1 builds with one SetEntry per 4K page instead.
        private void Build()
        {
            bool direct = Environment.GetEnvironmentVariable("FASTEPT_BENCH_DIRECT_BUILD") == "1";
            for (long region = 0; region < RegionCount; region++)
            {
                ulong gfn = (ulong)region << 9;
                if (!IsRegion4K(region))
                {
                    P2m.SetEntry(gfn, gfn, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
                }
                else if (direct)
                {
                    for (ulong i = 0; i < 512; i++)
                    {
                        P2m.SetEntry(gfn + i, gfn + i, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                    }
                }
                else
                {
                    P2m.SetEntry(gfn, gfn, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
                    P2m.SetEntry(gfn, gfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                }
            }
        }

        // Reads the live tables once (raw) to find each region's leaf slots.
        private void FillSlotTable()
        {
            byte* b = Memory.Base;
            for (long region = 0; region < RegionCount; region++)
            {
                ulong gpa = (ulong)region << RegionBits;
                ulong* pml4 = (ulong*)(b + (P2m.RootMfn << 12));
                ulong* pdpt = (ulong*)(b + (pml4[(gpa >> 39) & 511] & FrameMask));
                ulong* pd = (ulong*)(b + (pdpt[(gpa >> 30) & 511] & FrameMask));
                ulong* pde = pd + ((gpa >> 21) & 511);
                SlotTable[region] = (*pde & (1UL << 7)) != 0
                    ? new SlotRegion { Base = pde, Mask = 0 }
                    : new SlotRegion { Base = (ulong*)(b + (*pde & FrameMask)), Mask = 511 };
            }
        }

        // Every leaf entry of the guest, bit for bit, against the entry a single SetEntry of
        // that page size writes into a fresh p2m (same frame), so the split build above is
        // exactly what one SetEntry per page gives.
        private void CheckSlots()
        {
            (ulong leaf4K, ulong leaf2M) = ReferenceEntries();
            for (long region = 0; region < RegionCount; region++)
            {
                ulong gpa = (ulong)region << RegionBits;
                SlotRegion r = SlotTable[region];
                bool is4K = IsRegion4K(region);
                if ((r.Mask != 0) != is4K)
                {
                    throw new InvalidOperationException($"{Footprint}/{Mapping}: region 0x{region:X} should be mapped with {(is4K ? "4K" : "2M")} pages.");
                }

                for (ulong i = 0; i <= r.Mask; i++)
                {
                    ulong expected = is4K ? leaf4K | (gpa + (i << 12)) : leaf2M | gpa;
                    if (r.Base[i] != expected)
                    {
                        throw new InvalidOperationException(
                            $"{Footprint}/{Mapping}: leaf entry for GPA 0x{gpa + (i << 12):X} is 0x{r.Base[i]:X}; one SetEntry writes 0x{expected:X}.");
                    }
                }
            }
        }

        // The non-frame bits of a 4K and a 2M leaf as SetEntry writes them in a fresh p2m.
        private static (ulong Leaf4K, ulong Leaf2M) ReferenceEntries()
        {
            using HostMemory memory = new HostMemory(16L << 20);
            ulong first = memory.AllocateFrames(1024);     // 4 MiB: one 2M-aligned region inside
            ulong gfn = (first + 511) & ~511UL;
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(gfn, gfn, PageOrder.Size2M, P2mType.RamRw, P2mAccess.RWX);
            ulong pd = LeafSlotOf(memory, p2m, gfn << 12, 2);
            p2m.SetEntry(gfn + 512, gfn + 512, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            ulong pt = LeafSlotOf(memory, p2m, (gfn + 512) << 12, 1);
            return (pt & ~FrameMask, pd & ~FrameMask);
        }

        private static ulong LeafSlotOf(HostMemory memory, P2m p2m, ulong gpa, int level)
        {
            byte* b = memory.Base;
            ulong e = p2m.RootMfn << 12;
            for (int l = 4, shift = 39; l >= level; l--, shift -= 9)
            {
                e = ((ulong*)(b + (e & FrameMask)))[(gpa >> shift) & 511];
            }

            return e;
        }

        // SplitMix64's finaliser: a well-mixed seeded coin per region.
        private static ulong Mix(ulong z)
        {
            z += 0x9E37_79B9_7F4A_7C15;
            z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9;
            z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EB;
            return z ^ (z >> 31);
        }
    }
}
