// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.P2mTests
{
    public sealed partial class P2mModelTests
    {
        private sealed partial class Harness
        {
            private void DoSet()
            {
                int order = _rng.Next(100) switch
                {
                    < 3 => 18,
                    < 30 => 9,
                    _ => 0,
                };
                ulong gfn = PickGfn(order);
                P2mType type = s_typeTable[_rng.Next(s_typeTable.Length)];
                var access = (P2mAccess)_rng.Next(11);
                bool foreignTooBig = type == P2mType.MapForeign && order != 0;
                if (foreignTooBig && IsWriteWithoutRead(type, access))
                {
                    access = P2mAccess.RWX;     // one argument error at a time
                }

                var sve = (SuppressVe)_rng.Next(3);
                ulong mfn = PickMfn(type, order);
                _current = $"SetEntry(0x{gfn:X}, {FormatMfn(mfn)}, {(PageOrder)order}, {type}, {access}, {sve})";

                if (foreignTooBig)
                {
                    ExpectRejected<ArgumentOutOfRangeException>("order", () => _p2m.SetEntry(gfn, mfn, (PageOrder)order, type, access, sve));
                }
                else if (IsWriteWithoutRead(type, access))
                {
                    ExpectRejected<ArgumentException>("access", () => _p2m.SetEntry(gfn, mfn, (PageOrder)order, type, access, sve));
                }
                else
                {
                    try
                    {
                        _p2m.SetEntry(gfn, mfn, (PageOrder)order, type, access, sve);
                    }
                    catch (Exception ex)
                    {
                        Fail($"SetEntry threw {ex}");
                    }

                    _model.Set(gfn, mfn, order, type, access, sve);
                    if (type == P2mType.PopulateOnDemand)
                    {
                        _lastPodGfn = gfn;
                        _lastPodOrder = order;
                    }
                }

                CheckAround(gfn, order);
            }

            private void DoPopulate()
            {
                ulong gfn = _rng.Next(2) == 0 ? _lastPodGfn + (ulong)_rng.NextInt64(1L << _lastPodOrder) : PickGfn(0);
                _current = $"GetEntry(0x{gfn:X}, Alloc) with {_pool.FreeFrames} cached frames";
                Cell before = _model[gfn];
                P2mEntry actual = default;
                try
                {
                    actual = _p2m.GetEntry(gfn, P2mQuery.Alloc);
                }
                catch (Exception ex)
                {
                    Fail($"GetEntry(Alloc) threw {ex}");
                }

                if (!before.Mapped || before.Type != P2mType.PopulateOnDemand)
                {
                    CompareEntry(gfn, actual);     // nothing to populate: a plain read
                }
                else
                {
                    ApplyPopulate(gfn, before.Order, actual);
                }

                CheckAround(gfn, 0);
            }

            // docs/model/p2m.md §3.6: 1G PoD is re-marked as 2M PoD; 2M is backed by a cached 2M page, else
            // (if the cache holds 4K pages) re-marked as 4K PoD; 4K is backed by a cached page.
            private void ApplyPopulate(ulong gfn, int order, P2mEntry actual)
            {
                if (order == 18)
                {
                    _model.Set(gfn & ~511UL, Mfn.Invalid, 9, P2mType.PopulateOnDemand, P2mAccess.N, SuppressVe.Inherit);
                    order = 9;
                }

                if (order == 9)
                {
                    if (_pool.Has2M)
                    {
                        ulong pageBase = unchecked(actual.Mfn - (gfn & 511));
                        if (!actual.IsMapped || actual.Type != P2mType.RamRw || actual.Order != 9 || !_pool.Take2M(pageBase))
                        {
                            Fail($"expected a 2M populate from a cached 2M page, got {actual}");
                        }

                        _model.Set(gfn & ~511UL, pageBase, 9, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Inherit);
                        CompareEntry(gfn, actual);
                        return;
                    }

                    if (_pool.IsEmpty)
                    {
                        ExpectPopulateFailed(actual, 9);
                        return;
                    }

                    _model.Set(gfn, Mfn.Invalid, 0, P2mType.PopulateOnDemand, P2mAccess.N, SuppressVe.Inherit);
                }

                if (_pool.IsEmpty)
                {
                    ExpectPopulateFailed(actual, 0);
                    return;
                }

                if (!actual.IsMapped || actual.Type != P2mType.RamRw || actual.Order != 0 || !_pool.Take4K(actual.Mfn))
                {
                    Fail($"expected a 4K populate from the cache, got {actual}");
                }

                _model.Set(gfn, actual.Mfn, 0, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Inherit);
                CompareEntry(gfn, actual);
            }

            private void ExpectPopulateFailed(P2mEntry actual, int order)
            {
                if (actual.IsMapped || actual.Mfn != Mfn.Invalid || actual.Type != P2mType.MmioDm || actual.Access != P2mAccess.N
                    || !actual.SuppressVe || actual.Order != order)
                {
                    Fail($"populate with an empty cache: expected a hole of order {order}, got {actual}");
                }
            }

            private void DoAddPodPages()
            {
                if (_rng.Next(10) == 0)
                {
                    ulong mfn = PoolBase + ((ulong)_rng.Next((int)Pool2MChunks) << 9);
                    _current = $"Pod.AddPage(0x{mfn:X}, 2M)";
                    if (_pool.CanAdd2M(mfn))
                    {
                        _p2m.Pod.AddPage(mfn, PageOrder.Size2M);
                        _pool.Add(mfn, PageOrder.Size2M);
                    }
                }
                else
                {
                    int n = _rng.Next(1, 3);
                    _current = $"Pod.AddPage x{n} 4K";
                    for (int i = 0; i < n; i++)
                    {
                        ulong mfn = Pool4KBase + (ulong)_rng.Next((int)Pool4KFrames);
                        if (_pool.CanAdd4K(mfn))
                        {
                            _p2m.Pod.AddPage(mfn, PageOrder.Size4K);
                            _pool.Add(mfn, PageOrder.Size4K);
                        }
                    }
                }
            }

            private void DoProbe()
            {
                _current = "probe";
                for (int i = 0; i < 4; i++)
                {
                    Check(PickGfn(0));
                }

                Check(WindowBase + (ulong)_rng.NextInt64((long)WindowFrames));
            }

            private ulong PickGfn(int order)
            {
                ulong region = WindowBase + (ulong)_rng.Next(4) * RegionFrames;
                if (order == 18)
                {
                    return region;
                }

                int block = _rng.Next(100) < 70 ? s_hot2M[_rng.Next(s_hot2M.Length)] : _rng.Next(512);
                ulong gfn = region + ((ulong)block << 9);
                if (order == 9)
                {
                    return gfn;
                }

                return gfn + (ulong)(_rng.Next(2) == 0 ? s_hot4K[_rng.Next(s_hot4K.Length)] : _rng.Next(512));
            }

            private ulong PickMfn(P2mType type, int order)
            {
                switch (type)
                {
                    case P2mType.PopulateOnDemand:
                        return Mfn.Invalid;
                    case P2mType.RamPagingOut or P2mType.RamPaged or P2mType.RamPagingIn:
                        return _rng.Next(5) == 0 ? AlignedIn(0, GuestFrames, order) : Mfn.Invalid;
                    case P2mType.Invalid:
                        return _rng.Next(10) == 0 ? AlignedIn(0, GuestFrames, order) : Mfn.Invalid;
                    case P2mType.MmioDm:
                        return _rng.Next(2) == 0 ? Mfn.Invalid : AlignedIn(0, MmioLimit, order);
                    case P2mType.MmioDirect:
                        // Pass-through frames may lie beyond host memory, up to MAXPHYADDR.
                        return _rng.Next(2) == 0 ? AlignedIn(0, GuestFrames, order) : AlignedIn(GuestFrames, MmioLimit, order);
                    default:
                        Assert.True(IsRamBacked(type));
                        return order == 0 && _rng.Next(40) == 0 ? 0 : AlignedIn(0, GuestFrames, order);
                }
            }

            private ulong AlignedIn(ulong low, ulong high, int order)
                => (ulong)_rng.NextInt64((long)(low >> order), (long)(high >> order)) << order;

            private void ExpectRejected<TException>(string paramName, Action action)
                where TException : ArgumentException
            {
                // Frames pending reclamation may be freed by any p2m's pass at any time: drain first.
                P2mConcurrencyTests.ReclaimUntilEmpty(_p2m);
                long tables = _p2m.TableFrameCount;
                long allocated = _memory.AllocatedFrameCount;
                try
                {
                    action();
                }
                catch (Exception ex) when (ex.GetType() == typeof(TException))
                {
                    if (((ArgumentException)ex).ParamName != paramName)
                    {
                        Fail($"{typeof(TException).Name} named '{((ArgumentException)ex).ParamName}', expected '{paramName}'");
                    }

                    if (_p2m.TableFrameCount != tables || _memory.AllocatedFrameCount != allocated)
                    {
                        Fail($"a rejected call changed the tables: {tables} -> {_p2m.TableFrameCount} tables, {allocated} -> {_memory.AllocatedFrameCount} frames");
                    }

                    return;
                }
                catch (Exception ex)
                {
                    Fail($"expected {typeof(TException).Name}({paramName}), got {ex}");
                }

                Fail($"expected {typeof(TException).Name}({paramName}), nothing was thrown");
            }
        }
    }
}
