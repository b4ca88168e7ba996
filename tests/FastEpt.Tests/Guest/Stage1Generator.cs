// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Text;

namespace FastEpt.Tests.Guest
{
    /// <summary>
    /// Writes random stage-1 walks into guest RAM and into a dictionary model at once (the
    /// model is what <see cref="ReferenceStage1Walker"/> reads and updates).
    /// </summary>
    internal sealed class Stage1Generator
    {
        private const ulong PoolBase = 0x10_0000;

        private static readonly PageFaultErrorCode[] s_accesses =
        [
            PageFaultErrorCode.None,
            PageFaultErrorCode.Write,
            PageFaultErrorCode.InstructionFetch,
            PageFaultErrorCode.User,
            PageFaultErrorCode.User | PageFaultErrorCode.Write,
            PageFaultErrorCode.User | PageFaultErrorCode.InstructionFetch,
        ];

        private readonly Random _rng;
        private readonly IdentityRam _ram;
        private readonly int _maxPhys;
        private readonly ulong _leafLimit;
        private readonly int _poolFrames;
        private readonly Dictionary<ulong, ulong> _original = new();

        /// <param name="leafLimit">Leaves map pages below this guest-physical address.</param>
        /// <param name="poolFrames">Table frames to draw from (few: tables alias often).</param>
        public Stage1Generator(Random rng, IdentityRam ram, int maxPhys, ulong leafLimit, int poolFrames)
        {
            _rng = rng;
            _ram = ram;
            _maxPhys = maxPhys;
            _leafLimit = leafLimit;
            _poolFrames = poolFrames;
        }

        /// <summary>The guest memory the reference sees: every slot written, updated by its A/D writes.</summary>
        public Dictionary<ulong, ulong> Model { get; } = new();

        public ulong RandomPoolFrame() => PoolBase + ((ulong)(uint)_rng.Next(_poolFrames) << 12);

        /// <summary>A fresh random case (call <see cref="Clear"/> after it).</summary>
        public Stage1Shape Next()
        {
            int levels = _rng.Next(2) == 0 ? 4 : 5;
            ulong cr3 = RandomPoolFrame() | (ulong)(uint)_rng.Next(4096);
            ulong gla = GrowFrom(levels, cr3, out bool aliased);
            if (_rng.Next(40) == 0)
            {
                // Not canonical: flip one bit above the linear-address width.
                int vaBits = levels == 5 ? 57 : 48;
                gla ^= 1UL << _rng.Next(vaBits, 64);
            }

            PageFaultErrorCode pfec = s_accesses[_rng.Next(s_accesses.Length)];
            if (_rng.Next(2) == 0)
            {
                pfec |= PageFaultErrorCode.Present;
            }

            return new Stage1Shape(levels, _rng.Next(2) == 0, _rng.Next(4) != 0, cr3, gla, pfec, aliased);
        }

        /// <summary>Adds one more random walk under <paramref name="cr3"/> (keeping what is there) and returns its GLA.</summary>
        public ulong Grow(int levels, ulong cr3) => GrowFrom(levels, cr3, out _);

        /// <summary>A canonical GLA with random indices.</summary>
        public ulong RandomGla(int levels)
        {
            ulong gla = (ulong)(uint)_rng.Next(4096);
            for (int level = 1; level <= levels; level++)
            {
                gla |= RandomIndex() << (12 + (9 * (level - 1)));
            }

            return Canonical(gla, levels);
        }

        public void Clear()
        {
            foreach (ulong gpa in _original.Keys)
            {
                _ram.Write(gpa, 0);
            }

            _original.Clear();
            Model.Clear();
        }

        /// <summary>Puts every written slot back to the value the generator wrote.</summary>
        public void RestoreMemory()
        {
            foreach ((ulong gpa, ulong value) in _original)
            {
                _ram.Write(gpa, value);
                Model[gpa] = value;
            }
        }

        public Dictionary<ulong, ulong> SnapshotMemory() => _original.Keys.ToDictionary(g => g, _ram.Read);

        /// <summary>null when guest RAM holds what the model holds at every written slot.</summary>
        public string? CompareMemory()
        {
            foreach ((ulong gpa, ulong value) in Model)
            {
                ulong actual = _ram.Read(gpa);
                if (actual != value)
                {
                    return $"guest RAM at 0x{gpa:X} is 0x{actual:X}, the reference has 0x{value:X}";
                }
            }

            return null;
        }

        public bool PoolIsZero()
        {
            for (ulong off = 0; off < (ulong)_poolFrames * 4096; off += 8)
            {
                if (_ram.Read(PoolBase + off) != 0)
                {
                    return false;
                }
            }

            return true;
        }

        public string Describe(Stage1Shape s)
        {
            StringBuilder sb = new();
            sb.Append($"  levels={s.Levels} wp={s.Wp} nxe={s.Nxe} cr3=0x{s.Cr3:X} gla=0x{s.Gla:X} pfec={s.Pfec}\n");
            foreach ((ulong gpa, ulong value) in _original.OrderBy(kv => kv.Key))
            {
                sb.Append($"  [0x{gpa:X}] = 0x{value:X16} (now 0x{_ram.Read(gpa):X16}, model 0x{Model[gpa]:X16})\n");
            }

            return sb.ToString();
        }

        private static ulong Canonical(ulong gla, int levels)
        {
            int vaBits = levels == 5 ? 57 : 48;
            return (gla & (1UL << (vaBits - 1))) != 0 ? gla | (ulong.MaxValue << vaBits) : gla;
        }

        private ulong RandomIndex() => _rng.Next(4) switch
        {
            0 => 0,
            1 => 511,
            2 => (ulong)(uint)_rng.Next(4),
            _ => (ulong)(uint)_rng.Next(512),
        };

        private void Write(ulong gpa, ulong value)
        {
            _ram.Write(gpa, value);
            Model[gpa] = value;
            _original[gpa] = value;
        }

        private ulong GrowFrom(int levels, ulong cr3, out bool aliased)
        {
            ulong gla = (ulong)(uint)_rng.Next(4096);
            ulong table = cr3 & ~0xFFFUL;
            HashSet<ulong> slots = new();
            aliased = false;
            ulong index = RandomIndex();
            int level = levels;
            for (; level >= 1; level--)
            {
                // Now and then the same index as the level above: with a self-referencing entry
                // (below) that is the same slot again, as in a recursive page-table mapping.
                index = _rng.Next(4) == 0 ? index : RandomIndex();
                gla |= index << (12 + (9 * (level - 1)));
                ulong slot = table + (index * 8);
                bool leaf;
                ulong next;
                if (!slots.Add(slot))
                {
                    // A slot this walk already wrote: the walk reads that value again at this level.
                    aliased = true;
                    ulong again = Model[slot];
                    leaf = level == 1 || (level is 2 or 3 && (again & Pte.PageSize) != 0);
                    next = again & Pte.Bits(_maxPhys - 1, 12);
                }
                else
                {
                    ulong pte = RandomEntry(level, out leaf, out next);
                    if (!leaf && _rng.Next(8) == 0)
                    {
                        // Point the entry at its own table.
                        pte = (pte & ~next) | table;
                        next = table;
                    }

                    Write(slot, pte);
                }

                if (leaf)
                {
                    break;
                }

                table = next;
            }

            // Below a large leaf the index bits are page offset: random as well.
            for (int below = level - 1; below >= 1; below--)
            {
                gla |= (ulong)(uint)_rng.Next(512) << (12 + (9 * (below - 1)));
            }

            return Canonical(gla, levels);
        }

        private ulong RandomEntry(int level, out bool leaf, out ulong next)
        {
            ulong pte = 0;
            pte |= _rng.Next(100) < 92 ? Pte.Present : 0;
            pte |= _rng.Next(100) < 85 ? Pte.Writable : 0;
            pte |= _rng.Next(100) < 85 ? Pte.User : 0;
            pte |= _rng.Next(2) == 0 ? Pte.Accessed : 0;
            pte |= _rng.Next(2) == 0 ? Pte.Dirty : 0;
            pte |= (ulong)(uint)_rng.Next(16) << 8;                                      // 11:8 ignored (G, AVL)
            pte |= _rng.Next(4) == 0 ? (ulong)(uint)_rng.Next(1 << 11) << 52 : 0;        // 62:52 ignored
            pte |= _rng.Next(100) < 15 ? Pte.ExecuteDisable : 0;
            int psPercent = level switch { 1 => 50, 2 or 3 => 35, _ => 4 };
            pte |= _rng.Next(100) < psPercent ? Pte.PageSize : 0;
            leaf = level == 1 || (level is 2 or 3 && (pte & Pte.PageSize) != 0);
            if (leaf)
            {
                int shift = 12 + (9 * (level - 1));
                next = (ulong)_rng.NextInt64(0, (long)(_leafLimit >> shift)) << shift;
                if (level > 1 && _rng.Next(2) == 0)
                {
                    pte |= 1UL << 12;                                                 // PAT of a large page
                }
            }
            else
            {
                next = RandomPoolFrame();
            }

            pte |= next;

            // Reserved bits now and then: 51:MAXPHYADDR anywhere, 20:13 / 29:13 in large leaves.
            if (_maxPhys <= 51 && _rng.Next(100) < 4)
            {
                pte |= 1UL << _rng.Next(_maxPhys, 52);
            }

            if (leaf && level == 2 && _rng.Next(100) < 5)
            {
                pte |= 1UL << _rng.Next(13, 21);
            }

            if (leaf && level == 3 && _rng.Next(100) < 5)
            {
                pte |= 1UL << _rng.Next(13, 30);
            }

            return pte;
        }
    }
}
