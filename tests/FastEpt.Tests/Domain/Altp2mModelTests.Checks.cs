// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Text;
using Xunit.Sdk;

namespace FastEpt.Tests.DomainTests
{
    public sealed partial class Altp2mModelTests
    {
        private sealed partial class Harness
        {
            // ---- checks -------------------------------------------------------------------

            private void Begin()
            {
                _tick++;
                _changed.Clear();
                _opGfns.Clear();
                _changedMfns.Clear();
                _resetViews.Clear();
                Array.Clear(_fullCompare);
                _desc = "?";
            }

            private void Check()
            {
                _history.Enqueue($"{OpLabel}: {_desc}");
                if (_history.Count > HistoryLength)
                {
                    _history.Dequeue();
                }

                // Lifecycle, remapped ranges, vCPU views.
                for (int v = 1; v <= AltViews; v++)
                {
                    if (Alt.IsActive(v) != _active[v])
                    {
                        Fail($"IsActive({v}) = {Alt.IsActive(v)}, model {_active[v]}");
                    }

                    if (_active[v] && Alt.RemappedRange(v) != (_minRemap[v], _maxRemap[v]))
                    {
                        Fail($"RemappedRange({v}) = {Alt.RemappedRange(v)}, model ({_minRemap[v]:X}, {_maxRemap[v]:X})");
                    }
                }

                if (Alt.ActiveViewCount != _active.Skip(1).Count(a => a))
                {
                    Fail($"ActiveViewCount = {Alt.ActiveViewCount}");
                }

                for (int c = 0; c < Vcpus; c++)
                {
                    if (_domain.Vcpus[c].View != _vcpuView[c])
                    {
                        Fail($"vCPU {c} is on view {_domain.Vcpus[c].View}, model {_vcpuView[c]}");
                    }
                }

                // View-reset notifications: the views the model reset, in order, and nothing else.
                var seen = new List<int>();
                while (_domain.MemAccessEvents.TryRead(out MemAccessEvent ev))
                {
                    if (ev.Kind != MemAccessEventKind.ViewReset)
                    {
                        Fail($"unexpected event {ev}");
                    }

                    seen.Add(ev.View);
                }

                if (!seen.SequenceEqual(_resetViews))
                {
                    Fail($"view-reset events [{string.Join(", ", seen)}], model reset [{string.Join(", ", _resetViews)}]");
                }

                if (Alt.ViewResets != _resets || _domain.LostNotifications != 0)
                {
                    Fail($"ViewResets = {Alt.ViewResets} (lost {_domain.LostNotifications}), model {_resets}");
                }

                // Entries: whatever the model changed, the operation's GFNs in every view, new views whole.
                foreach ((int view, ulong gfn) in _changed)
                {
                    if (_active[view])
                    {
                        CompareEntry(view, gfn);
                    }
                }

                for (int v = 0; v <= AltViews; v++)
                {
                    if (!_active[v])
                    {
                        continue;
                    }

                    if (_fullCompare[v])
                    {
                        for (ulong g = 0; g < WindowFrames; g++)
                        {
                            CompareEntry(v, g);
                        }
                    }

                    foreach (ulong g in _opGfns)
                    {
                        CompareEntry(v, g);
                        CompareWalks(v, g);
                    }
                }

                // Security: a frame the host maps only as shared is never writable RAM in a view.
                foreach (ulong mfn in _changedMfns)
                {
                    CheckSharedFrame(mfn);
                }

                for (int i = 0; i < _opGfns.Count && i < 2; i++)
                {
                    _recent[_recentNext++ % _recent.Length] = _opGfns[i];
                }
            }

            private void FullSweep()
            {
                _desc = $"full sweep after op {OpLabel}";
                for (int v = 0; v <= AltViews; v++)
                {
                    if (!_active[v])
                    {
                        continue;
                    }

                    P2m p = Alt.View(v);
                    for (ulong g = 0; g < WindowFrames; g++)
                    {
                        CompareEntry(v, g);
                        CompareWalks(v, g);
                        if (v > 0)
                        {
                            EptTranslation t = p.Translate((g << 12) | 0x10, AccessKind.Write);
                            if (t.Status == EptStatus.Ok && IsHostSharedOnly(t.Hpa >> 12))
                            {
                                Fail($"view {v} GFN 0x{g:X}: write translates to frame 0x{t.Hpa >> 12:X}, which the host maps only as RamShared");
                            }
                        }

                        if ((g & 15) == (ulong)v)
                        {
                            CheckQueries(v, g);
                        }
                    }
                }

                foreach (ulong mfn in _hostShared.Keys)
                {
                    CheckSharedFrame(mfn);
                }
            }

            private void CompareEntry(int view, ulong gfn)
            {
                P2mEntry e = Alt.View(view).GetEntry(gfn);
                Cell m = _cells[view][gfn];
                if (e.IsMapped != m.Mapped
                    || (m.Mapped && (e.Mfn != m.Mfn || e.Type != m.Type || e.Access != m.Access || e.SuppressVe != m.SuppressVe)))
                {
                    Fail($"view {view} GFN 0x{gfn:X}: library {e}, model {m} (host model {_cells[0][gfn]})");
                }
            }

            // The hardware walk agrees with the model's type and access, for reads, writes and fetches.
            private void CompareWalks(int view, ulong gfn)
            {
                P2m p = Alt.View(view);
                Cell m = _cells[view][gfn];
                ulong offset = (gfn * 0x9E3) & 0xFF8;
                foreach (AccessKind kind in s_kinds)
                {
                    EptTranslation t = p.Translate((gfn << 12) | offset, kind);
                    uint k = (uint)kind;
                    bool ok = m.Mapped && (k & ~(TypeRwx(m.Type) & Rights(m.Access))) == 0;
                    EptStatus want = ok ? EptStatus.Ok : EptStatus.Violation;
                    if (t.Status != want || (ok && t.Hpa != ((m.Mfn << 12) | offset)))
                    {
                        Fail($"view {view} GFN 0x{gfn:X} {kind}: walk {t}, model {m} expects {want}");
                    }
                }
            }

            private void CheckQueries(int view, ulong gfn)
            {
                Cell e = _cells[view][gfn];
                Cell h = _cells[0][gfn];
                P2mStatus st = Alt.GetSuppressVe(view, gfn, out bool sve);
                (P2mStatus, bool) want = e.Mapped ? (P2mStatus.Ok, e.SuppressVe)
                    : view != 0 && h.Mapped ? (P2mStatus.Ok, h.SuppressVe)
                    : (P2mStatus.NoEntry, true);
                if ((st, sve) != want)
                {
                    Fail($"GetSuppressVe(view {view}, 0x{gfn:X}) = ({st}, {sve}), model {want}");
                }

                st = Alt.GetMemAccess(view, gfn, out P2mAccess a);
                (P2mStatus, P2mAccess) wantA = e.Mapped ? (P2mStatus.Ok, e.Access)
                    : view != 0 && h.Mapped ? (P2mStatus.Ok, _default[view])
                    : (P2mStatus.NoEntry, P2mAccess.N);
                if ((st, a) != wantA)
                {
                    Fail($"GetMemAccess(view {view}, 0x{gfn:X}) = ({st}, {a}), model {wantA}");
                }
            }

            private bool IsHostSharedOnly(ulong mfn)
                => _hostShared.GetValueOrDefault(mfn) > 0 && _hostOther.GetValueOrDefault(mfn) == 0;

            private void CheckSharedFrame(ulong mfn)
            {
                if (!IsHostSharedOnly(mfn) || _viewWritable.GetValueOrDefault(mfn) == 0)
                {
                    return;
                }

                var where = new StringBuilder();
                for (int v = 1; v <= AltViews; v++)
                {
                    for (ulong g = 0; g < WindowFrames; g++)
                    {
                        Cell c = _cells[v][g];
                        if (c.Mapped && c.Mfn == mfn && IsWritableRam(c.Type))
                        {
                            where.Append($" view {v} GFN 0x{g:X} ({c}{(_remapped[v].Contains(g) ? ", remapped" : "")});");
                        }
                    }
                }

                Fail($"frame 0x{mfn:X} is mapped by the host only as RamShared, yet views map it as writable RAM:{where}");
            }

            private static Outcome ToOutcome(P2mStatus st) => st switch
            {
                P2mStatus.Ok => Outcome.Ok,
                P2mStatus.NoEntry => Outcome.NoEntry,
                P2mStatus.InvalidType => Outcome.InvalidType,
                _ => throw new XunitException($"unexpected status {st}"),
            };

            private void ExpectOutcome(Outcome actual, Outcome expected)
            {
                if (actual != expected)
                {
                    Fail($"library {actual}, model {expected}");
                }
            }

            private void Fail(string what)
            {
                var sb = new StringBuilder();
                sb.AppendLine($"seed {_seed}, op {OpLabel}: {_desc}");
                sb.AppendLine(what);
                sb.AppendLine("recent operations:");
                foreach (string h in _history)
                {
                    sb.AppendLine("  " + h);
                }

                Assert.Fail(sb.ToString());
            }
        }
    }
}
