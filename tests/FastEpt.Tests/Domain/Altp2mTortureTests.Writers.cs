// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.DomainTests
{
    public sealed partial class Altp2mTortureTests
    {
        private sealed partial class World
        {
            // ---- remaps: every (view, old, new) ChangeGfn ever asked for ------------------

            private void RecordRemap(int view, ulong oldGfn, ulong newGfn)
            {
                lock (_remapLock)
                {
                    if (!_remaps.TryGetValue((view, oldGfn), out HashSet<ulong>? targets))
                    {
                        _remaps[(view, oldGfn)] = targets = new HashSet<ulong>();
                    }

                    if (!_remapSources.TryGetValue(newGfn, out HashSet<(int, ulong)>? sources))
                    {
                        _remapSources[newGfn] = sources = new HashSet<(int, ulong)>();
                    }

                    sources.Add((view, oldGfn));
                    if (targets.Add(newGfn))
                    {
                        _remapPairs++;
                    }
                }
            }

            // A view may show at `from` the frame of any GFN reachable through its remaps: a
            // remap copies the view's effective entry of the target, itself possibly a remap.
            private bool Reaches(int view, ulong from, ulong to)
            {
                lock (_remapLock)
                {
                    var seen = new HashSet<ulong> { from };
                    var queue = new Queue<ulong>();
                    queue.Enqueue(from);
                    while (queue.Count != 0)
                    {
                        if (!_remaps.TryGetValue((view, queue.Dequeue()), out HashSet<ulong>? targets))
                        {
                            continue;
                        }

                        foreach (ulong t in targets)
                        {
                            if (t == to)
                            {
                                return true;
                            }

                            if (seen.Add(t))
                            {
                                queue.Enqueue(t);
                            }
                        }
                    }

                    return false;
                }
            }

            // Every (view, source) whose remap may show the frame of a GFN in [first, first + count).
            private List<(int View, ulong Gfn)> SourcesInto(ulong first, ulong count)
            {
                lock (_remapLock)
                {
                    var seen = new HashSet<(int, ulong)>();
                    var queue = new Queue<(int View, ulong Gfn)>();
                    void Enqueue(HashSet<(int View, ulong Gfn)> sources, int onlyView)
                    {
                        foreach ((int View, ulong Gfn) s in sources)
                        {
                            if ((onlyView < 0 || s.View == onlyView) && seen.Add(s))
                            {
                                queue.Enqueue(s);
                            }
                        }
                    }

                    if (count == 1)
                    {
                        if (_remapSources.TryGetValue(first, out HashSet<(int View, ulong Gfn)>? direct))
                        {
                            Enqueue(direct, -1);
                        }
                    }
                    else
                    {
                        foreach ((ulong target, HashSet<(int View, ulong Gfn)> sources) in _remapSources)
                        {
                            if (InRange(target, first, count))
                            {
                                Enqueue(sources, -1);
                            }
                        }
                    }

                    var result = new List<(int View, ulong Gfn)>();
                    while (queue.Count != 0)
                    {
                        (int view, ulong gfn) = queue.Dequeue();
                        result.Add((view, gfn));
                        if (_remapSources.TryGetValue(gfn, out HashSet<(int View, ulong Gfn)>? further))
                        {
                            Enqueue(further, view);     // a chain stays inside one view
                        }
                    }

                    return result;
                }
            }

            // A destroyed view was emptied before DestroyView returned: its remaps need no more
            // auditing (readers keep the full history: one may still be inside the old tables).
            private void ForgetViewRemaps(int view)
            {
                lock (_remapLock)
                {
                    foreach (HashSet<(int View, ulong Gfn)> sources in _remapSources.Values)
                    {
                        sources.RemoveWhere(s => s.View == view);
                    }
                }
            }

            // ---- 1. host writer ----------------------------------------------------------
            // The only thread that changes host frames (the others change accesses, split
            // superpages or copy host entries into views, all frame-preserving). So between two
            // of its writes the host's frames are fixed, and right after a write every view
            // entry showing the frame of a written GFN must show the host's current one: the
            // write propagated (or reset the view) under the host lock before SetEntry returned.

            public void HostWriterStep(Random rng, long[] c)
            {
                ulong g = rng.Next(4) == 0 ? RandomHotGfn(rng) : RandomGfn(rng);     // a hot spot where the remap targets are
                ulong block = g & ~(Pages2M - 1);
                int version = rng.Next(Versions);
                P2mAccess access = Pick(rng, s_hostAccesses);
                int r = rng.Next(100);
                if (r < 40)
                {
                    Host.SetEntry(g, Frame(g, version), PageOrder.Size4K, P2mType.RamRw, access);
                    c[(int)Stat.HostMap4K]++;
                    Audit(rng, g, 1, c);
                }
                else if (r < 52)
                {
                    Host.SetEntry(block, Frame(block, version), PageOrder.Size2M, P2mType.RamRw, access);
                    c[(int)Stat.HostMap2M]++;
                    Audit(rng, block, Pages2M, c);
                }
                else if (r < 80)
                {
                    Host.SetEntry(g, Mfn.Invalid, PageOrder.Size4K, P2mType.Invalid, P2mAccess.N);
                    c[(int)Stat.HostRemove4K]++;
                    Audit(rng, g, 1, c);
                }
                else if (r < 81)
                {
                    Host.SetEntry(block, Mfn.Invalid, PageOrder.Size2M, P2mType.Invalid, P2mAccess.N);
                    c[(int)Stat.HostRemove2M]++;
                    Audit(rng, block, Pages2M, c);
                }
                else if (r < 86)
                {
                    RemapThenRemerge(rng, c);
                }
                else
                {
                    // Access only: the frame stays.
                    P2mEntry e = Host.GetEntry(g);
                    if (HasFrame(e))
                    {
                        Host.SetEntry(g, e.Mfn, PageOrder.Size4K, P2mType.RamRw, access);
                        c[(int)Stat.HostAccess]++;
                        Audit(rng, g, 1, c);
                    }
                }
            }

            // A hot GFN gets a 4K frame of its own, a view remaps a GFN to it, and the host maps
            // the whole block as one superpage again keeping the block's first frame (a guest
            // collapsing a block back into a superpage): the remap target's frame changes, so the
            // view must be reset. Done in one thread so that nothing resets the view in between.
            private void RemapThenRemerge(Random rng, long[] c)
            {
                ulong target = RandomHotGfn(rng);
                ulong block = target & ~(Pages2M - 1);
                P2mEntry first = Host.GetEntry(block);
                int keep = HasFrame(first) && first.Mfn < (ulong)PoolFrames ? (int)(first.Mfn / Pages2M % Versions) : rng.Next(Versions);
                int other = (keep + 1 + rng.Next(Versions - 1)) % Versions;
                Host.SetEntry(target, Frame(target, other), PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                c[(int)Stat.HostMap4K]++;
                Audit(rng, target, 1, c);

                int v = 1 + rng.Next(AltViews);
                ulong source = RandomGfn(rng);
                if (source == target || !TryView(v, out _))
                {
                    return;
                }

                RecordRemap(v, source, target);
                try
                {
                    CountStatus(Alt.ChangeGfn(v, source, target), c, Stat.WriterRemaps, $"ChangeGfn({v}, 0x{source:X}, 0x{target:X})");
                }
                catch (ArgumentException e) when (e.ParamName == "view")
                {
                    return;     // the view operator destroyed it meanwhile
                }

                Host.SetEntry(block, Frame(block, keep), PageOrder.Size2M, P2mType.RamRw, Pick(rng, s_hostAccesses));
                c[(int)Stat.HostRemerge2M]++;
                Audit(rng, block, Pages2M, c);
            }

            // Checks the views right after a host write of [first, first + count): every remap
            // that may lead into the range, and the GFNs' own entries (a sample of a superpage's;
            // the quiescent sweep reads them all).
            private void Audit(Random rng, ulong first, ulong count, long[] c)
            {
                Span<ulong> own = stackalloc ulong[AuditSample];
                int n = count == 1 ? 1 : AuditSample;
                for (int i = 0; i < n; i++)
                {
                    own[i] = count == 1 ? first : first + (ulong)rng.NextInt64((long)count);
                }

                for (int v = 1; v < ViewCount; v++)
                {
                    if (TryView(v, out P2m p))
                    {
                        foreach (ulong g in own[..n])
                        {
                            AuditEntry(v, p, g, first, count, c);
                        }
                    }
                }

                foreach ((int v, ulong g) in SourcesInto(first, count))
                {
                    if (TryView(v, out P2m p))
                    {
                        AuditEntry(v, p, g, first, count, c);
                    }
                }
            }

            private void AuditEntry(int v, P2m p, ulong g, ulong first, ulong count, long[] c)
            {
                P2mEntry e = p.GetEntry(g);
                c[(int)Stat.AuditedEntries]++;
                if (!HasFrame(e) || !Decode(e.Mfn, out ulong shown) || !InRange(shown, first, count))
                {
                    return;     // not the frame of a GFN just written (readers check the rest)
                }

                P2mEntry h = Host.GetEntry(shown);
                if (HasFrame(h) && h.Mfn == e.Mfn)
                {
                    return;
                }

                Report($"host writer: after writing GFNs 0x{first:X}+{count}, view {v} GFN 0x{g:X} reads {e} (the frame of GFN 0x{shown:X}) "
                       + $"but the host maps GFN 0x{shown:X} as {h}: "
                       + (shown == g ? "the host change was not propagated" : "a host change of a remap target did not reset the view"));
            }
        }
    }
}
