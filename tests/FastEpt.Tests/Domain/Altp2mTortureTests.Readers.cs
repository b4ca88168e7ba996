// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.DomainTests
{
    public sealed partial class Altp2mTortureTests
    {
        private sealed partial class World
        {
            // ---- 4. lock-free readers ------------------------------------------------------

            public void ReaderStep(Random rng, long[] c)
            {
                int v = rng.Next(ViewCount);
                if (!TryView(v, out P2m p))
                {
                    c[(int)Stat.ViewGone]++;
                    return;
                }

                for (int i = 0; i < 16; i++)
                {
                    ulong g = RandomProbeGfn(rng);
                    ulong gpa = (g << 12) | (uint)rng.Next(4096);
                    AccessKind kind = Pick(rng, s_kinds);
                    EptTranslation t = p.Translate(gpa, kind);
                    c[(int)Stat.Translates]++;
                    CheckTranslation(v, g, gpa, kind, t, c, "reader");

                    P2mEntry e = p.GetEntry(g);
                    c[(int)Stat.Gets]++;
                    if (e.IsMapped)
                    {
                        c[(int)Stat.GetMapped]++;
                        CheckEntry(v, g, e, "reader");
                    }
                }
            }

            private void CheckTranslation(int v, ulong g, ulong gpa, AccessKind kind, EptTranslation t, long[]? c, string who)
            {
                string what = $"{who}: view {v} Translate(0x{gpa:X}, {kind}) = {t}";
                if (t.Status == EptStatus.Violation)
                {
                    // SDM 29.3.3.2: bits 2:0 the access attempted, bits 5:3 the rights the walk
                    // found; a violation means those rights lack part of the access.
                    ulong attempted = t.Qualification & 7, rights = (t.Qualification >> 3) & 7;
                    if (attempted != (ulong)kind || (rights & attempted) == attempted || t.Hpa != 0 || t.Level is < 1 or > 4)
                    {
                        Report(what + ": not a violation of this access");
                    }

                    if (c is not null)
                    {
                        c[(int)Stat.Violations]++;
                    }

                    return;
                }

                if (t.Status != EptStatus.Ok)
                {
                    Report(what + ": only Ok or Violation are valid");
                    return;
                }

                if ((t.Hpa & 0xFFF) != (gpa & 0xFFF) || !Decode(t.Hpa >> 12, out ulong shown))
                {
                    Report(what + ": not a pool frame at the GPA's page offset");
                    return;
                }

                if (t.Level is not (1 or 2))
                {
                    Report(what + ": the leaf must be a PTE (4K) or a PDE (2M)");
                    return;
                }

                if (shown != g && (v == 0 || t.Level != 1 || !Reaches(v, g, shown)))
                {
                    Report(what + $": the frame of GFN 0x{shown:X}, and no remap of view {v} leads there");
                    return;
                }

                if (c is not null)
                {
                    c[(int)Stat.TranslateOk]++;
                    c[(int)Stat.TranslateOkInViews] += v != 0 ? 1 : 0;
                    c[(int)Stat.RemapSeen] += shown != g ? 1 : 0;
                    c[(int)Stat.SuperpageSeen] += t.Level == 2 ? 1 : 0;
                }
            }

            private void CheckEntry(int v, ulong g, in P2mEntry e, string who)
            {
                string what = $"{who}: view {v} GetEntry(0x{g:X}) = {e}";
                if (e.Type != P2mType.RamRw || e.Order is not (0 or 9) || !Decode(e.Mfn, out ulong shown))
                {
                    Report(what + ": only RamRw 4K/2M pool frames are ever mapped");
                    return;
                }

                if (e.Access is not (P2mAccess.N or P2mAccess.R or P2mAccess.RW or P2mAccess.X or P2mAccess.RX or P2mAccess.RWX))
                {
                    Report(what + ": an access no one set (nor the stricter of two set ones)");
                }

                if (shown != g && (v == 0 || e.Order != 0 || !Reaches(v, g, shown)))
                {
                    Report(what + $": the frame of GFN 0x{shown:X}, and no remap of view {v} leads there");
                }
            }

            // ---- after the run -------------------------------------------------------------

            // Every thread has stopped. Host entries name their own GFN's frames; a view entry
            // naming its own GFN's frame names the host's current one (propagation kept it in
            // sync, a removal removed it), and a remap names the host's current frame of the GFN
            // it leads to (a host change of a remap target resets the view).
            public void VerifyQuiescent()
            {
                for (ulong g = WindowGfn - Margin; g < WindowGfn + WindowPages + Margin; g++)
                {
                    P2mEntry h = Host.GetEntry(g);
                    if (h.IsMapped)
                    {
                        CheckEntry(0, g, h, "quiescent");
                    }

                    ulong gpa = (g << 12) | 0x5A8UL;
                    CheckTranslation(0, g, gpa, AccessKind.Read, Host.Translate(gpa, AccessKind.Read), null, "quiescent");
                }

                for (int v = 1; v < ViewCount; v++)
                {
                    if (!TryView(v, out P2m p))
                    {
                        continue;
                    }

                    for (ulong g = WindowGfn - Margin; g < WindowGfn + WindowPages + Margin; g++)
                    {
                        P2mEntry e = p.GetEntry(g);
                        ulong gpa = (g << 12) | 0x5A8UL;
                        EptTranslation t = p.Translate(gpa, AccessKind.Read);
                        CheckTranslation(v, g, gpa, AccessKind.Read, t, null, "quiescent");
                        if (!e.IsMapped)
                        {
                            if (t.Status == EptStatus.Ok)
                            {
                                Report($"quiescent: view {v} GFN 0x{g:X} translates ({t}) but GetEntry reads a hole");
                            }

                            continue;
                        }

                        CheckEntry(v, g, e, "quiescent");
                        if (t.Status == EptStatus.Ok && t.Hpa >> 12 != e.Mfn)
                        {
                            Report($"quiescent: view {v} GFN 0x{g:X} translates to {t} but GetEntry reads {e}");
                        }

                        if (!Decode(e.Mfn, out ulong shown))
                        {
                            continue;
                        }

                        P2mEntry h = Host.GetEntry(shown);
                        if (HasFrame(h) && h.Mfn == e.Mfn)
                        {
                            continue;
                        }

                        if (shown == g)
                        {
                            Report($"quiescent: view {v} GFN 0x{g:X} reads {e}, the host {h}: a host change was not propagated");
                        }
                        else
                        {
                            Report($"quiescent: view {v} remaps GFN 0x{g:X} to frame 0x{e.Mfn:X} of GFN 0x{shown:X}, which the host maps as {h}: "
                                   + "a host change of a remap target did not reset the view");
                        }
                    }
                }
            }

            // Every thread has stopped. A view never grants more than its own access, and a host
            // change of access leaves it the stricter of the two (docs/model/altp2m.md §4.5,
            // docs/divergences.md row 12): for a few host-mapped GFNs of each active view, set the
            // view's access, change the host's, and check what each access kind gets. Returns how
            // many GFNs were checked.
            public int VerifyRights()
            {
                (P2mAccess View, P2mAccess Host, uint Rights)[] steps =
                [
                    (P2mAccess.R, P2mAccess.RWX, 0b001),     // the view's r is stricter than the host's rwx
                    (P2mAccess.R, P2mAccess.RX, 0b001),
                    (P2mAccess.RWX, P2mAccess.R, 0b001),     // the host's r is stricter than the view's rwx
                    (P2mAccess.RX, P2mAccess.RW, 0b001),     // neither is a subset: r, the intersection
                    (P2mAccess.RW, P2mAccess.RWX, 0b011),
                    (P2mAccess.N, P2mAccess.RWX, 0b000),
                ];
                int checkedGfns = 0;
                for (int v = 1; v < ViewCount; v++)
                {
                    int here = 0;
                    for (ulong g = WindowGfn + 3; g < WindowGfn + WindowPages && here < 4; g += 97)
                    {
                        P2mEntry h = Host.GetEntry(g);
                        if (!HasFrame(h) || !TryView(v, out P2m p))
                        {
                            continue;
                        }

                        P2mEntry before = p.GetEntry(g);
                        if (before.IsMapped && before.Mfn != h.Mfn)
                        {
                            continue;       // a remapped GFN: it keeps its remap, whatever the host does
                        }

                        ulong frame = h.Mfn;
                        bool done = true;
                        foreach ((P2mAccess viewAccess, P2mAccess hostAccess, uint rights) in steps)
                        {
                            Host.SetEntry(g, frame, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                            if (!TryView(v, out p) || Alt.SetMemAccess(v, g, viewAccess) != P2mStatus.Ok)
                            {
                                done = false;
                                break;
                            }

                            Host.SetEntry(g, frame, PageOrder.Size4K, P2mType.RamRw, hostAccess);
                            if (!TryView(v, out p) || !p.GetEntry(g).IsMapped)
                            {
                                done = false;       // reset by the change (memory for a split ran out): nothing to check
                                break;
                            }

                            foreach (AccessKind kind in new[] { AccessKind.Read, AccessKind.Write, AccessKind.Execute })
                            {
                                ulong gpa = (g << 12) | 0x234;
                                EptTranslation t = p.Translate(gpa, kind);
                                bool granted = (rights & (uint)kind) != 0;
                                bool ok = granted
                                    ? t.Status == EptStatus.Ok && t.Hpa == ((frame << 12) | 0x234)
                                    : t.Status == EptStatus.Violation && ((t.Qualification >> 3) & 7) == rights;
                                if (!ok)
                                {
                                    Report($"rights: view {v} access {viewAccess}, host {hostAccess}: Translate(0x{gpa:X}, {kind}) = {t}, "
                                           + $"expected {(granted ? "Ok" : "a violation")} with rights {rights:B3}");
                                }
                            }
                        }

                        here += done ? 1 : 0;
                    }

                    checkedGfns += here;
                }

                return checkedGfns;
            }
        }
    }
}
