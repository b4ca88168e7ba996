// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt.Tests.P2mTests
{
    public sealed partial class P2mConcurrencyTests
    {
        private sealed class TortureReader
        {
            private readonly TortureWorld? _world;
            private readonly int _index;

            public TortureReader(TortureWorld? world, int index)
            {
                _world = world;
                _index = index;
            }

            public long Gets { get; private set; }

            public long Translates { get; private set; }

            public long Batched { get; private set; }

            public long SlowWalks { get; private set; }

            public long Overlapping { get; private set; }   // observations during which some lane changed

            public long Faults { get; private set; }        // holes (GetEntry) or violations (Translate)

            public long Discarded { get; private set; }

            public static TortureReader Sum(TortureReader[] readers)
            {
                var sum = new TortureReader(null, -1);
                foreach (TortureReader r in readers)
                {
                    sum.Gets += r.Gets;
                    sum.Translates += r.Translates;
                    sum.Batched += r.Batched;
                    sum.SlowWalks += r.SlowWalks;
                    sum.Overlapping += r.Overlapping;
                    sum.Faults += r.Faults;
                    sum.Discarded += r.Discarded;
                }

                return sum;
            }

            public void Run()
            {
                TortureWorld world = _world!;
                P2m p2m = world.P2m;
                var rng = new Random(Seed + 100 + _index);
                long[] before = new long[world.Lanes.Length];
                long[] after = new long[world.Lanes.Length];
                var candidates = new Expectation[2 * (MaxWindow + 1) * TortureWriters];
                ulong[] gpas = new ulong[ReaderBatch];
                Region[] batchRegions = new Region[ReaderBatch];
                EptTranslation[] results = new EptTranslation[ReaderBatch];
                while (!world.ShouldStop)
                {
                    int kind = rng.Next(16);
                    if (kind < 12)
                    {
                        // 0-4 GetEntry, 5-9 Translate, 10-11 a slow walk of our own; 12-15 a batch.
                        bool isGet = kind < 5 || kind >= 10;
                        bool isSlow = kind >= 10;
                        bool corrupt = false;
                        Region region = PickRegion(world, rng);
                        ulong gfn = PickGfn(region, rng);
                        Snapshot(region.Lanes, before);
                        P2mEntry e = default;
                        EptTranslation t = default;
                        ulong gpa = (gfn << 12) | (uint)rng.Next(4096);
                        AccessKind access = s_accesses[rng.Next(s_accesses.Length)];
                        if (isSlow)
                        {
                            e = SlowWalk(p2m, gfn, rng, out corrupt);
                        }
                        else if (isGet)
                        {
                            e = p2m.GetEntry(gfn);
                        }
                        else
                        {
                            t = p2m.Translate(gpa, access);
                        }

                        Snapshot(region.Lanes, after);
                        int n = Candidates(region, gfn, before, after, candidates);
                        bool ok = false;
                        for (int i = 0; i < n && !ok && !corrupt; i++)
                        {
                            ok = isGet ? EntryMatches(e, candidates[i], region.Contended) : TranslationMatches(t, candidates[i], gpa, access, region.Contended);
                        }

                        if (n < 0 || AnyLapped(region.Lanes, before))
                        {
                            Discarded++;
                            continue;
                        }

                        Count(region.Lanes, before, after, isGet ? (e.IsMapped ? 0 : 1) : (t.Status == EptStatus.Ok ? 0 : 1));
                        if (isSlow)
                        {
                            SlowWalks++;
                        }
                        else if (isGet)
                        {
                            Gets++;
                        }
                        else
                        {
                            Translates++;
                        }

                        if (!ok)
                        {
                            world.Report($"{(isSlow ? "slow walk" : isGet ? "GetEntry" : $"Translate({access}) of 0x{gpa:X}")} gfn 0x{gfn:X} in {region.Name} saw "
                                         + $"{(corrupt ? "a corrupt entry" : isGet ? e.ToString() : t.ToString())}; states in the window: "
                                         + $"{string.Join(" | ", candidates.Take(Math.Max(n, 0)).Distinct().Take(8))}; "
                                         + $"seq {string.Join(",", region.Lanes.Select(l => before[l.Index]))} -> {string.Join(",", region.Lanes.Select(l => after[l.Index]))}");
                        }
                    }
                    else
                    {
                        // Half the batches stay in one region: long runs of walks through the
                        // tables a writer is busiest replacing, where a premature free would show.
                        AccessKind access = s_accesses[rng.Next(s_accesses.Length)];
                        Region? single = rng.Next(2) == 0 ? world.Regions[rng.Next(world.Regions.Length)] : null;
                        for (int i = 0; i < ReaderBatch; i++)
                        {
                            batchRegions[i] = single ?? PickRegion(world, rng);
                            gpas[i] = (PickGfn(batchRegions[i], rng) << 12) | (uint)rng.Next(4096);
                        }

                        Snapshot(world.Lanes, before);
                        int written = p2m.TranslateBatch(gpas, access, results);
                        Snapshot(world.Lanes, after);
                        if (written != ReaderBatch)
                        {
                            world.Report($"TranslateBatch returned {written} for {ReaderBatch} addresses");
                        }

                        if (AnyLapped(world.Lanes, before))
                        {
                            Discarded += ReaderBatch;
                            continue;
                        }

                        for (int i = 0; i < ReaderBatch; i++)
                        {
                            Region region = batchRegions[i];
                            ulong gfn = gpas[i] >> 12;
                            int n = Candidates(region, gfn, before, after, candidates);
                            if (n < 0)
                            {
                                Discarded++;
                                continue;
                            }

                            bool ok = false;
                            for (int c = 0; c < n && !ok; c++)
                            {
                                ok = TranslationMatches(results[i], candidates[c], gpas[i], access, region.Contended);
                            }

                            Batched++;
                            Count(region.Lanes, before, after, results[i].Status == EptStatus.Ok ? 0 : 1);
                            if (!ok)
                            {
                                world.Report($"TranslateBatch({access}) of 0x{gpas[i]:X} (item {i}) in {region.Name} saw {results[i]}; states in the window: "
                                             + $"{string.Join(" | ", candidates.Take(n).Distinct().Take(8))}");
                            }
                        }

                        // Re-check after replaying: a lane that lapped its history meanwhile may have fed us wrong states.
                        if (AnyLapped(world.Lanes, before))
                        {
                            Discarded++;
                        }
                    }
                }
            }

            private void Count(Lane[] lanes, long[] before, long[] after, int fault)
            {
                Faults += fault;
                foreach (Lane l in lanes)
                {
                    if (before[l.Index] != after[l.Index] || (before[l.Index] & 1) != 0)
                    {
                        Overlapping++;
                        return;
                    }
                }
            }

            // A walker of our own that keeps the library's reader protocol (one Epoch section
            // around the walk, every slot read once) but dawdles between levels as a preempted
            // reader would: a table freed under it reads as poison or as some other region's
            // entries. Decodes like GetEntry; `corrupt` flags fields no writer ever stores.
            private static P2mEntry SlowWalk(P2m p2m, ulong gfn, Random rng, out bool corrupt)
            {
                HostMemory memory = p2m.Memory;
                long previous = Epoch.Enter(out Epoch.ReaderSlot slot);
                try
                {
                    ulong table = p2m.RootMfn;
                    for (int level = p2m.Levels; ; level--)
                    {
                        int order = 9 * (level - 1);
                        ulong pte = memory.ReadUInt64((table << 12) + 8 * ((gfn >> order) & 511));
                        if (level > 1 && (pte & EptEntry.RwxMask) != 0 && (pte & EptEntry.SuperPageBit) == 0)
                        {
                            table = (pte & EptEntry.MfnMask) >> EptEntry.MfnShift;
                            corrupt = table >= (ulong)memory.FrameCount;
                            if (corrupt)
                            {
                                return default;
                            }

                            Thread.SpinWait(rng.Next(256));
                            continue;
                        }

                        ulong type = (pte & EptEntry.TypeMask) >> EptEntry.TypeShift;
                        ulong access = (pte & EptEntry.AccessMask) >> EptEntry.AccessShift;
                        if ((pte & ~EptEntry.SuppressVeBit) == 0 || type == (ulong)P2mType.Invalid)
                        {
                            corrupt = false;
                            return P2mEntry.Hole(order);
                        }

                        corrupt = level > 3 || type > (ulong)P2mType.IoreqServer || access > (ulong)P2mAccess.R_PW;
                        ulong mfn = ((pte & EptEntry.MfnMask) >> EptEntry.MfnShift) + (gfn & ((1UL << order) - 1));
                        return new P2mEntry(mfn, (P2mType)type, (P2mAccess)access, (pte & EptEntry.SuppressVeBit) != 0, true, order);
                    }
                }
                finally
                {
                    Epoch.Exit(slot, previous);
                }
            }

            private static bool AnyLapped(Lane[] lanes, long[] before)
            {
                foreach (Lane l in lanes)
                {
                    if (l.Lapped(before[l.Index]))
                    {
                        return true;
                    }
                }

                return false;
            }

            private static Region PickRegion(TortureWorld world, Random rng)
                => rng.Next(10) == 0 ? world.Gaps[rng.Next(world.Gaps.Length)] : world.Regions[rng.Next(world.Regions.Length)];

            private static ulong PickGfn(Region region, Random rng)
            {
                if (region.Lanes.Length != 0 && rng.Next(4) == 0)
                {
                    // Aim at (or next to) a GFN the writer just made special: an exception or a hole edge.
                    ulong hint = unchecked(region.Lanes[rng.Next(region.Lanes.Length)].Hint + (ulong)rng.Next(3) - 1);   // 0 - 1 wraps, then fails the range test
                    if (hint >= region.FirstGfn && hint - region.FirstGfn < region.Pages)
                    {
                        return hint;
                    }
                }

                return region.FirstGfn + (ulong)rng.NextInt64((long)region.Pages);
            }

            private static void Snapshot(Lane[] lanes, long[] into)
            {
                foreach (Lane l in lanes)
                {
                    into[l.Index] = l.Seq;
                }
            }

            // Every outcome the region's lanes allowed for `gfn` between the snapshots; -1 when a
            // window is too wide to replay.
            private static int Candidates(Region region, ulong gfn, long[] before, long[] after, Expectation[] into)
            {
                if (region.Lanes.Length == 0)
                {
                    into[0] = default;
                    return 1;
                }

                int n = 0;
                foreach (Lane lane in region.Lanes)
                {
                    long first = before[lane.Index] >> 1;
                    long last = (after[lane.Index] + 1) >> 1;
                    if (last - first > MaxWindow)
                    {
                        return -1;
                    }

                    for (long k = first; k <= last; k++)
                    {
                        into[n++] = Expect(region, lane, lane.StateAt(k), gfn);
                    }
                }

                return n;
            }
        }
    }
}
