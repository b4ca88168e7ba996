// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.DomainTests
{
    public sealed partial class Altp2mTortureTests
    {
        private sealed partial class World
        {
            // ---- 2. view operator --------------------------------------------------------
            // The only thread that creates and destroys views, so IsActive is stable here: an
            // operation on an inactive view must throw, one on an active view must not.

            public void ViewOperatorStep(Random rng, long[] c)
            {
                int v = rng.Next(ViewCount);
                bool active = Alt.IsActive(v);
                ulong g = RandomGfn(rng);
                int r = rng.Next(100);
                if (r < 22)
                {
                    P2mAccess a = Pick(rng, s_viewAccesses);
                    if (!Inactive(active, c, () => Alt.SetMemAccess(v, g, a)))
                    {
                        CountStatus(Alt.SetMemAccess(v, g, a), c, Stat.SetMemAccess, $"SetMemAccess({v}, 0x{g:X}, {a})");
                    }
                }
                else if (r < 32)
                {
                    bool suppress = rng.Next(3) == 0;
                    if (!Inactive(active, c, () => Alt.SetSuppressVe(v, g, suppress)))
                    {
                        CountStatus(Alt.SetSuppressVe(v, g, suppress), c, Stat.SetSuppressVe, $"SetSuppressVe({v}, 0x{g:X}, {suppress})");
                    }
                }
                else if (r < 38)
                {
                    Query(v, active, g, c);
                }
                else if (r < 68)
                {
                    int av = 1 + rng.Next(AltViews);
                    ulong target = RandomTarget(rng);
                    if (target != g && !Inactive(Alt.IsActive(av), c, () => Alt.ChangeGfn(av, g, target)))
                    {
                        RecordRemap(av, g, target);     // before: a reader may see it as soon as it is written
                        if (CountStatus(Alt.ChangeGfn(av, g, target), c, Stat.Remaps, $"ChangeGfn({av}, 0x{g:X}, 0x{target:X})"))
                        {
                            _recentRemaps.Add((av, g));
                        }
                    }
                }
                else if (r < 78)
                {
                    if (_recentRemaps.Count != 0)
                    {
                        int k = rng.Next(_recentRemaps.Count);
                        (int uv, ulong ug) = _recentRemaps[k];
                        _recentRemaps[k] = _recentRemaps[^1];
                        _recentRemaps.RemoveAt(_recentRemaps.Count - 1);
                        if (!Inactive(Alt.IsActive(uv), c, () => Alt.ChangeGfn(uv, ug, Mfn.Invalid)))
                        {
                            CountStatus(Alt.ChangeGfn(uv, ug, Mfn.Invalid), c, Stat.Undos, $"ChangeGfn({uv}, 0x{ug:X}, INVALID)");
                        }
                    }
                }
                else if (r < 86)
                {
                    Vcpu cpu = D.Vcpus[rng.Next(Vcpus)];
                    if (!Inactive(active, c, () => Alt.Switch(cpu, v)))
                    {
                        Alt.Switch(cpu, v);
                        c[(int)Stat.Switches]++;
                    }
                }
                else if (r < 87)
                {
                    bool expect = v == 0 || (active && Alt.IsVisible(v));
                    if (Alt.SwitchAll(v) != expect)
                    {
                        Report($"SwitchAll({v}) answered {!expect} for an {(active ? "active" : "inactive")} view");
                    }

                    c[(int)Stat.SwitchAll]++;
                }
                else if (r < 90)
                {
                    bool visible = rng.Next(4) != 0;
                    if (v != 0 && !Inactive(active, c, () => Alt.SetVisibility(v, visible)))
                    {
                        Alt.SetVisibility(v, visible);
                        c[(int)Stat.Visibility]++;
                    }
                }
                else if (r < 92)
                {
                    CreateOrDestroy(rng, c);
                }
                else
                {
                    while (D.MemAccessEvents.TryRead(out MemAccessEvent ev))
                    {
                        if (ev.Kind != MemAccessEventKind.ViewReset)
                        {
                            Report($"unexpected event {ev.Kind} (no mem_access listener is attached)");
                        }

                        c[(int)Stat.Events]++;
                    }
                }
            }

            private void Query(int v, bool active, ulong g, long[] c)
            {
                if (Inactive(active, c, () => Alt.GetSuppressVe(v, g, out _)))
                {
                    Assert.Throws<ArgumentException>("view", () => Alt.GetMemAccess(v, g, out _));
                    Assert.Throws<ArgumentException>("view", () => Alt.RemappedRange(v));
                    return;
                }

                CountStatus(Alt.GetSuppressVe(v, g, out _), c, Stat.Queries, "GetSuppressVe");
                CountStatus(Alt.GetMemAccess(v, g, out P2mAccess seen), c, Stat.Queries, "GetMemAccess");
                if (seen is P2mAccess.W or P2mAccess.WX or P2mAccess.RX2RW or P2mAccess.N2RWX or P2mAccess.R_PW)
                {
                    Report($"GetMemAccess({v}, 0x{g:X}) answered {seen}, an access no one set");
                }

                (ulong min, ulong max) = Alt.RemappedRange(v);
                if (min <= max && (min < WindowGfn || max >= WindowGfn + WindowPages))
                {
                    Report($"RemappedRange({v}) = [0x{min:X}, 0x{max:X}] leaves the window");
                }
            }

            private void CreateOrDestroy(Random rng, long[] c)
            {
                int active = Alt.ActiveViewCount;
                if (active < AltViews && (active <= MinActiveViews || rng.Next(2) == 0))
                {
                    P2mAccess a = Pick(rng, s_viewAccesses);
                    int created;
                    if (rng.Next(2) == 0)
                    {
                        created = Alt.CreateView(a);
                    }
                    else
                    {
                        created = Pick(rng, Enumerable.Range(1, AltViews).Where(i => !Alt.IsActive(i)).ToArray());
                        Alt.CreateViewAt(created, a);
                    }

                    if (!Alt.IsActive(created) || Alt.DefaultAccess(created) != a || Alt.RemappedRange(created) != (ulong.MaxValue, 0UL))
                    {
                        Report($"view {created} created with {a} reads active={Alt.IsActive(created)}, "
                               + $"default {Alt.DefaultAccess(created)}, remapped range {Alt.RemappedRange(created)}");
                    }

                    c[(int)Stat.Created]++;
                    return;
                }

                int v = Pick(rng, Enumerable.Range(1, AltViews).Where(Alt.IsActive).ToArray());
                foreach (Vcpu cpu in D.Vcpus)
                {
                    if (cpu.View == v)
                    {
                        Alt.Switch(cpu, 0);
                    }
                }

                try
                {
                    Alt.DestroyView(v);
                    c[(int)Stat.Destroyed]++;
                    if (Alt.IsActive(v))
                    {
                        Report($"view {v} still active after DestroyView");
                    }

                    _recentRemaps.RemoveAll(x => x.View == v);
                    ForgetViewRemaps(v);
                }
                catch (InvalidOperationException e) when (e.Message.Contains("is in use by vCPU", StringComparison.Ordinal))
                {
                    c[(int)Stat.DestroyInUse]++;     // a fault thread switched a vCPU onto it meanwhile
                }
            }

            // True (after checking that it throws as documented) when the view is inactive.
            private static bool Inactive(bool active, long[] c, Action op)
            {
                if (active)
                {
                    return false;
                }

                Assert.Throws<ArgumentException>("view", op);
                c[(int)Stat.InactiveViewOps]++;
                return true;
            }

            private static bool CountStatus(P2mStatus st, long[] c, Stat stat, string what)
            {
                if (st is not (P2mStatus.Ok or P2mStatus.NoEntry))
                {
                    throw new Xunit.Sdk.XunitException($"{what} answered {st}; only Ok or NoEntry are possible on RamRw-only memory");
                }

                c[(int)(st == P2mStatus.Ok ? stat : Stat.NoEntry)]++;
                return st == P2mStatus.Ok;
            }

            // ---- 3. fault threads ----------------------------------------------------------

            public void FaultStep(Random rng, long[] c, int firstVcpu, int vcpus)
            {
                int id = firstVcpu + rng.Next(vcpus);
                Vcpu cpu = D.Vcpus[id];
                if (rng.Next(4) == 0)
                {
                    int v = rng.Next(ViewCount);
                    try
                    {
                        Alt.Switch(cpu, v);
                    }
                    catch (ArgumentException e) when (e.ParamName == "view" && v != 0)
                    {
                        c[(int)Stat.FaultSwitchInactive]++;   // destroyed meanwhile
                    }
                }

                ulong gpa = (RandomProbeGfn(rng) << 12) | (uint)rng.Next(4096);
                AccessKind kind = Pick(rng, s_kinds);
                ulong? gla = rng.Next(2) == 0 ? null : 0x7FFF_0000_0000UL + gpa;
                FaultOutcome o = D.HandleEptViolation(cpu, gpa, kind, gla);
                c[(int)Stat.Faults]++;
                switch (o)
                {
                    case FaultOutcome.Retry:
                        c[(int)Stat.FaultRetry]++;
                        break;
                    case FaultOutcome.Unhandled:
                        c[(int)Stat.FaultUnhandled]++;
                        break;
                    case FaultOutcome.VirtualizationException:
                        c[(int)Stat.FaultVe]++;
                        int vector = cpu.TakePendingVector();
                        if (vector != Domain.VeVector)
                        {
                            Report($"#VE delivered to vCPU {id} but its pending vector is {vector}");
                        }

                        // The guest consumes the #VE: release the information page's semaphore.
                        Memory.WriteUInt64(VeFrame(id) << 12, 0);
                        break;
                    default:
                        // No MMIO, no listener (violations relax and retry), RamRw only.
                        Report($"fault at 0x{gpa:X} ({kind}) on vCPU {id} (view {cpu.View}) answered {o}");
                        break;
                }

                if (cpu.IsPaused || D.IsCrashed)
                {
                    Report($"vCPU {id} paused={cpu.IsPaused}, domain crashed={D.IsCrashed} ({D.CrashReason}) with no listener attached");
                }
            }
        }
    }
}
