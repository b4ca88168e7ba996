// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Text;

namespace FastEpt.Tests.P2mTests
{
    public sealed partial class P2mModelTests
    {
        private sealed partial class Harness
        {
            // The touched range, its neighbours, the superpages that hold it, and a random sample.
            private void CheckAround(ulong gfn, int order)
            {
                ulong last = gfn + (1UL << order) - 1;
                Check(gfn);
                Check(last);
                Check(gfn - 1);
                Check(last + 1);
                if (order > 0)
                {
                    Check(gfn + (ulong)_rng.NextInt64(1L << order));
                }

                ulong block = gfn & ~511UL;
                ulong region = gfn & ~(RegionFrames - 1);
                Check(block);
                Check(block + 511);
                Check(region);
                Check(region + RegionFrames - 1);
                Check(region + (ulong)_rng.NextInt64((long)RegionFrames));
                Check(PickGfn(0));
                Check(PickGfn(0));
                Check(WindowBase + (ulong)_rng.NextInt64((long)WindowFrames));
            }

            private void Check(ulong gfn)
            {
                P2mEntry actual = default;
                try
                {
                    actual = _p2m.GetEntry(gfn);
                }
                catch (Exception ex)
                {
                    Fail($"GetEntry(0x{gfn:X}) threw {ex}");
                }

                CompareEntry(gfn, actual);
                CheckTranslate(gfn, (ulong)_rng.Next(4096), (AccessKind)(1 << _rng.Next(3)));
                CheckTranslate(gfn, (ulong)_rng.Next(4096), (AccessKind)_rng.Next(1, 8));
            }

            private void CompareEntry(ulong gfn, P2mEntry actual)
            {
                Cell c = _model[gfn];
                bool ok;
                if (!c.Mapped)
                {
                    // A hole: its order depends on the table structure and is not compared.
                    ok = !actual.IsMapped && actual.Mfn == Mfn.Invalid && actual.Type == P2mType.MmioDm
                         && actual.Access == P2mAccess.N && actual.SuppressVe;
                }
                else
                {
                    bool pod = c.Type == P2mType.PopulateOnDemand;
                    ok = actual.IsMapped && actual.Mfn == (pod ? Mfn.Invalid : c.Mfn) && actual.Type == c.Type
                         && actual.Access == (pod ? P2mAccess.N : c.Access) && actual.SuppressVe == c.SuppressVe
                         && actual.Order == c.Order;
                }

                if (!ok)
                {
                    Fail($"GetEntry(0x{gfn:X}): expected {Describe(c)}, got {actual}");
                }
            }

            private void CheckTranslate(ulong gfn, ulong offset, AccessKind kind)
            {
                ulong gpa = (gfn << 12) | offset;
                EptTranslation actual = default;
                try
                {
                    actual = _p2m.Translate(gpa, kind);
                }
                catch (Exception ex)
                {
                    Fail($"Translate(0x{gpa:X}, {kind}) threw {ex}");
                }

                Cell c = _model[gfn];
                ulong access = (ulong)kind;
                bool ok;
                string expected;
                if (!c.Mapped)
                {
                    ok = actual.Status == EptStatus.Violation && actual.Qualification == access && actual.Hpa == 0;
                    expected = $"Violation qual=0x{access:X} (not present)";
                }
                else
                {
                    int rwx = BaseRwx(c.Type) & AccessMask(c.Access);
                    int level = c.Order / 9 + 1;
                    if (rwx == 0)
                    {
                        ok = actual == new EptTranslation(EptStatus.Violation, 0, level, access);
                        expected = $"Violation level={level} qual=0x{access:X} (not present)";
                    }
                    else if ((access & ~(ulong)rwx) != 0)
                    {
                        ulong qual = access | ((ulong)rwx << 3);
                        ok = actual == new EptTranslation(EptStatus.Violation, 0, level, qual);
                        expected = $"Violation level={level} qual=0x{qual:X}";
                    }
                    else
                    {
                        ulong hpa = (c.Mfn << 12) | offset;
                        ok = actual == new EptTranslation(EptStatus.Ok, hpa, level, 0);
                        expected = $"Ok hpa=0x{hpa:X} level={level}";
                    }
                }

                if (!ok)
                {
                    Fail($"Translate(0x{gpa:X}, {kind}) for {Describe(c)}: expected {expected}, got {actual}");
                }
            }

            private void CheckCounters()
            {
                if (_p2m.MaxMappedPfn != _model.MaxMappedPfn)
                {
                    Fail($"MaxMappedPfn 0x{_p2m.MaxMappedPfn:X}, model 0x{_model.MaxMappedPfn:X}");
                }

                if (_p2m.PodEntryCount != _model.PodEntries)
                {
                    Fail($"PodEntryCount {_p2m.PodEntryCount}, model {_model.PodEntries}");
                }

                if (_p2m.Pod.FreeFrames != _pool.FreeFrames)
                {
                    Fail($"Pod.FreeFrames {_p2m.Pod.FreeFrames}, model {_pool.FreeFrames}");
                }
            }

            // Every GFN of the window (and one past each end); tables reachable from the root.
            private void Sweep()
            {
                for (ulong gfn = WindowBase - 1; gfn <= WindowBase + WindowFrames; gfn++)
                {
                    CompareEntry(gfn, _p2m.GetEntry(gfn));
                    if (gfn % 61 == 0)
                    {
                        CheckTranslate(gfn, (ulong)_rng.Next(4096), (AccessKind)_rng.Next(1, 8));
                    }
                }

                long reachable = CountReachableTables(_p2m.RootMfn, _p2m.Levels, new HashSet<ulong>());
                if (reachable != _p2m.TableFrameCount)
                {
                    Fail($"{reachable} tables reachable from the root, TableFrameCount says {_p2m.TableFrameCount}");
                }
            }

            private long CountReachableTables(ulong table, int level, HashSet<ulong> seen)
            {
                if (!seen.Add(table))
                {
                    Fail($"table 0x{table:X} is linked twice");
                }

                long n = 1;
                for (ulong i = 0; i < 512 && level > 1; i++)
                {
                    ulong pte = _memory.ReadUInt64((table << 12) + i * 8);
                    if ((pte & EptEntry.RwxMask) != 0 && (pte & EptEntry.SuperPageBit) == 0)
                    {
                        n += CountReachableTables((pte & EptEntry.MfnMask) >> 12, level - 1, seen);
                    }
                }

                return n;
            }

            private void CheckFrameAccounting()
            {
                _current = "frame accounting";
                P2mConcurrencyTests.ReclaimUntilEmpty(_p2m);     // any p2m's pass may free pending frames meanwhile
                long held = _memory.AllocatedFrameCount - (long)OwnedFrames;
                long accounted = _p2m.TableFrameCount + _p2m.PendingReclaimFrameCount;
                if (held != accounted)
                {
                    Fail($"the p2m holds {held} frames but accounts for {accounted} ({_p2m.TableFrameCount} live + {_p2m.PendingReclaimFrameCount} pending)");
                }

                _p2m.Dispose();
                if (_memory.AllocatedFrameCount != (long)OwnedFrames)
                {
                    Fail($"after Dispose {_memory.AllocatedFrameCount} frames are allocated, expected only the {OwnedFrames} guest frames");
                }
            }

            private static string Describe(Cell c)
                => c.Mapped
                    ? $"mapped mfn={FormatMfn(c.Mfn)} type={c.Type} access={c.Access} order={c.Order}{(c.SuppressVe ? " sve" : "")}"
                    : "hole";

            private static string FormatMfn(ulong mfn) => mfn == Mfn.Invalid ? "INVALID" : $"0x{mfn:X}";

            private void Fail(string detail)
            {
                StringBuilder sb = new StringBuilder();
                sb.Append($"seed {_seed}, op {_op} ({_current}): {detail}\nrecent operations:");
                for (int i = 1; i <= _recent.Length; i++)
                {
                    string? line = _recent[(_op - i + 2 * _recent.Length) % _recent.Length];
                    if (line is not null && i <= _op)
                    {
                        sb.Append("\n  ").Append(line);
                    }
                }

                Assert.Fail(sb.ToString());
            }
        }
    }
}
