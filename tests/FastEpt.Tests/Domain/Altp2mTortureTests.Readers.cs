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
                if (t.Status == EptStatus.Violation)
                {
                    return;
                }

                string what = $"{who}: view {v} Translate(0x{gpa:X}, {kind}) = {t}";
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
        }
    }
}
