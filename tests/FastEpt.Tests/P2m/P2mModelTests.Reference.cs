// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.P2mTests
{
    public sealed partial class P2mModelTests
    {
        /// <summary>The reference p2m: one cell per GFN of the window; everything outside is a hole.</summary>
        private sealed class Reference
        {
            private readonly Cell[] _cells = new Cell[WindowFrames];

            public ulong MaxMappedPfn { get; private set; }

            public long PodEntries { get; private set; }

            public Cell this[ulong gfn] => unchecked(gfn - WindowBase) < WindowFrames ? _cells[gfn - WindowBase] : default;

            public void Set(ulong gfn, ulong mfn, int order, P2mType type, P2mAccess access, SuppressVe mode)
            {
                long first = (long)(gfn - WindowBase);
                long count = 1L << order;
                Cell head = _cells[first];
                if (head.Mapped && head.Order > order)
                {
                    // docs/model/p2m.md §3.4: the covering superpage is split all the way down to the target
                    // order; every child keeps its frame, type, access and suppress-#VE bit.
                    long span = 1L << head.Order;
                    long start = first & ~(span - 1);
                    for (long i = start; i < start + span; i++)
                    {
                        _cells[i].Order = (byte)order;
                        if (IsZeroWord(order, _cells[i]))
                        {
                            Write(i, default);
                        }
                    }

                    head = _cells[first];
                }

                // docs/model/p2m.md §3.3 step 6 with FastEpt's fix: inherit from the leaf in the target slot
                // (a split child counts); a table pointer or an empty slot gives 1.
                bool inherited = !(head.Mapped && head.Order == order) || head.SuppressVe;
                bool sve = mode switch
                {
                    SuppressVe.Set => true,
                    SuppressVe.Clear => false,
                    _ => inherited,
                };

                Cell cell = new Cell { Type = type, Access = access, SuppressVe = sve, Mapped = true, Order = (byte)order };
                if (type == P2mType.Invalid || (type == P2mType.MmioDm && mfn == Mfn.Invalid) || IsZeroWord(order, cell with { Mfn = mfn }))
                {
                    // Removal (or an entry that builds an all-zero word): the range becomes holes.
                    for (long j = 0; j < count; j++)
                    {
                        Write(first + j, default);
                    }

                    return;
                }

                MaxMappedPfn = Math.Max(MaxMappedPfn, gfn + (ulong)count - 1);
                for (long j = 0; j < count; j++)
                {
                    cell.Mfn = mfn == Mfn.Invalid ? Mfn.Invalid : mfn + (ulong)j;
                    Write(first + j, cell);
                }
            }

            // RamRw (type 0) with access N (0, so no r/w/x and no memory type) at frame 0 in a PTE
            // is the all-zero word, which is not a valid entry (docs/model/ept.md §1.1).
            private static bool IsZeroWord(int order, in Cell c)
                => order == 0 && c.Mapped && c.Type == P2mType.RamRw && c.Access == P2mAccess.N && c.Mfn == 0;

            private void Write(long index, in Cell cell)
            {
                ref Cell slot = ref _cells[index];
                if (slot.Mapped && slot.Type == P2mType.PopulateOnDemand)
                {
                    PodEntries--;
                }

                if (cell.Mapped && cell.Type == P2mType.PopulateOnDemand)
                {
                    PodEntries++;
                }

                slot = cell;
            }
        }

        /// <summary>The model of the p2m's PoD cache: which pages it holds, not in which order it hands them out.</summary>
        private sealed class PodPool
        {
            private readonly HashSet<ulong> _free2M = new();
            private readonly HashSet<ulong> _free4K = new();

            public bool Has2M => _free2M.Count > 0;

            public bool IsEmpty => _free2M.Count == 0 && _free4K.Count == 0;

            public long FreeFrames => ((long)_free2M.Count << 9) + _free4K.Count;

            public bool CanAdd2M(ulong mfn)
            {
                if (_free2M.Contains(mfn))
                {
                    return false;
                }

                for (ulong i = 0; i < 512; i++)
                {
                    if (_free4K.Contains(mfn + i))
                    {
                        return false;
                    }
                }

                return true;
            }

            public bool CanAdd4K(ulong mfn) => !_free4K.Contains(mfn);

            public void Add(ulong mfn, PageOrder order) => (order == PageOrder.Size2M ? _free2M : _free4K).Add(mfn);

            public bool Take2M(ulong mfn) => _free2M.Remove(mfn);

            // A 4 KiB populate takes a cached 4 KiB page, or breaks a 2 MiB page up (Xen).
            public bool Take4K(ulong mfn)
            {
                if (_free4K.Remove(mfn))
                {
                    return true;
                }

                if (!_free2M.Remove(mfn))
                {
                    return false;
                }

                for (ulong i = 1; i < 512; i++)
                {
                    _free4K.Add(mfn + i);
                }

                return true;
            }
        }
    }
}
