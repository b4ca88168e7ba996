// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.DomainTests
{
    public sealed partial class Altp2mModelTests
    {
        private sealed partial class Harness
        {
            private void OpHostSet()
            {
                int order = _rng.Next(10) < 3 ? 9 : 0;
                ulong count = 1UL << order;
                ulong gfn = RandomGfn() & ~(count - 1);
                int r = _rng.Next(100);
                if (r < 15)
                {
                    DoHostSet(gfn, order, Mfn.Invalid, P2mType.Invalid, P2mAccess.N, SuppressVe.Inherit);
                    return;
                }

                P2mType type = r switch
                {
                    < 65 => P2mType.RamRw,
                    < 73 => P2mType.RamRo,
                    < 81 => P2mType.RamLogDirty,
                    < 91 => P2mType.RamShared,
                    _ => P2mType.MmioDirect,
                };

                ulong mfn;
                Cell cur = _cells[0][gfn];
                if (type != P2mType.MmioDirect && cur.Mapped && cur.Mfn is >= PoolBase and < PoolBase + PoolFrames
                    && (cur.Mfn & (count - 1)) == 0 && _rng.Next(100) < (type == P2mType.RamShared ? 60 : 45))
                {
                    mfn = cur.Mfn;                        // same frame: no frame-change hazard
                }
                else if (type == P2mType.MmioDirect)
                {
                    mfn = (MmioBase + (ulong)_rng.NextInt64((long)MmioFrames)) & ~(count - 1);
                }
                else
                {
                    mfn = (PoolBase + (ulong)_rng.NextInt64((long)PoolFrames)) & ~(count - 1);
                }

                if (_rng.Next(100) == 0)
                {
                    // Write-without-read on a readable type: refused, nothing changes.
                    P2mAccess bad = _rng.Next(2) == 0 ? P2mAccess.W : P2mAccess.WX;
                    _desc = $"host SetEntry(0x{gfn:X}, 0x{mfn:X}, order {order}, {type}, {bad}) [expect ArgumentException]";
                    _opGfns.Add(gfn);
                    Assert.Throws<ArgumentException>("access", () => Host.SetEntry(gfn, mfn, (PageOrder)order, type, bad));
                    return;
                }

                P2mAccess access = s_hostAccess[_rng.Next(s_hostAccess.Length)];
                int s = _rng.Next(100);
                SuppressVe sve = s < 85 ? SuppressVe.Inherit : s < 93 ? SuppressVe.Clear : SuppressVe.Set;
                DoHostSet(gfn, order, mfn, type, access, sve);
            }

            private void DoHostSet(ulong gfn, int order, ulong mfn, P2mType type, P2mAccess access, SuppressVe sve)
            {
                _desc = type == P2mType.Invalid
                    ? $"host remove(0x{gfn:X}, order {order})"
                    : $"host SetEntry(0x{gfn:X}, 0x{mfn:X}, order {order}, {type}, {access}, {sve})";
                // Structural fact: the order of the host mapping (or hole) at the first GFN.
                int beforeOrder = Host.GetEntry(gfn).Order;
                Host.SetEntry(gfn, mfn, (PageOrder)order, type, access, sve);
                for (ulong i = 0; i < 1UL << order; i++)
                {
                    _opGfns.Add(gfn + i);
                }

                ModelHostWrite(gfn, order, mfn, type, access, sve, beforeOrder);
            }

            private void OpFault()
            {
                int cpu = _rng.Next(Vcpus);
                int view = PickView(hostWeight: 20);
                ulong gfn = RandomGfn();
                ulong offset = (ulong)_rng.Next(4096);
                int k = _rng.Next(10);
                AccessKind kind = k < 5 ? AccessKind.Read : k < 7 ? AccessKind.Execute : AccessKind.Write;
                _desc = $"vCPU {cpu} on view {view}: fault 0x{(gfn << 12) | offset:X} {kind}";
                _opGfns.Add(gfn);
                int viewHole = Alt.View(view).GetEntry(gfn).Order;
                int hostOrder = Host.GetEntry(gfn).Order;
                Vcpu vcpu = _domain.Vcpus[cpu];
                Alt.Switch(vcpu, view);
                _vcpuView[cpu] = view;
                FaultOutcome actual = _domain.HandleEptViolation(vcpu, (gfn << 12) | offset, kind, null);
                FaultOutcome expected = ModelFault(view, gfn, kind, viewHole, hostOrder);
                if (actual != expected)
                {
                    Fail($"outcome {actual}, model {expected}");
                }
            }

            private void OpSetMemAccess()
            {
                int view = PickView(hostWeight: 25);
                ulong gfn = RandomGfn();
                int r = _rng.Next(100);
                P2mAccess a = r < 4 ? (r < 2 ? P2mAccess.W : P2mAccess.WX) : s_viewAccess[_rng.Next(s_viewAccess.Length)];
                _desc = $"SetMemAccess(view {view}, 0x{gfn:X}, {a})";
                _opGfns.Add(gfn);
                int viewHole = Alt.View(view).GetEntry(gfn).Order;
                int hostOrder = Host.GetEntry(gfn).Order;
                Outcome actual;
                try
                {
                    actual = ToOutcome(Alt.SetMemAccess(view, gfn, a));
                }
                catch (ArgumentException ex) when (ex.ParamName == "access" && ex is not ArgumentOutOfRangeException)
                {
                    actual = Outcome.ThrowsAccess;
                }

                Outcome expected = ModelSetMemAccess(view, gfn, a, viewHole, hostOrder);
                ExpectOutcome(actual, expected);
            }

            private void OpSetSuppressVe()
            {
                int view = PickView(hostWeight: 25);
                ulong gfn = RandomGfn();
                bool sve = _rng.Next(2) == 0;
                _desc = $"SetSuppressVe(view {view}, 0x{gfn:X}, {sve})";
                _opGfns.Add(gfn);
                Outcome actual = ToOutcome(Alt.SetSuppressVe(view, gfn, sve));
                Outcome expected = ModelSetSuppressVe(view, gfn, sve);
                ExpectOutcome(actual, expected);
            }

            private void OpQuery()
            {
                int view = PickView(hostWeight: 25);
                ulong gfn = RandomGfn();
                _desc = $"GetSuppressVe/GetMemAccess(view {view}, 0x{gfn:X})";
                _opGfns.Add(gfn);
                CheckQueries(view, gfn);
            }

            private void OpChangeGfn()
            {
                int view = PickAltView();
                if (view == 0)
                {
                    OpCreateView();
                    return;
                }

                // Now and then a GFN whose view entry has suppress-#VE clear: the remap must set it.
                ulong oldGfn = _rng.Next(100) < 15 && PickViewGfn(view, c => c.Mapped && !c.SuppressVe) is ulong held
                    ? held
                    : RandomGfn();
                ulong newGfn;
                if (_rng.Next(100) < 20)
                {
                    if (_remapped[view].Count > 0 && _rng.Next(2) == 0)
                    {
                        oldGfn = _remapped[view].ElementAt(_rng.Next(_remapped[view].Count));
                    }

                    newGfn = Mfn.Invalid;
                }
                else
                {
                    // Mostly a small cluster of remap targets, so that remapped ranges stay narrow
                    // and views live long enough between resets; sometimes anywhere.
                    int t = _rng.Next(100);
                    newGfn = t < 80 ? RemapCluster + (ulong)_rng.Next(32)
                        : t < 90 ? (oldGfn & ~511UL) + (ulong)_rng.Next(512)
                        : RandomGfn();
                }

                _desc = newGfn == Mfn.Invalid
                    ? $"ChangeGfn(view {view}, 0x{oldGfn:X}, INVALID)"
                    : $"ChangeGfn(view {view}, 0x{oldGfn:X}, 0x{newGfn:X})";
                _opGfns.Add(oldGfn);
                if (newGfn != Mfn.Invalid)
                {
                    _opGfns.Add(newGfn);
                }

                int oldHole = Alt.View(view).GetEntry(oldGfn).Order;
                int oldHostOrder = Host.GetEntry(oldGfn).Order;
                Outcome actual = ToOutcome(Alt.ChangeGfn(view, oldGfn, newGfn));
                Outcome expected = ModelChangeGfn(view, oldGfn, newGfn, oldHole, oldHostOrder);
                ExpectOutcome(actual, expected);
            }

            private void OpCreateView()
            {
                P2mAccess a = s_viewAccess[_rng.Next(s_viewAccess.Length)];
                int free = 0;
                for (int v = 1; v <= AltViews; v++)
                {
                    if (!_active[v])
                    {
                        free = v;
                        break;
                    }
                }

                if (free == 0)
                {
                    _desc = $"CreateView({a}) with every view active [expect InvalidOperationException]";
                    Assert.Throws<InvalidOperationException>(() => Alt.CreateView(a));
                    if (_rng.Next(2) == 0)
                    {
                        int v = 1 + _rng.Next(AltViews);
                        _desc = $"CreateViewAt({v}, {a}) on an active view [expect ArgumentException]";
                        Assert.Throws<ArgumentException>("view", () => Alt.CreateViewAt(v, a));
                    }

                    return;
                }

                int index;
                if (_rng.Next(10) < 3)
                {
                    var inactive = Enumerable.Range(1, AltViews).Where(v => !_active[v]).ToArray();
                    index = inactive[_rng.Next(inactive.Length)];
                    _desc = $"CreateViewAt({index}, {a})";
                    Alt.CreateViewAt(index, a);
                }
                else
                {
                    _desc = $"CreateView({a})";
                    index = Alt.CreateView(a);
                    if (index != free)
                    {
                        Fail($"CreateView returned {index}, model's first free view is {free}");
                    }
                }

                _active[index] = true;
                _default[index] = a;
                _remapped[index].Clear();
                _minRemap[index] = ulong.MaxValue;
                _maxRemap[index] = 0;
                _fullCompare[index] = true;       // a new view is empty
                if (Alt.DefaultAccess(index) != a)
                {
                    Fail($"DefaultAccess({index}) = {Alt.DefaultAccess(index)}, expected {a}");
                }
            }

            private void OpDestroyView()
            {
                int view = PickAltView();
                if (view == 0)
                {
                    OpCreateView();
                    return;
                }

                _desc = $"DestroyView({view})";
                for (int c = 0; c < Vcpus; c++)
                {
                    if (_vcpuView[c] != view)
                    {
                        continue;
                    }

                    if (_rng.Next(2) == 0)
                    {
                        _desc = $"DestroyView({view}) while vCPU {c} uses it [expect InvalidOperationException]";
                        Assert.Throws<InvalidOperationException>(() => Alt.DestroyView(view));
                    }

                    Alt.Switch(_domain.Vcpus[c], 0);
                    _vcpuView[c] = 0;
                }

                _desc = $"DestroyView({view})";
                Alt.DestroyView(view);
                for (ulong g = 0; g < WindowFrames; g++)
                {
                    Set(view, g, default);
                }

                _active[view] = false;
                _remapped[view].Clear();
                _minRemap[view] = ulong.MaxValue;
                _maxRemap[view] = 0;
            }

            // ---- helpers ------------------------------------------------------------------

            // Uniform over the window, or one of a few hot GFNs, or a GFN a recent operation
            // used, so that operations meet each other's entries.
            private ulong RandomGfn()
            {
                int r = _rng.Next(10);
                return r < 2 ? _hot[_rng.Next(_hot.Length)]
                    : r < 4 ? _recent[_rng.Next(_recent.Length)]
                    : (ulong)_rng.Next((int)WindowFrames);
            }

            // 0 (the host) with hostWeight percent, else a random active alternate view (0 if none).
            private int PickView(int hostWeight)
            {
                if (_rng.Next(100) < hostWeight)
                {
                    return 0;
                }

                return PickAltView();
            }

            // A random GFN whose model entry in the view satisfies the predicate, or null.
            private ulong? PickViewGfn(int view, Func<Cell, bool> predicate)
            {
                var found = new List<ulong>();
                for (ulong g = 0; g < WindowFrames; g++)
                {
                    if (predicate(_cells[view][g]))
                    {
                        found.Add(g);
                    }
                }

                return found.Count == 0 ? null : found[_rng.Next(found.Count)];
            }

            private int PickAltView()
            {
                int n = _active.Skip(1).Count(a => a);
                if (n == 0)
                {
                    return 0;
                }

                int pick = _rng.Next(n);
                for (int v = 1; v <= AltViews; v++)
                {
                    if (_active[v] && pick-- == 0)
                    {
                        return v;
                    }
                }

                return 0;
            }
        }
    }
}
