// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;

namespace FastEpt.Bench
{
    /// <summary>
    /// One guest for the per-mode 2D-walk rows: guest RAM in 4 KiB EPT leaves (GFN <c>g</c> on MFN
    /// <c>RamMfn + g</c>), and four vCPUs, one per paging mode (32-bit, PAE, 4-level, 5-level), each
    /// with its own tables mapping the same <see cref="Pages"/> random linear 4 KiB pages (below
    /// 1 GiB, so every mode can hold them) to the same random data frames. Entries carry A and D,
    /// so no walk writes.
    /// </summary>
    internal sealed class PagingModeGuest : IDisposable
    {
        public const int Pages = 4096;
        public const long GuestRamBytes = 64L << 20;
        private const int PageBits = 12;
        private const ulong Flags = 0x67;      // P|W|U|A|D

        private readonly Dictionary<ulong, ulong> _tables = new();     // (mode, table gfn, index) -> child table gfn, see Child
        private ulong _nextTableGfn = 1;

        public PagingModeGuest(int seed)
        {
            Memory = new HostMemory(GuestRamBytes + (16L << 20));
            Domain = new Domain(Memory, new DomainOptions { Vcpus = 4, AltViews = 0 });
            RamMfn = Memory.AllocateFrames(GuestRamBytes >> PageBits);
            for (ulong gfn = 0; gfn < (ulong)(GuestRamBytes >> PageBits); gfn++)
            {
                Domain.HostP2m.SetEntry(gfn, RamMfn + gfn, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            Random rng = new(seed);
            HashSet<ulong> used = new();
            Glas = new ulong[Pages];
            Gpas = new ulong[Pages];
            for (int i = 0; i < Pages; i++)
            {
                ulong page;
                do
                {
                    page = (ulong)rng.Next(1 << 18);       // a 4K page below 1 GiB
                }
                while (!used.Add(page));

                ulong offset = (ulong)rng.Next(512) * 8;
                Glas[i] = (page << PageBits) | offset;
                Gpas[i] = ((8192 + (ulong)rng.Next(8192)) << PageBits) | offset;     // data frames in the upper half of RAM
            }

            GuestPagingMode[] modes = [GuestPagingMode.Paging32, GuestPagingMode.Pae, GuestPagingMode.LongMode4, GuestPagingMode.LongMode5];
            for (int v = 0; v < modes.Length; v++)
            {
                Vcpu cpu = Domain.Vcpus[v];
                ulong root = _nextTableGfn++ << PageBits;
                for (int i = 0; i < Pages; i++)
                {
                    Map(modes[v], root, Glas[i], Gpas[i] & ~0xFFFUL);
                }

                cpu.Mode = modes[v];
                cpu.Cr4 |= Cr4Flags.Pse;
                if (cpu.LoadCr3(root, out GuestTranslation fault) != GuestStatus.Ok)
                {
                    throw new InvalidOperationException($"{modes[v]}: CR3 load failed: {fault}");
                }
            }
        }

        public HostMemory Memory { get; }

        public Domain Domain { get; }

        public ulong RamMfn { get; }

        /// <summary>The linear addresses, each mapped in every mode.</summary>
        public ulong[] Glas { get; }

        /// <summary>The guest-physical address of each of <see cref="Glas"/>.</summary>
        public ulong[] Gpas { get; }

        /// <summary>The vCPU in <paramref name="mode"/>.</summary>
        public Vcpu Cpu(GuestPagingMode mode) => Domain.Vcpus[mode switch
        {
            GuestPagingMode.Paging32 => 0,
            GuestPagingMode.Pae => 1,
            GuestPagingMode.LongMode4 => 2,
            _ => 3,
        }];

        public void Dispose()
        {
            Domain.Dispose();
            Memory.Dispose();
        }

        // Writes the path of `gla` to the 4K page `gpa`: (index shift, index bits, entry bytes) per level.
        private void Map(GuestPagingMode mode, ulong root, ulong gla, ulong gpa)
        {
            (int Shift, int Bits, int Bytes)[] levels = mode switch
            {
                GuestPagingMode.Paging32 => [(22, 10, 4), (12, 10, 4)],
                GuestPagingMode.Pae => [(30, 2, 8), (21, 9, 8), (12, 9, 8)],
                GuestPagingMode.LongMode4 => [(39, 9, 8), (30, 9, 8), (21, 9, 8), (12, 9, 8)],
                _ => [(48, 9, 8), (39, 9, 8), (30, 9, 8), (21, 9, 8), (12, 9, 8)],
            };
            ulong table = root;
            for (int l = 0; l < levels.Length; l++)
            {
                (int shift, int bits, int bytes) = levels[l];
                ulong slot = table + (((gla >> shift) & ((1UL << bits) - 1)) * (ulong)bytes);
                if (l == levels.Length - 1)
                {
                    Write(slot, gpa | Flags, bytes);
                    return;
                }

                if (!_tables.TryGetValue(slot, out ulong child))
                {
                    child = _nextTableGfn++ << PageBits;
                    _tables[slot] = child;
                    // A PAE PDPTE has no R/W, U/S, A or D (those bits are reserved there): P only.
                    Write(slot, child | (mode == GuestPagingMode.Pae && l == 0 ? 1UL : Flags), bytes);
                }

                table = child;
            }
        }

        private void Write(ulong gpa, ulong value, int bytes)
        {
            ulong hpa = ((RamMfn + (gpa >> PageBits)) << PageBits) | (gpa & 0xFFF & ~7UL);
            if (bytes == 8)
            {
                Memory.WriteUInt64(hpa, value);
                return;
            }

            int half = (int)(gpa & 4) * 8;
            ulong quad = Memory.ReadUInt64(hpa);
            Memory.WriteUInt64(hpa, (quad & ~(0xFFFF_FFFFUL << half)) | (value << half));
        }
    }
}
