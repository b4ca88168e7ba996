// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.DomainTests
{
    public sealed partial class Altp2mModelTests
    {
        private sealed partial class Harness
        {
            // ---- the model ----------------------------------------------------------------

            // A host write of 2^order GFNs, then its propagation into the views. beforeOrder is
            // the order the host reported at gfn just before the write.
            private void ModelHostWrite(ulong gfn, int order, ulong mfn, P2mType type, P2mAccess access, SuppressVe sveMode, int beforeOrder)
            {
                ulong count = 1UL << order;
                bool removal = type == P2mType.Invalid;
                Cell first = _cells[0][gfn];
                // A 2 MiB write with Inherit takes the bit of a 2 MiB leaf in its slot; a table
                // pointer or an empty slot gives 1. A 4 KiB write inherits per GFN.
                bool blockSve = !(first.Mapped && beforeOrder == order) || first.SuppressVe;
                for (ulong i = 0; i < count; i++)
                {
                    ulong g = gfn + i;
                    Cell old = _cells[0][g];
                    if (removal)
                    {
                        Set(0, g, default);
                        continue;
                    }

                    bool sve = sveMode switch
                    {
                        SuppressVe.Set => true,
                        SuppressVe.Clear => false,
                        _ => order == 0 ? !old.Mapped || old.SuppressVe : blockSve,
                    };
                    Set(0, g, Cell.Of(mfn + i, type, access, sve));
                }

                if (!Enumerable.Range(1, AltViews).Any(v => _active[v]))
                {
                    return;
                }

                // (a) A removal, a shared page, or frames that may have moved, inside a view's
                // remapped range reset that view; two such views reset every view. The frames are
                // known unchanged only when the first GFN keeps its frame and was mapped by one
                // entry at least as large as the write (or, for 4 KiB, had no frame).
                bool sameFrames = first.Mapped ? first.Mfn == mfn && beforeOrder >= order : order == 0;
                bool hazard = removal || type == P2mType.RamShared || !sameFrames;
                int firstReset = 0;
                if (hazard)
                {
                    for (int v = 1; v <= AltViews; v++)
                    {
                        if (!_active[v] || _minRemap[v] > _maxRemap[v] || !(gfn + count > _minRemap[v] && gfn <= _maxRemap[v]))
                        {
                            continue;
                        }

                        if (firstReset == 0)
                        {
                            firstReset = v;
                            continue;
                        }

                        for (int j = 1; j <= AltViews; j++)
                        {
                            if (_active[j])
                            {
                                ResetView(j);
                            }
                        }

                        return;
                    }

                    if (firstReset != 0)
                    {
                        ResetView(firstReset);
                    }
                }

                // (b) Every other view's own copies follow the host, never widened; remaps stay.
                for (int v = 1; v <= AltViews; v++)
                {
                    if (!_active[v] || v == firstReset)
                    {
                        continue;
                    }

                    for (ulong i = 0; i < count; i++)
                    {
                        ulong g = gfn + i;
                        Cell e = _cells[v][g];
                        if (!e.Mapped || _remapped[v].Contains(g))
                        {
                            continue;
                        }

                        Set(v, g, removal
                            ? default
                            : Cell.Of(mfn + i, type, Representable(type, Stricter(e.Access, access)), e.SuppressVe));
                    }
                }
            }

            private void ResetView(int view)
            {
                for (ulong g = 0; g < WindowFrames; g++)
                {
                    Set(view, g, default);
                }

                _remapped[view].Clear();
                _minRemap[view] = ulong.MaxValue;
                _maxRemap[view] = 0;
                _resets++;
                _resetViews.Add(view);
            }

            // Copies the host's 2^order block around gfn into the view with its default access.
            private void CopyBlock(int view, ulong gfn, int order)
            {
                ulong size = 1UL << order;
                ulong block = gfn & ~(size - 1);
                for (ulong b = block; b < block + size; b++)
                {
                    Cell h = _cells[0][b];
                    Set(view, b, h.Mapped ? Cell.Of(h.Mfn, h.Type, Representable(h.Type, _default[view]), true) : default);
                }
            }

            private FaultOutcome ModelFault(int view, ulong gfn, AccessKind kind, int viewHole, int hostOrder)
            {
                bool write = (kind & AccessKind.Write) != 0;
                uint need = (uint)kind | (write ? 1u : 0u);      // a write also reads
                Cell host = _cells[0][gfn];
                if (write && host.Mapped && host.Type == P2mType.RamShared)
                {
                    return FaultOutcome.Unhandled;               // no unshare callback
                }

                if (view != 0 && !_cells[view][gfn].Mapped && host.Mapped)
                {
                    CopyBlock(view, gfn, Math.Min(viewHole, hostOrder));
                    return FaultOutcome.Retry;                   // lazy copy
                }

                Cell e = _cells[view][gfn];
                if (!e.Mapped)
                {
                    return FaultOutcome.Unhandled;
                }

                if ((need & ~Rights(e.Access)) != 0)
                {
                    // mem_access violation with no listener: rx2rw promoted on a write, else relaxed to rwx.
                    P2mAccess relaxed = Representable(e.Type, write && e.Access == P2mAccess.RX2RW ? P2mAccess.RW : P2mAccess.RWX);
                    if (view == 0)
                    {
                        ModelHostWrite(gfn, 0, e.Mfn, e.Type, relaxed, SuppressVe.Inherit, 0);
                    }
                    else
                    {
                        Set(view, gfn, e with { Access = relaxed });
                    }

                    return FaultOutcome.Retry;
                }

                if (write)
                {
                    switch (e.Type)
                    {
                        case P2mType.RamRo or P2mType.MmioDirect:
                            return FaultOutcome.Mmio;
                        case P2mType.RamLogDirty:
                            if (host.Mapped && host.Type == P2mType.RamLogDirty)
                            {
                                ModelHostWrite(gfn, 0, host.Mfn, P2mType.RamRw, host.Access, SuppressVe.Inherit, 0);
                            }

                            return FaultOutcome.Retry;
                        case P2mType.RamShared:
                            return FaultOutcome.Unhandled;
                    }
                }

                return (need & ~TypeRwx(e.Type)) == 0 ? FaultOutcome.Retry : FaultOutcome.Unhandled;
            }

            private Outcome ModelSetMemAccess(int view, ulong gfn, P2mAccess a, int viewHole, int hostOrder)
            {
                Cell h = _cells[0][gfn];
                if (view == 0)
                {
                    if (!h.Mapped)
                    {
                        return Outcome.NoEntry;
                    }

                    if (IsWriteWithoutRead(h.Type, a))
                    {
                        return Outcome.ThrowsAccess;
                    }

                    ModelHostWrite(gfn, 0, h.Mfn, h.Type, a, SuppressVe.Inherit, 0);
                    return Outcome.Ok;
                }

                Cell e = _cells[view][gfn];
                if (e.Mapped)
                {
                    if (IsWriteWithoutRead(e.Type, a))
                    {
                        return Outcome.ThrowsAccess;
                    }

                    Set(view, gfn, e with { Access = a });
                    return Outcome.Ok;
                }

                if (!h.Mapped)
                {
                    return Outcome.NoEntry;
                }

                if (h.Type != P2mType.RamRw)
                {
                    return Outcome.InvalidType;
                }

                if (IsWriteWithoutRead(h.Type, a))
                {
                    return Outcome.ThrowsAccess;
                }

                if (hostOrder > 0 && viewHole >= hostOrder)
                {
                    CopyBlock(view, gfn, hostOrder);             // the whole host superpage first
                }

                Set(view, gfn, Cell.Of(h.Mfn, P2mType.RamRw, a, true));
                return Outcome.Ok;
            }

            private Outcome ModelSetSuppressVe(int view, ulong gfn, bool sve)
            {
                Cell h = _cells[0][gfn];
                if (view == 0)
                {
                    if (!h.Mapped)
                    {
                        return Outcome.NoEntry;
                    }

                    ModelHostWrite(gfn, 0, h.Mfn, h.Type, h.Access, sve ? SuppressVe.Set : SuppressVe.Clear, 0);
                    return Outcome.Ok;
                }

                Cell e = _cells[view][gfn];
                if (e.Mapped)
                {
                    Set(view, gfn, e with { SuppressVe = sve });
                    return Outcome.Ok;
                }

                if (!h.Mapped)
                {
                    return Outcome.NoEntry;
                }

                if (h.Type != P2mType.RamRw)
                {
                    return Outcome.InvalidType;
                }

                Set(view, gfn, Cell.Of(h.Mfn, P2mType.RamRw, Representable(P2mType.RamRw, _default[view]), sve));
                return Outcome.Ok;
            }

            private Outcome ModelChangeGfn(int view, ulong oldGfn, ulong newGfn, int oldHole, int oldHostOrder)
            {
                if (newGfn == Mfn.Invalid)
                {
                    if (_cells[view][oldGfn].Mapped)
                    {
                        Set(view, oldGfn, default);
                    }

                    if (_remapped[view].Remove(oldGfn))
                    {
                        // Keep the GFN in play: it must be an ordinary GFN of the view again.
                        for (int i = 0; i < 6; i++)
                        {
                            _recent[_recentNext++ % _recent.Length] = oldGfn;
                        }
                    }

                    return Outcome.Ok;
                }

                // The old GFN's effective entry, with the superpage copy (kept even if the new GFN fails).
                if (!_cells[view][oldGfn].Mapped)
                {
                    Cell ho = _cells[0][oldGfn];
                    if (!ho.Mapped)
                    {
                        return Outcome.NoEntry;
                    }

                    if (ho.Type != P2mType.RamRw)
                    {
                        return Outcome.InvalidType;
                    }

                    if (oldHostOrder > 0 && oldHole >= oldHostOrder)
                    {
                        CopyBlock(view, oldGfn, oldHostOrder);
                    }
                }

                // The new GFN's effective entry, read after that copy.
                Cell src = _cells[view][newGfn];
                if (!src.Mapped)
                {
                    Cell hn = _cells[0][newGfn];
                    if (!hn.Mapped)
                    {
                        return Outcome.NoEntry;
                    }

                    if (hn.Type != P2mType.RamRw)
                    {
                        return Outcome.InvalidType;
                    }

                    src = Cell.Of(hn.Mfn, P2mType.RamRw, Representable(P2mType.RamRw, _default[view]), true);
                }

                Set(view, oldGfn, src with { SuppressVe = true });
                _remapped[view].Add(oldGfn);
                _minRemap[view] = Math.Min(_minRemap[view], newGfn);
                _maxRemap[view] = Math.Max(_maxRemap[view], newGfn);
                return Outcome.Ok;
            }

            private void Set(int view, ulong gfn, Cell cell)
            {
                ref Cell slot = ref _cells[view][gfn];
                Count(view, slot, -1);
                slot = cell;
                Count(view, cell, +1);
                if (_stamp[view][gfn] != _tick)
                {
                    _stamp[view][gfn] = _tick;
                    _changed.Add((view, gfn));
                }
            }

            private void Count(int view, in Cell c, int delta)
            {
                if (!c.Mapped)
                {
                    return;
                }

                Dictionary<ulong, int>? d = view == 0
                    ? (c.Type == P2mType.RamShared ? _hostShared : _hostOther)
                    : (IsWritableRam(c.Type) ? _viewWritable : null);
                if (d is null)
                {
                    return;
                }

                d[c.Mfn] = d.GetValueOrDefault(c.Mfn) + delta;
                _changedMfns.Add(c.Mfn);
            }
        }
    }
}
