// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Testing;
using FastEpt.Tests.Guest;

namespace FastEpt.Tests.Emulation
{
    /// <summary>
    /// A small long-mode guest for emulation tests: 1 MiB of RAM at GFNs 0..0xFF (frame = RamMfn +
    /// GFN), page tables at GFNs 0x10..0x13 mapping linear pages 0..511 of the first 2 MiB through
    /// one page table, each to a GFN chosen with <see cref="MapLinear"/> (A/D preset).
    /// </summary>
    internal sealed class ScenarioGuest : IDisposable
    {
        public const ulong Pml4Gfn = 0x10, PdptGfn = 0x11, PdGfn = 0x12, PtGfn = 0x13;
        public const ulong RamPages = 0x100;

        private const ulong TableFlags = Pte.Present | Pte.Writable | Pte.User | Pte.Accessed;

        private readonly GuestPageTableBuilder _tables;

        public ScenarioGuest(int altViews = 0)
        {
            Memory = new HostMemory(0x400L * 4096);
            Domain = new Domain(Memory, new DomainOptions { AltViews = altViews });
            RamMfn = Memory.AllocateFrames((long)RamPages);
            for (ulong g = 0; g < RamPages; g++)
            {
                Domain.HostP2m.SetEntry(g, RamMfn + g, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
            }

            // PML4, PDPT, PD and the one page table, linked at index 0: linear [0, 2 MiB).
            _tables = new GuestPageTableBuilder(Memory, gfn => RamMfn + gfn, levels: 4, firstTableGfn: Pml4Gfn, firstPageTableGfn: PtGfn);
            _tables.TableFor(0, level: 1, TableFlags);
            Cpu.Mode = GuestPagingMode.LongMode4;
            Cpu.Cr3 = _tables.Cr3;
        }

        public HostMemory Memory { get; }

        public Domain Domain { get; }

        public ulong RamMfn { get; }

        public Vcpu Cpu => Domain.Vcpus[0];

        /// <summary>Maps linear page <paramref name="page"/> (0..511) to <paramref name="gfn"/>, writable, user, A and D set.</summary>
        public void MapLinear(ulong page, ulong gfn, ulong extra = Pte.Writable | Pte.User)
            => _tables.Map(page << 12, gfn << 12, PageOrder.Size4K, Pte.Present | Pte.Accessed | Pte.Dirty | extra, TableFlags);

        public void Unmap(ulong page) => _tables.Unmap(page << 12, PageOrder.Size4K);

        public Span<byte> Ram(ulong gfn) => Memory.Frame(RamMfn + gfn);

        public void Dispose()
        {
            Domain.Dispose();
            Memory.Dispose();
        }
    }

    /// <summary>
    /// A device that records every request and keeps its bytes; it can answer Retry the first time
    /// it sees each request (an asynchronous device model) or for the next N calls.
    /// </summary>
    internal sealed class ScenarioDevice : IMmioDevice
    {
        private readonly Dictionary<ulong, byte> _bytes = new();
        private (ulong Gpa, int Size, bool Write, ulong Value)? _deferred;

        public List<(ulong Gpa, int Size, bool Write, ulong Value)> Completed { get; } = new();

        public int Attempts { get; private set; }

        /// <summary>Answer Retry to each new request once, then complete it when it comes again.</summary>
        public bool Asynchronous { get; set; }

        public byte this[ulong gpa]
        {
            get => _bytes.TryGetValue(gpa, out byte b) ? b : (byte)(gpa * 7 + 3);
            set => _bytes[gpa] = value;
        }

        public MmioResult Read(ulong gpa, int size, out ulong value)
        {
            value = 0;
            if (Defer(gpa, size, false, 0))
            {
                return MmioResult.Retry;
            }

            for (int i = 0; i < size; i++)
            {
                value |= (ulong)this[gpa + (ulong)i] << (8 * i);
            }

            Completed.Add((gpa, size, false, value));
            return MmioResult.Okay;
        }

        public MmioResult Write(ulong gpa, int size, ulong value)
        {
            if (Defer(gpa, size, true, value))
            {
                return MmioResult.Retry;
            }

            for (int i = 0; i < size; i++)
            {
                this[gpa + (ulong)i] = (byte)(value >> (8 * i));
            }

            Completed.Add((gpa, size, true, value));
            return MmioResult.Okay;
        }

        private bool Defer(ulong gpa, int size, bool write, ulong value)
        {
            Attempts++;
            Assert.True(size is 1 or 2 or 4 or 8, $"device access of {size} bytes");
            Assert.True((gpa & 0xFFF) + (ulong)size <= 0x1000, "a device access never crosses a page");
            if (!Asynchronous)
            {
                return false;
            }

            var request = (gpa, size, write, value);
            if (_deferred == request)
            {
                _deferred = null;
                return false;
            }

            _deferred = request;
            return true;
        }
    }
}
