// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Collections.Concurrent;
using System.Diagnostics;

namespace FastEpt.Tests.P2mTests
{
    public sealed partial class P2mConcurrencyTests
    {
        private sealed class TortureWorld
        {
            private const int MaxViolationsKept = 20;
            private readonly ConcurrentQueue<string> _violations = new();
            private long _violationCount;
            private int _stop;

            public TortureWorld()
            {
                int lanes2M = TortureWriters * OwnedRegionsPerWriter + TortureWriters;
                GuestFrames = TortureWriters * Versions1G * (long)Pages1G + lanes2M * Versions2M * (long)Pages2M;
                Memory = new HostMemory((GuestFrames + TableHeadroomFrames) << 12) { PoisonFreedFrames = true };
                // The first allocation starts at frame 0, so every range carved below is aligned to its order.
                ulong next = Memory.AllocateFrames(GuestFrames);
                Assert.Equal(0UL, next);
                P2m = new P2m(Memory);

                var lanes = new List<Lane>();
                Lane NewLane(int versions, ulong pages)
                {
                    ulong[] bases = new ulong[versions];
                    for (int v = 0; v < versions; v++)
                    {
                        bases[v] = next;
                        next += pages;
                    }

                    var lane = new Lane(lanes.Count, bases);
                    lanes.Add(lane);
                    return lane;
                }

                // GFN layout, all under PML4 slot 0: 1G regions at 1 GiB, 2 GiB, ..., then a 1G gap
                // that is never mapped, then a 1G area of 2M regions separated by 2M gaps.
                var regions = new List<Region>();
                var gaps = new List<Region>();
                var gig = new Region[TortureWriters];
                for (int w = 0; w < TortureWriters; w++)
                {
                    gig[w] = new Region($"1G#{w}", (ulong)(1 + w) * Pages1G, 18, [NewLane(Versions1G, Pages1G)]);
                    regions.Add(gig[w]);
                }

                gaps.Add(new Region("gap 1G", (ulong)(1 + TortureWriters) * Pages1G, 18, []));
                ulong area2M = (ulong)(2 + TortureWriters) * Pages1G;
                var owned = new Region[TortureWriters * OwnedRegionsPerWriter];
                Region? contended = null;
                for (int i = 0; i <= owned.Length; i++)
                {
                    ulong first = area2M + (ulong)(2 * i) * Pages2M;
                    gaps.Add(new Region($"gap 2M#{i}", first + Pages2M, 9, []));
                    if (i < owned.Length)
                    {
                        owned[i] = new Region($"2M#{i}", first, 9, [NewLane(Versions2M, Pages2M)]);
                        regions.Add(owned[i]);
                    }
                    else
                    {
                        var contendedLanes = new Lane[TortureWriters];
                        for (int w = 0; w < TortureWriters; w++)
                        {
                            contendedLanes[w] = NewLane(Versions2M, Pages2M);
                        }

                        contended = new Region("2M contended", first, 9, contendedLanes);
                        regions.Add(contended);
                    }
                }

                Assert.Equal((ulong)GuestFrames, next);
                Contended = contended!;
                Lanes = lanes.ToArray();
                Regions = regions.ToArray();
                Gaps = gaps.ToArray();
                Gigabytes = gig;
                Owned2M = owned;
                Writers = new TortureWriter[TortureWriters];
                for (int w = 0; w < TortureWriters; w++)
                {
                    Writers[w] = new TortureWriter(this, w, owned[(w * OwnedRegionsPerWriter)..((w + 1) * OwnedRegionsPerWriter)], gig[w]);
                }

                Readers = new TortureReader[TortureReaders];
                for (int r = 0; r < TortureReaders; r++)
                {
                    Readers[r] = new TortureReader(this, r);
                }
            }

            public HostMemory Memory { get; }

            public P2m P2m { get; }

            public long GuestFrames { get; }

            public Lane[] Lanes { get; }

            public Region[] Regions { get; }            // mapped regions

            public Region[] Gaps { get; }               // never mapped

            public Region[] Gigabytes { get; }

            public Region[] Owned2M { get; }

            public Region Contended { get; }

            public TortureWriter[] Writers { get; }

            public TortureReader[] Readers { get; }

            public long Deadline { get; private set; }

            public long ViolationCount => Volatile.Read(ref _violationCount);

            public IEnumerable<string> Violations => _violations;

            public bool ShouldStop => Volatile.Read(ref _stop) != 0 || Stopwatch.GetTimestamp() >= Deadline;

            public void Start(TimeSpan duration) => Deadline = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);

            public void RequestStop() => Volatile.Write(ref _stop, 1);

            public void Report(string violation)
            {
                if (Interlocked.Increment(ref _violationCount) <= MaxViolationsKept)
                {
                    _violations.Enqueue(violation);
                }
            }

            // Root, the PDPT all regions share, the PD of the 2M area, then what the owned lanes know they hold.
            public long KnownTableFrames()
                => 3 + Owned2M.Count(r => r.Lanes[0].HasTable) + Gigabytes.Sum(r => r.Lanes[0].TableFrames);

            // Every thread has stopped: each GFN must now read exactly as its lane's last state says.
            public void VerifyQuiescent()
            {
                var rng = new Random(Seed);
                foreach (Region region in Regions.Concat(Gaps))
                {
                    var gfns = new List<ulong>();
                    if (region.Order == 9)
                    {
                        for (ulong i = 0; i < Pages2M; i++)
                        {
                            gfns.Add(region.FirstGfn + i);
                        }
                    }
                    else
                    {
                        for (int i = 0; i < 2048; i++)
                        {
                            gfns.Add(region.FirstGfn + (ulong)rng.NextInt64((long)Pages1G));
                        }

                        foreach (Lane lane in region.Lanes)
                        {
                            RegionState s = lane.Current;
                            foreach (ulong g in new[] { s.ExceptionGfn, s.HoleFirst, s.HoleFirst - 1, s.HoleLast, s.HoleLast + 1 })
                            {
                                if (g >= region.FirstGfn && g - region.FirstGfn < Pages1G)
                                {
                                    gfns.Add(g);
                                }
                            }
                        }
                    }

                    foreach (ulong gfn in gfns)
                    {
                        P2mEntry e = P2m.GetEntry(gfn);
                        ulong gpa = (gfn << 12) | 0x7F8;
                        EptTranslation t = P2m.Translate(gpa, AccessKind.Read);
                        bool entryOk = region.Lanes.Length == 0 && EntryMatches(e, default, false);
                        bool translationOk = region.Lanes.Length == 0 && TranslationMatches(t, default, gpa, AccessKind.Read, false);
                        foreach (Lane lane in region.Lanes)
                        {
                            Expectation x = Expect(region, lane, lane.Current, gfn);
                            entryOk |= EntryMatches(e, x, region.Contended);
                            translationOk |= TranslationMatches(t, x, gpa, AccessKind.Read, region.Contended);
                        }

                        if (!entryOk || !translationOk)
                        {
                            Report($"quiescent: gfn 0x{gfn:X} in {region.Name} reads {e} / {t}, expected "
                                   + string.Join(" or ", region.Lanes.Select(l => Expect(region, l, l.Current, gfn).ToString())));
                        }
                    }
                }
            }
        }

        private sealed class TortureWriter
        {
            private readonly TortureWorld _world;
            private readonly Random _rng;
            private readonly Region[] _owned;
            private readonly Region _gigabyte;
            private readonly Lane _contendedLane;

            public TortureWriter(TortureWorld world, int index, Region[] owned, Region gigabyte)
            {
                _world = world;
                _rng = new Random(Seed + 1 + index);
                _owned = owned;
                _gigabyte = gigabyte;
                _contendedLane = world.Contended.Lanes[index];
            }

            public long[] Ops2M { get; } = new long[(int)Op.Count];

            public long[] Ops1G { get; } = new long[(int)Op.Count];

            // Table frames this writer unlinked in the regions it alone writes (exact, since it
            // knows their structure); each was freed during the run or is still pending.
            public long RetiredFrames { get; private set; }

            public void Run()
            {
                while (!_world.ShouldStop)
                {
                    int pick = _rng.Next(100);
                    if (pick < 10)
                    {
                        Step1G(_gigabyte, _gigabyte.Lanes[0]);
                    }
                    else if (pick < 35)
                    {
                        Step2M(_world.Contended, _contendedLane, owned: false);
                    }
                    else
                    {
                        Region r = _owned[_rng.Next(_owned.Length)];
                        Step2M(r, r.Lanes[0], owned: true);
                    }
                }
            }

            private int OtherVersion(RegionState s, int versions) => s.Mapped ? (s.Version + 1 + _rng.Next(versions - 1)) % versions : _rng.Next(versions);

            private int AnyCombo() => _rng.Next(s_combos.Length);

            private void Step2M(Region region, Lane lane, bool owned)
            {
                P2m p2m = _world.P2m;
                RegionState cur = lane.Current;
                bool super = cur.Mapped && cur.Order == 9;
                bool table = cur.Mapped && cur.Order == 0;
                int roll = _rng.Next(100);
                Op op = super ? (roll < 40 ? Op.Split : roll < 75 ? Op.MapSuper : Op.RemoveSuper)
                    : table ? (roll < 45 ? Op.MapSuper : roll < 65 ? Op.Map4KAll : roll < 85 ? Op.Remove4KAll : Op.RemoveSuper)
                    : (roll < 50 ? Op.Map4KAll : roll < 90 ? Op.MapSuper : Op.RemoveSuper);
                ulong first = region.FirstGfn;
                switch (op)
                {
                    case Op.MapSuper:
                    {
                        int v = OtherVersion(cur, Versions2M);
                        int ci = AnyCombo();
                        Combo c = s_combos[ci];
                        lane.Begin(RegionState.Leaves(v, ci, 9));
                        p2m.SetEntry(first, lane.Bases[v], PageOrder.Size2M, c.Type, c.Access);
                        lane.End();
                        RetireTable(lane, owned);
                        break;
                    }

                    case Op.Split:
                    {
                        ulong e = first + (ulong)_rng.Next((int)Pages2M);
                        int ve = (cur.Version + 1) % Versions2M;
                        int ce = AnyCombo();
                        lane.Hint = e;
                        lane.Begin(cur with { Order = 0, ExceptionGfn = e, ExceptionVersion = ve, ExceptionCombo = ce });
                        p2m.SetEntry(e, lane.Bases[ve] + (e - first), PageOrder.Size4K, s_combos[ce].Type, s_combos[ce].Access);
                        lane.End();
                        lane.HasTable = true;
                        break;
                    }

                    case Op.Map4KAll:
                    {
                        int v = OtherVersion(cur, Versions2M);
                        int ci = AnyCombo();
                        Combo c = s_combos[ci];
                        bool down = _rng.Next(2) == 0;
                        lane.Begin(RegionState.Leaves(v, ci, 0));
                        for (ulong i = 0; i < Pages2M; i++)
                        {
                            ulong o = down ? Pages2M - 1 - i : i;
                            p2m.SetEntry(first + o, lane.Bases[v] + o, PageOrder.Size4K, c.Type, c.Access);
                        }

                        lane.End();
                        lane.HasTable = true;
                        break;
                    }

                    case Op.Remove4KAll:
                    {
                        lane.Begin(RegionState.Removed);
                        for (ulong i = 0; i < Pages2M; i++)
                        {
                            p2m.SetEntry(first + i, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.RWX);
                        }

                        lane.End();
                        break;
                    }

                    default:
                    {
                        op = Op.RemoveSuper;
                        lane.Begin(RegionState.Removed);
                        p2m.SetEntry(first, Mfn.Invalid, PageOrder.Size2M, P2mType.Invalid, P2mAccess.RWX);
                        lane.End();
                        RetireTable(lane, owned);
                        break;
                    }
                }

                Ops2M[(int)op]++;
            }

            private void RetireTable(Lane lane, bool owned)
            {
                if (owned && lane.HasTable)
                {
                    RetiredFrames++;
                }

                lane.HasTable = false;
            }

            private void Step1G(Region region, Lane lane)
            {
                P2m p2m = _world.P2m;
                RegionState cur = lane.Current;
                ulong first = region.FirstGfn;
                int roll = _rng.Next(100);
                Op op = !cur.Mapped ? Op.MapSuper
                    : cur.Order == 18 ? (roll < 45 ? Op.Split : roll < 80 ? Op.MapSuper : Op.RemoveSuper)
                    : (roll < 30 && cur.HoleFirst == NoGfn ? Op.RemoveChunk : roll < 80 ? Op.MapSuper : Op.RemoveSuper);
                switch (op)
                {
                    case Op.MapSuper:
                    {
                        int v = OtherVersion(cur, Versions1G);
                        int ci = AnyCombo();
                        lane.Begin(RegionState.Leaves(v, ci, 18));
                        p2m.SetEntry(first, lane.Bases[v], PageOrder.Size1G, s_combos[ci].Type, s_combos[ci].Access);
                        lane.End();
                        RetiredFrames += lane.TableFrames;
                        lane.TableFrames = 0;
                        break;
                    }

                    case Op.Split:
                    {
                        ulong e = first + (ulong)_rng.NextInt64((long)Pages1G);
                        int ve = (cur.Version + 1) % Versions1G;
                        int ce = AnyCombo();
                        lane.Hint = e;
                        lane.Begin(cur with { Order = 0, ExceptionGfn = e, ExceptionVersion = ve, ExceptionCombo = ce });
                        p2m.SetEntry(e, lane.Bases[ve] + (e - first), PageOrder.Size4K, s_combos[ce].Type, s_combos[ce].Access);
                        lane.End();
                        lane.TableFrames = 1 + 512;     // Xen splits every child down to 4K
                        break;
                    }

                    case Op.RemoveChunk:
                    {
                        ulong chunk = first + (ulong)_rng.Next(512) * Pages2M;
                        lane.Hint = chunk + Pages2M - 1;
                        lane.Begin(cur with { HoleFirst = chunk, HoleLast = chunk + Pages2M - 1 });
                        p2m.SetEntry(chunk, Mfn.Invalid, PageOrder.Size2M, P2mType.Invalid, P2mAccess.RWX);
                        lane.End();
                        RetiredFrames++;
                        lane.TableFrames--;
                        break;
                    }

                    default:
                    {
                        lane.Begin(RegionState.Removed);
                        p2m.SetEntry(first, Mfn.Invalid, PageOrder.Size1G, P2mType.Invalid, P2mAccess.RWX);
                        lane.End();
                        RetiredFrames += lane.TableFrames;
                        lane.TableFrames = 0;
                        break;
                    }
                }

                Ops1G[(int)op]++;
            }
        }
    }
}
