// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.P2mTests
{
    /// <summary>
    /// Random sequences of writes, global and range type changes (interrupted at random points
    /// and resumed), misconfiguration resolution and relinquishing, against a per-GFN reference
    /// model of docs/model/p2m.md §3.7: each GFN has a stored type and a "marked" flag; a marked changeable
    /// GFN reads as log-dirty or RamRw by the log-dirty state; resolving a marked GFN settles its
    /// whole 512-GFN block; a write settles the block of its GFN first, then stores unmarked.
    /// </summary>
    public sealed class RecalcModelTests
    {
        private const int Window = 4096;

        private struct Gfn
        {
            public bool Mapped;
            public ulong Mfn;
            public P2mType Type;
            public P2mAccess Access;
            public bool Marked;
        }

        private sealed class Model
        {
            public readonly Gfn[] G = new Gfn[Window];
            public bool Global;
            public readonly List<(ulong First, ulong Last)> Ranges = new();

            public bool LogDirty(ulong gfn) => Global || Ranges.Any(r => r.First <= gfn && gfn <= r.Last);

            public P2mType Effective(int gfn)
            {
                Gfn g = G[gfn];
                return g.Marked && g.Type is P2mType.RamRw or P2mType.RamLogDirty
                    ? (LogDirty((ulong)gfn) ? P2mType.RamLogDirty : P2mType.RamRw)
                    : g.Type;
            }

            public void Resolve(int gfn)
            {
                if (!G[gfn].Mapped || !G[gfn].Marked)
                {
                    return;
                }

                int block = gfn & ~511;
                for (int i = block; i < block + 512; i++)
                {
                    if (G[i].Mapped && G[i].Marked)
                    {
                        G[i].Type = Effective(i);
                        G[i].Marked = false;
                    }
                }
            }

            public void Set(int gfn, int count, ulong mfn, P2mType type, P2mAccess access)
            {
                Resolve(gfn);
                for (int i = 0; i < count; i++)
                {
                    G[gfn + i] = new Gfn { Mapped = true, Mfn = mfn + (ulong)i, Type = type, Access = access };
                }
            }

            public void UpdateRanges(ulong first, ulong last, bool add)
            {
                var keep = new List<(ulong, ulong)>();
                foreach ((ulong f, ulong l) in Ranges)
                {
                    if (l < first || f > last)
                    {
                        keep.Add((f, l));
                        continue;
                    }

                    if (f < first)
                    {
                        keep.Add((f, first - 1));
                    }

                    if (l > last)
                    {
                        keep.Add((last + 1, l));
                    }
                }

                if (add)
                {
                    keep.Add((first, last));
                }

                Ranges.Clear();
                Ranges.AddRange(keep);
            }
        }

        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(3)]
        public void RandomOperations_MatchTheModel(int seed)
        {
            var rng = new Random(seed);
            using var memory = new HostMemory(16384L * 4096);
            using var p2m = new P2m(memory, new P2mOptions { Support1G = false });
            ulong ram = (memory.AllocateFrames(Window + 512) + 511) & ~511UL;
            var m = new Model();
            var log = new List<string>();
            for (int op = 0; op < 2500; op++)
            {
                int kind = rng.Next(100);
                string what;
                if (kind < 45)
                {
                    bool big = rng.Next(4) == 0;
                    int gfn = big ? rng.Next(Window / 512) * 512 : rng.Next(Window);
                    P2mType type = rng.Next(4) == 0 ? P2mType.RamRo : P2mType.RamRw;
                    P2mAccess access = rng.Next(3) == 0 ? P2mAccess.RX : P2mAccess.RWX;
                    p2m.SetEntry((ulong)gfn, ram + (ulong)gfn, big ? PageOrder.Size2M : PageOrder.Size4K, type, access);
                    m.Set(gfn, big ? 512 : 1, ram + (ulong)gfn, type, access);
                    what = $"set 0x{gfn:X} {(big ? "2M" : "4K")} {type} {access}";
                }
                else if (kind < 53)
                {
                    bool on = rng.Next(2) == 0;
                    P2mType from = on ? P2mType.RamRw : P2mType.RamLogDirty, to = on ? P2mType.RamLogDirty : P2mType.RamRw;
                    p2m.ChangeTypeGlobal(from, to);
                    m.Global = on;
                    for (int i = 0; i < Window; i++)
                    {
                        m.G[i].Marked |= m.G[i].Mapped;
                    }

                    what = $"global {to}";
                }
                else if (kind < 78)
                {
                    ulong first = (ulong)rng.Next(Window), last = Math.Min(Window - 1, first + (ulong)rng.Next(rng.Next(2) == 0 ? 40 : 1500));
                    bool lazy = rng.Next(3) != 0;
                    P2mType from = lazy ? (rng.Next(2) == 0 ? P2mType.RamRw : P2mType.RamLogDirty) : P2mType.RamRw;
                    P2mType to = lazy ? (from == P2mType.RamRw ? P2mType.RamLogDirty : P2mType.RamRw) : P2mType.RamRo;
                    var budget = Preemption.After(rng.Next(6));
                    int restarts = 0;
                    while (p2m.ChangeTypeRange(first, last, from, to, ref budget) == Progress.Restart)
                    {
                        restarts++;
                        budget = Preemption.After(rng.Next(8));
                    }

                    if (lazy)
                    {
                        m.UpdateRanges(first, last, add: to == P2mType.RamLogDirty);
                        for (ulong g = first; g <= last; g++)
                        {
                            m.G[g].Marked |= m.G[g].Mapped;
                        }
                    }
                    else
                    {
                        for (ulong g = first; g <= last; g++)
                        {
                            m.Resolve((int)g);      // each entry's path is settled before its type is read
                            if (m.G[g].Mapped && m.Effective((int)g) == from)
                            {
                                Gfn cur = m.G[g];
                                m.Set((int)g, 1, cur.Mfn, to, cur.Access);
                            }
                        }
                    }

                    what = $"range 0x{first:X}..0x{last:X} {from}->{to} ({restarts} restarts)";
                }
                else if (kind < 98)
                {
                    int gfn = rng.Next(Window);
                    bool changed = p2m.ResolveMisconfig((ulong)gfn);
                    bool expected = m.G[gfn].Mapped && m.G[gfn].Marked;
                    m.Resolve(gfn);
                    what = $"resolve 0x{gfn:X}";
                    // A mark on the GFN must be found; marks on tables above a hole or an
                    // unmarked entry may be pushed down too (also "something changed"), which the
                    // per-GFN model cannot see.
                    Assert.True(changed || !expected, $"seed {seed} op {op}: {what} returned {changed}\n{string.Join("\n", log.TakeLast(8))}");
                }
                else
                {
                    var budget = Preemption.After(rng.Next(50));
                    while (p2m.Relinquish(ref budget) == Progress.Restart)
                    {
                        budget = Preemption.After(rng.Next(200));
                    }

                    Array.Clear(m.G);
                    what = "relinquish";
                }

                log.Add(what);
                bool full = op % 100 == 99;
                for (int n = 0; n < (full ? Window : 64); n++)
                {
                    int gfn = full ? n : rng.Next(Window);
                    Check(p2m, m, gfn, ram, () => $"seed {seed} op {op} ({what}), gfn 0x{gfn:X}\n{string.Join("\n", log.TakeLast(8))}");
                }
            }
        }

        // The raw entries on the walk to `gfn`, for failure messages.
        private static string Path(P2m p2m, ulong gfn)
        {
            var parts = new List<string>();
            ulong table = p2m.RootMfn;
            for (int level = p2m.Levels; level >= 1; level--)
            {
                ulong e = p2m.Memory.ReadUInt64((table << 12) + (((gfn >> (9 * (level - 1))) & 511) * 8));
                parts.Add($"L{level}=0x{e:X16}");
                if ((e & 7) == 0 || (e & 0x80) != 0 || level == 1)
                {
                    break;
                }

                table = (e & 0x000F_FFFF_FFFF_F000) >> 12;
            }

            return string.Join(" ", parts);
        }

        private static void Check(P2m p2m, Model m, int gfn, ulong ram, Func<string> ctx)
        {
            P2mEntry e = p2m.GetEntry((ulong)gfn);
            Gfn g = m.G[gfn];
            EptTranslation t = p2m.Translate((ulong)gfn << 12, AccessKind.Read);
            if (!g.Mapped)
            {
                // A hole under a marked table misconfigures before the walk reaches it, as on hardware.
                Assert.True(!e.IsMapped && t.Status is EptStatus.Violation or EptStatus.Misconfig, $"{ctx()}: expected a hole, got {e} / {t}");
                return;
            }

            P2mType type = m.Effective(gfn);
            if (e.Mfn != g.Mfn || e.Type != type || e.Access != g.Access)
            {
                Assert.Fail($"{ctx()}: GetEntry {e}, model mfn 0x{g.Mfn:X} {type} {g.Access} (stored {g.Type}, marked {g.Marked})");
            }

            EptStatus want = g.Marked ? EptStatus.Misconfig : EptStatus.Ok;
            if (t.Status != want || (want == EptStatus.Ok && t.Hpa != g.Mfn << 12))
            {
                Assert.Fail($"{ctx()}: ranges {string.Join(",", m.Ranges.Select(r => $"{r.First:X}-{r.Last:X}"))} Translate {t}, model marked={g.Marked} mfn 0x{g.Mfn:X}; path {Path(p2m, (ulong)gfn)}");
            }
        }
    }
}
