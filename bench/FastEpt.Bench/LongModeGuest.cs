// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Diagnostics;
using FastEpt.Testing;

namespace FastEpt.Bench
{
    /// <summary>
    /// What the guests of the 2D-walk and emulation benchmarks share: a one-vCPU
    /// <see cref="FastEpt.Domain"/> whose host p2m maps guest RAM with 4 KiB EPT leaves, GFN
    /// <c>g</c> backed by MFN <c>RamMfn + (g ^ scramble)</c> so that no HPA equals its GPA;
    /// 4-level long-mode guest page tables in that RAM, written by a
    /// <see cref="GuestPageTableBuilder"/>; and the vCPU in LongMode4 on them (WP = NXE = 1).
    /// </summary>
    public abstract class LongModeGuest : IDisposable
    {
        private const int PageBits = 12;
        private const ulong PageMask = (1UL << PageBits) - 1;

        private readonly Stopwatch _watch = Stopwatch.StartNew();
        private readonly ulong _scramble;
        private IReadOnlyList<ulong> _tableGfns = [];
        private bool _disposed;

        /// <summary>Reserves host memory and maps all of guest RAM, 4K RamRw RWX, in the host p2m.</summary>
        /// <param name="guestRamBytes">Guest RAM in bytes (a multiple of 4 KiB).</param>
        /// <param name="tableReserveBytes">Host memory for the EPT tables, besides guest RAM.</param>
        /// <param name="scramble">GFN <c>g</c> is backed by MFN <c>RamMfn + (g ^ scramble)</c>.</param>
        private protected LongModeGuest(long guestRamBytes, long tableReserveBytes, ulong scramble)
        {
            _scramble = scramble;
            Memory = new HostMemory(guestRamBytes + tableReserveBytes);
            try
            {
                Domain = new Domain(Memory, new DomainOptions { Vcpus = 1, AltViews = 0 });
                RamMfn = Memory.AllocateFrames(guestRamBytes >> PageBits);
                P2m p2m = Domain.HostP2m;
                for (ulong gfn = 0; gfn < (ulong)(guestRamBytes >> PageBits); gfn++)
                {
                    p2m.SetEntry(gfn, MfnOf(gfn), PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                }

                Vcpu = Domain.Vcpus[0];
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        /// <summary>The host memory under guest RAM and the EPT tables.</summary>
        public HostMemory Memory { get; }

        /// <summary>The domain; its host p2m (view 0) is the stage-2 mapping.</summary>
        public Domain Domain { get; } = null!;

        /// <summary>The vCPU whose paging state (LongMode4, CR3, WP, NXE) points at the guest tables.</summary>
        public Vcpu Vcpu { get; } = null!;

        /// <summary>First MFN of guest RAM.</summary>
        public ulong RamMfn { get; }

        /// <summary>How long building the guest took.</summary>
        public TimeSpan BuildTime { get; private set; }

        /// <summary>The HPA that the RAM GPA <paramref name="gpa"/> maps to, from the layout (not the EPT).</summary>
        public ulong ExpectedHpa(ulong gpa) => (MfnOf(gpa >> PageBits) << PageBits) | (gpa & PageMask);

        /// <summary>Disposes the domain, then the host memory.</summary>
        public void Dispose()
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            Domain?.Dispose();
            Memory.Dispose();
        }

        /// <summary>The MFN behind guest frame <paramref name="gfn"/>.</summary>
        private protected ulong MfnOf(ulong gfn) => RamMfn + (gfn ^ _scramble);

        /// <summary>
        /// Writes the guest page tables with <paramref name="map"/> (upper tables from
        /// <paramref name="firstTableGfn"/>, the root first; page tables from
        /// <paramref name="firstPageTableGfn"/>), points the vCPU at them and records
        /// <see cref="BuildTime"/>.
        /// </summary>
        private protected void BuildTables(ulong firstTableGfn, ulong firstPageTableGfn, Action<GuestPageTableBuilder> map)
        {
            GuestPageTableBuilder tables = new(Memory, MfnOf, levels: 4, firstTableGfn, firstPageTableGfn);
            map(tables);
            _tableGfns = tables.TableGfns;
            Vcpu.Mode = GuestPagingMode.LongMode4;
            Vcpu.Cr3 = tables.Cr3;
            Vcpu.Wp = true;
            Vcpu.Nxe = true;
            BuildTime = _watch.Elapsed;
        }

        /// <summary>A position-sensitive hash of every guest table's contents.</summary>
        private protected ulong TableChecksum()
        {
            ulong h = 14695981039346656037UL;
            foreach (ulong gfn in _tableGfns)
            {
                for (ulong s = 0; s < 512; s++)
                {
                    h = (h ^ Memory.ReadUInt64(ExpectedHpa((gfn << PageBits) | (s * 8)))) * 1099511628211UL;
                    h ^= h >> 29;
                }
            }

            return h;
        }
    }
}
