// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.Guest
{
    /// <summary>
    /// Random stage-1 cases for one paging mode: registers, a linear address, the entries on its
    /// path (written into guest RAM and into the reference's copy at once), and an access. Table
    /// frames come from a small pool in one 2 MiB region so tables alias; entry addresses are a
    /// pool frame, a 2 MiB-aligned RAM address or any 4 KiB-aligned address below 4 GiB, and now
    /// and then one random high bit flips (reserved, ignored or address bits alike).
    /// </summary>
    internal sealed class PagingModeGenerator
    {
        public const ulong PoolBase = 0x40_0000;
        public const int PoolFrames = 6;

        private readonly Random _rng;
        private readonly IdentityRam _ram;
        private readonly GuestPagingMode _mode;
        private readonly List<ulong> _touched = new(16);

        public PagingModeGenerator(Random rng, IdentityRam ram, GuestPagingMode mode)
        {
            _rng = rng;
            _ram = ram;
            _mode = mode;
        }

        /// <summary>The reference's copy of guest memory (quadwords by aligned GPA).</summary>
        public Dictionary<ulong, ulong> Model { get; } = new();

        /// <summary>Quadwords written by the last <see cref="Next"/>.</summary>
        public IReadOnlyList<ulong> Touched => _touched;

        private bool Chance(int percent) => _rng.Next(100) < percent;

        private ulong PoolFrame() => PoolBase + ((ulong)_rng.Next(PoolFrames) << 12);

        public (PagingRegs Regs, ulong Gla, PageFaultErrorCode Access) Next()
        {
            _touched.Clear();
            bool ia32e = _mode is GuestPagingMode.LongMode4 or GuestPagingMode.LongMode5;
            PagingRegs r = new()
            {
                Mode = _mode,
                Wp = Chance(50), Nxe = Chance(60), Pse = Chance(70), Pge = Chance(50),
                Smep = Chance(40), Smap = Chance(40), Ac = Chance(50), Pke = Chance(40), Pks = Chance(40),
                Pkru = (uint)(_rng.Next() & _rng.Next() & _rng.Next()), Pkrs = (uint)(_rng.Next() & _rng.Next() & _rng.Next()),
            };

            ulong gla = _mode switch
            {
                GuestPagingMode.LongMode4 => Canonical(48),
                GuestPagingMode.LongMode5 => Canonical(57),
                _ => (ulong)_rng.NextInt64(1L << 32) | (Chance(5) ? (ulong)_rng.NextInt64() << 32 : 0),
            };

            // The path: (index shift, index bits, entry bytes) from the top table down.
            (int Shift, int Bits, int Bytes)[] path = _mode switch
            {
                GuestPagingMode.Paging32 => [(22, 10, 4), (12, 10, 4)],
                GuestPagingMode.Pae => [(21, 9, 8), (12, 9, 8)],
                GuestPagingMode.LongMode4 => [(39, 9, 8), (30, 9, 8), (21, 9, 8), (12, 9, 8)],
                _ => [(48, 9, 8), (39, 9, 8), (30, 9, 8), (21, 9, 8), (12, 9, 8)],
            };

            ulong table;
            if (_mode == GuestPagingMode.Pae)
            {
                ulong pdpt = PoolFrame() + ((ulong)_rng.Next(128) << 5);
                r.Cr3 = pdpt | ((ulong)_rng.Next(4) << 3);
                ulong selected = 0;
                for (int i = 0; i < 4; i++)
                {
                    ulong e = Chance(90) ? 1UL : 0UL;
                    e |= PoolFrame() | ((ulong)_rng.Next(4) << 3) | ((ulong)_rng.Next(8) << 9);
                    if (Chance(4))
                    {
                        e ^= 1UL << (1 + _rng.Next(63));
                    }

                    Write(pdpt + (ulong)(8 * i), e, 8);
                    selected = i == (int)((gla & 0xFFFF_FFFF) >> 30) ? e : selected;
                }

                table = selected & ~0xFFFUL & 0xF_FFFF_FFFF_FFFFUL;
            }
            else
            {
                table = PoolFrame();
                r.Cr3 = table | (uint)_rng.Next(4096);
            }

            for (int level = 0; level < path.Length; level++)
            {
                (int shift, int bits, int bytes) = path[level];
                ulong slot = table + (((gla >> shift) & ((1UL << bits) - 1)) * (ulong)bytes);
                if (slot >= IdentityRam.RamBytes)
                {
                    break;      // outside guest RAM: the walk's EPT read fails there
                }

                ulong e = Entry(bytes, ia32e, path.Length - level);
                Write(slot, e, bytes);
                table = bytes == 4 ? e & 0xFFFF_F000 : e & 0xF_FFFF_FFFF_F000;
            }

            PageFaultErrorCode access = _rng.Next(8) switch
            {
                0 => PageFaultErrorCode.None,
                1 => PageFaultErrorCode.Write,
                2 => PageFaultErrorCode.InstructionFetch,
                3 => PageFaultErrorCode.User,
                4 => PageFaultErrorCode.User | PageFaultErrorCode.Write,
                5 => PageFaultErrorCode.User | PageFaultErrorCode.InstructionFetch,
                6 => PageFaultErrorCode.ImplicitSupervisor,
                _ => PageFaultErrorCode.ImplicitSupervisor | PageFaultErrorCode.Write,
            };
            return (r, gla, access);
        }

        private ulong Canonical(int width)
        {
            ulong v = (ulong)_rng.NextInt64() & ((1UL << width) - 1);
            v = unchecked((ulong)((long)(v << (64 - width)) >> (64 - width)));
            return Chance(3) ? v ^ (1UL << (width + _rng.Next(64 - width))) : v;
        }

        // An entry for SDM level `level` (1 = PTE): PS mostly where it maps a page (rarely where it is
        // reserved), addresses aligned for the page size that level may map now and then.
        private ulong Entry(int bytes, bool ia32e, int level)
        {
            int pick = _rng.Next(100);
            ulong addr = pick < 45 && level != 1 ? PoolFrame()
                         : pick < 55 ? (ulong)_rng.Next(2) << 30
                         : pick < 80 ? (ulong)_rng.Next(1024) << 21
                         : (ulong)_rng.Next(1 << 20) << 12;
            int psChance = level <= 2 || (level == 3 && ia32e) ? 35 : 3;
            ulong e = addr | (Chance(94) ? 1UL : 0) | (Chance(70) ? 2UL : 0) | (Chance(70) ? 4UL : 0)
                      | ((ulong)_rng.Next(4) << 3) | (Chance(50) ? 1UL << 5 : 0) | (Chance(50) ? 1UL << 6 : 0)
                      | (Chance(psChance) ? 1UL << 7 : 0) | (Chance(30) ? 1UL << 8 : 0) | ((ulong)_rng.Next(8) << 9);
            if (bytes == 4)
            {
                if (Chance(30))
                {
                    e = (e & ~0x1F_E000UL) | ((ulong)_rng.Next(256) << 13);     // PSE-36 high bits (or PAT and address bits)
                }

                if (Chance(5))
                {
                    e ^= 1UL << (12 + _rng.Next(20));
                }

                return e & 0xFFFF_FFFF;
            }

            e |= Chance(15) ? 1UL << 63 : 0;
            if (ia32e)
            {
                e |= (ulong)_rng.Next(16) << 59;
            }

            if (Chance(5))
            {
                e ^= 1UL << (7 + _rng.Next(57));
            }

            return e;
        }

        private void Write(ulong gpa, ulong value, int bytes)
        {
            ulong q = gpa & ~7UL;
            ulong quad = Model.GetValueOrDefault(q);
            quad = bytes == 8 ? value : (gpa & 4) != 0 ? (quad & 0xFFFF_FFFF) | (value << 32) : (quad & ~0xFFFF_FFFFUL) | value;
            Model[q] = quad;
            _ram.Write(q, quad);
            _touched.Add(q);
        }

        /// <summary>The first quadword where guest RAM and the model differ among <paramref name="quads"/>, or null.</summary>
        public string? Compare(IEnumerable<ulong> quads)
        {
            foreach (ulong q in quads)
            {
                ulong model = Model.GetValueOrDefault(q), real = _ram.Read(q);
                if (model != real)
                {
                    return $"guest memory at 0x{q:X}: reference 0x{model:X}, FastEpt 0x{real:X}";
                }
            }

            return null;
        }

        /// <summary>Every quadword of the pool.</summary>
        public static IEnumerable<ulong> PoolQuads()
        {
            for (ulong q = PoolBase; q < PoolBase + ((ulong)PoolFrames << 12); q += 8)
            {
                yield return q;
            }
        }
    }
}
