// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Testing;
using static FastEpt.Tests.Tlb.LinearTlbGuest;

namespace FastEpt.Tests.Tlb
{
    /// <summary>
    /// A randomized model test of the combined TLB: random guest leaf writes (present, R/W, U/S,
    /// XD, G, target), p2m writes (access restricted or widened, frame remapped), every
    /// invalidation the SDM names (INVLPG, INVPCID 0-3, INVVPID 0-3, MOV to CR3 with and
    /// without no-flush across three PCIDs, a paging control change, a full flush) and accesses
    /// of every class. The model keeps, per (PCID, linear page), every translation (host page,
    /// access class) that existed since the last invalidation that must have removed it, and
    /// the same for global leaves per page. Each answer of the TLB is checked: a failure must
    /// be what the live tables give (a miss walks); a success must be the live translation or
    /// one in the history, so the TLB is stale only where Intel SDM Vol. 3A 4.10.4 lets it be,
    /// never after the flush that must remove it, never with rights some translation did not
    /// have. p2m writes are INVEPT (the generation): the history is reset at once.
    /// </summary>
    public sealed class LinearTlbModelTests
    {
        private const int Steps = 6000;
        private const int LargeFragments = 4;       // linear 4K fragments of the 2M page used
        private static readonly PageFaultErrorCode[] s_classes =
        [
            PageFaultErrorCode.None, PageFaultErrorCode.Write, PageFaultErrorCode.User,
            PageFaultErrorCode.User | PageFaultErrorCode.Write, PageFaultErrorCode.InstructionFetch,
            PageFaultErrorCode.User | PageFaultErrorCode.InstructionFetch,
        ];

        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(3)]
        [InlineData(4)]
        public void RandomOperations_TlbStaleOnlyWhereTheSdmAllows(int seed)
        {
            using var g = new LinearTlbGuest();
            var model = new Model(g, new Random(seed));
            model.Run(Steps);
            Assert.True(model.Hits > Steps / 10, $"only {model.Hits} hits: the test would not exercise the TLB");
            Assert.True(model.StaleAnswers > 0, "no stale answer: the test would not exercise the history");
        }

        private sealed class Model
        {
            private const int Pcids = 3;
            private readonly LinearTlbGuest _g;
            private readonly Random _rng;
            private readonly ulong[] _leaf = new ulong[Pages];         // 4K leaves as written (A/D ignored by the rules)
            private ulong _largeLeaf;                                    // the 2M leaf's flags and target
            private readonly P2mAccess[] _access = new P2mAccess[DataGfns];
            private readonly ulong[] _mfn = new ulong[DataGfns];
            private readonly HashSet<(ulong Hpa, int Class)>[,] _history = new HashSet<(ulong, int)>[Pcids, Pages + LargeFragments];
            private readonly HashSet<(ulong Hpa, int Class)>[] _globalHistory = new HashSet<(ulong, int)>[Pages + LargeFragments];
            private readonly List<string> _log = new();
            private int _pcid;

            public Model(LinearTlbGuest g, Random rng)
            {
                _g = g;
                _rng = rng;
                for (int i = 0; i < Pages; i++)
                {
                    _leaf[i] = ((FirstDataGfn + (ulong)i) << 12) | Rwu;
                }

                _largeLeaf = LargeGpa | Rwu;
                for (ulong d = 0; d < DataGfns; d++)
                {
                    _access[d] = P2mAccess.RWX;
                    _mfn[d] = g.RamMfn + FirstDataGfn + d;
                }

                for (int p = 0; p < Slots; p++)
                {
                    _globalHistory[p] = new();
                    for (int c = 0; c < Pcids; c++)
                    {
                        _history[c, p] = new();
                    }
                }

                g.Tlb.LoadCr3(0, noFlush: true);
                Reset(_ => true, _ => true, globals: true);
            }

            public long Hits { get; private set; }

            public long StaleAnswers { get; private set; }

            private static int Slots => Pages + LargeFragments;

            public void Run(int steps)
            {
                for (int step = 0; step < steps; step++)
                {
                    int op = _rng.Next(1000);
                    if (op < 880)
                    {
                        Access();
                    }
                    else if (op < 940)
                    {
                        WriteLeaf();
                    }
                    else if (op < 950)
                    {
                        WriteP2m();
                    }
                    else if (op < 970)
                    {
                        LoadCr3();
                    }
                    else
                    {
                        Flush();
                    }
                }
            }

            private static ulong GlaOf(int slot)
                => slot < Pages ? PageGla(slot) : LargeBase + ((ulong)(slot - Pages) * 0x7_3000);

            // The live translation of a slot for an access class, from the model's state (the
            // rules of SDM 4.6 with WP = NXE = 1, then the EPT access of the final GFN).
            private (bool Ok, ulong Hpa, bool Global) Live(int slot, PageFaultErrorCode pfec)
            {
                ulong leaf = slot < Pages ? _leaf[slot] : _largeLeaf;
                ulong gpa = slot < Pages ? leaf & 0x000F_FFFF_FFFF_F000 : (leaf & 0x000F_FFFF_FFE0_0000) + (GlaOf(slot) & 0x1F_F000);
                bool allowed = (leaf & GuestPageTableBuilder.Present) != 0
                               && ((pfec & PageFaultErrorCode.Write) == 0 || (leaf & GuestPageTableBuilder.Writable) != 0)
                               && ((pfec & PageFaultErrorCode.User) == 0 || (leaf & GuestPageTableBuilder.User) != 0)
                               && ((pfec & PageFaultErrorCode.InstructionFetch) == 0 || (leaf & Xd) == 0);
                ulong gfn = gpa >> 12;
                ulong mfn = _g.RamMfn + gfn;
                P2mAccess need = (pfec & PageFaultErrorCode.InstructionFetch) != 0 ? P2mAccess.X
                                 : (pfec & PageFaultErrorCode.Write) != 0 ? P2mAccess.W : P2mAccess.R;
                if (gfn - FirstDataGfn < DataGfns)
                {
                    allowed &= (_access[gfn - FirstDataGfn] & need) != 0;
                    mfn = _mfn[gfn - FirstDataGfn];
                }

                return (allowed, mfn << 12, (leaf & Global) != 0);
            }

            // Adds every live translation of the slots chosen to the histories (each PCID's, and
            // the global one for global leaves): called after every change of state.
            private void Record()
            {
                for (int s = 0; s < Slots; s++)
                {
                    for (int k = 0; k < s_classes.Length; k++)
                    {
                        (bool ok, ulong hpa, bool global) = Live(s, s_classes[k]);
                        if (!ok)
                        {
                            continue;
                        }

                        for (int c = 0; c < Pcids; c++)
                        {
                            _history[c, s].Add((hpa, k));
                        }

                        if (global)
                        {
                            _globalHistory[s].Add((hpa, k));
                        }
                    }
                }
            }

            // An invalidation: the histories it covers start again from the live state.
            private void Reset(Func<int, bool> pcid, Func<int, bool> slot, bool globals)
            {
                for (int s = 0; s < Slots; s++)
                {
                    if (!slot(s))
                    {
                        continue;
                    }

                    for (int c = 0; c < Pcids; c++)
                    {
                        if (pcid(c))
                        {
                            _history[c, s].Clear();
                        }
                    }

                    if (globals)
                    {
                        _globalHistory[s].Clear();
                    }
                }

                Record();
            }

            // The slots an invalidation of `gla`'s stage-1 page covers: the page, or every
            // fragment of the 2M page.
            private static Func<int, bool> PageOf(int slot) => s => slot < Pages ? s == slot : s >= Pages;

            private void Access()
            {
                int slot = _rng.Next(Slots);
                int k = _rng.Next(3) == 0 ? _rng.Next(s_classes.Length) : _rng.Next(2);     // mostly supervisor reads and writes
                ulong offset = (ulong)_rng.Next(512) * 8;
                ulong gla = GlaOf(slot) + offset;
                long misses = _g.Tlb.Misses;
                GuestTranslation t = _g.Tlb.Translate(gla, s_classes[k]);
                (bool ok, ulong hpa, _) = Live(slot, s_classes[k]);
                Hits += _g.Tlb.Misses == misses ? 1 : 0;
                _log.Add($"access slot {slot} class {s_classes[k]} pcid {_pcid}: {t.Status} 0x{t.Hpa:X} (live {ok} 0x{hpa:X})");
                if (t.Status != GuestStatus.Ok)
                {
                    Check(!ok, "the TLB failed an access the live tables allow");
                    return;
                }

                ulong page = t.Hpa & ~0xFFFUL;
                Check((t.Hpa & 0xFFF) == (gla & 0xFFF), "the offset is lost");
                StaleAnswers += ok && page == hpa ? 0 : 1;
                Check((ok && page == hpa) || _history[_pcid, slot].Contains((page, k)) || _globalHistory[slot].Contains((page, k)),
                      "the TLB answered a translation that did not exist since the invalidation that must remove it");
            }

            private void WriteLeaf()
            {
                int slot = _rng.Next(Pages + 1);
                ulong flags = (_rng.Next(10) != 0 ? GuestPageTableBuilder.Present : 0)
                              | (_rng.Next(2) == 0 ? GuestPageTableBuilder.Writable : 0)
                              | (_rng.Next(2) == 0 ? GuestPageTableBuilder.User : 0)
                              | (_rng.Next(5) == 0 ? Xd : 0)
                              | (_rng.Next(4) == 0 ? Global : 0);
                if (slot == Pages)
                {
                    _largeLeaf = (_rng.Next(2) == 0 ? LargeGpa : 0) | flags;
                    _g.Tables.Map(LargeBase, _largeLeaf & 0x000F_FFFF_FFE0_0000, PageOrder.Size2M, flags, TableFlags);
                }
                else
                {
                    ulong gfn = FirstDataGfn + (ulong)_rng.Next((int)DataGfns);
                    _leaf[slot] = (gfn << 12) | flags;
                    _g.MapPage(slot, gfn, flags);
                }

                _log.Add($"leaf {slot} = 0x{(slot == Pages ? _largeLeaf : _leaf[slot]):X}");
                Record();       // no invalidation: the old translation may still be answered
            }

            private void WriteP2m()
            {
                int d = _rng.Next((int)DataGfns);
                P2mAccess[] choices = [P2mAccess.R, P2mAccess.RW, P2mAccess.RX, P2mAccess.RWX, P2mAccess.X];
                (P2mAccess oldAccess, ulong oldMfn) = (_access[d], _mfn[d]);
                _access[d] = choices[_rng.Next(choices.Length)];
                _mfn[d] = _g.RamMfn + (_rng.Next(2) == 0 ? FirstDataGfn + (ulong)d : 0x80 + (ulong)d);
                _g.Domain.HostP2m.SetEntry(FirstDataGfn + (ulong)d, _mfn[d], PageOrder.Size4K, P2mType.RamRw, _access[d]);
                _log.Add($"p2m gfn 0x{FirstDataGfn + (ulong)d:X} -> 0x{_mfn[d]:X} {_access[d]} (was 0x{oldMfn:X} {oldAccess})");
                if (oldAccess != _access[d] || oldMfn != _mfn[d])
                {
                    Reset(_ => true, _ => true, globals: true);     // a present entry replaced: INVEPT, through the generation
                }
                else
                {
                    Record();                                       // the same entry: nothing to invalidate
                }
            }

            private void LoadCr3()
            {
                _pcid = _rng.Next(Pcids);
                bool noFlush = _rng.Next(2) == 0;
                _g.Tlb.LoadCr3((ushort)_pcid, noFlush);
                _log.Add($"cr3 pcid {_pcid} noflush {noFlush}");
                if (!noFlush)
                {
                    int p = _pcid;
                    Reset(c => c == p, _ => true, globals: false);
                }
            }

            private void Flush()
            {
                int slot = _rng.Next(Slots);
                ulong gla = GlaOf(slot) + (ulong)_rng.Next(4096);
                int q = _rng.Next(Pcids);
                int kind = _rng.Next(11);
                _log.Add($"flush {kind} slot {slot} pcid {q}");
                switch (kind)
                {
                    case 0:
                    case 1:
                        _g.Tlb.Invlpg(gla);
                        Reset(_ => true, PageOf(slot), globals: true);
                        break;
                    case 2:
                        _g.Tlb.Invpcid(InvpcidType.IndividualAddress, q, gla);
                        Reset(c => c == q, PageOf(slot), globals: false);
                        break;
                    case 3:
                        _g.Tlb.Invpcid(InvpcidType.SingleContext, q, 0);
                        Reset(c => c == q, _ => true, globals: false);
                        break;
                    case 4:
                        _g.Tlb.Invpcid(InvpcidType.AllContextIncludingGlobal, 0, 0);
                        Reset(_ => true, _ => true, globals: true);
                        break;
                    case 5:
                        _g.Tlb.Invpcid(InvpcidType.AllContext, 0, 0);
                        Reset(_ => true, _ => true, globals: false);
                        break;
                    case 6:
                        _g.Tlb.Invvpid(InvvpidType.IndividualAddress, gla);
                        Reset(_ => true, PageOf(slot), globals: true);
                        break;
                    case 7:
                        _g.Tlb.Invvpid(_rng.Next(2) == 0 ? InvvpidType.SingleContext : InvvpidType.AllContext, 0);
                        Reset(_ => true, _ => true, globals: true);
                        break;
                    case 8:
                        _g.Tlb.Invvpid(InvvpidType.SingleContextRetainingGlobals, 0);
                        Reset(_ => true, _ => true, globals: false);
                        break;
                    case 9:
                        _g.Tlb.PagingControlChanged((ushort)_pcid);
                        Reset(_ => true, _ => true, globals: true);
                        break;
                    default:
                        _g.Tlb.FlushAll();
                        Reset(_ => true, _ => true, globals: true);
                        break;
                }
            }

            private void Check(bool condition, string what)
            {
                if (!condition)
                {
                    Assert.Fail(what + "\nlast operations:\n" + string.Join("\n", _log.Skip(Math.Max(0, _log.Count - 25))));
                }
            }
        }
    }
}
