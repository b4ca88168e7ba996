// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Text;

namespace FastEpt.Tests.P2mTests
{
    /// <summary>
    /// Model-based randomized test of <see cref="P2m"/>. Seeded streams of SetEntry, GetEntry
    /// (plain and populate-on-demand) and Translate run over a 4 GiB guest-physical window that
    /// straddles a PML4E boundary, and after every operation a sample of GFNs is compared with a
    /// per-GFN reference model that implements docs/model/types.md §2.3 and 3.3-3.6 in the most direct way.
    /// </summary>
    /// <remarks>
    /// The model knows nothing about tables: it keeps, for each 4 KiB GFN, the frame, type, access,
    /// suppress-#VE bit and the order of the mapping that covers it. The only structural rules it
    /// needs are Xen's: a smaller set inside a superpage splits that whole superpage down to the
    /// new order, and an inherited suppress-#VE bit comes from the entry in the target slot (a
    /// table pointer or an empty slot gives 1). Holes are compared without their order, which
    /// depends on which tables happen to exist.
    /// </remarks>
    public sealed class P2mModelTests
    {
        private const int OpsPerSeed = 60_000;
        private const int SweepInterval = 20_000;
        private const ulong RegionFrames = 1UL << 18;                     // one 1 GiB superpage
        private const ulong WindowFrames = 4 * RegionFrames;
        private const ulong WindowBase = (1UL << 27) - 2 * RegionFrames;  // 512 GiB lies in the middle
        private const ulong GuestFrames = 2 * RegionFrames;               // MFNs [0, 2 GiB) back RAM types
        private const ulong PoolBase = GuestFrames;                       // PoD pool pages come from here
        private const ulong Pool2MChunks = 16;
        private const ulong Pool4KBase = PoolBase + Pool2MChunks * 512;
        private const ulong Pool4KFrames = 8192;
        private const ulong OwnedFrames = Pool4KBase + Pool4KFrames;      // allocated up front, never tables
        private const long TableBudgetFrames = 16_384;
        private const ulong MmioLimit = 1UL << 34;                        // 2^(HostAddressBits - 12)

        private static readonly int[] s_hot2M = [0, 1, 2, 255, 256, 511];
        private static readonly int[] s_hot4K = [0, 1, 2, 255, 256, 510, 511];
        private static readonly P2mType[] s_typeTable = BuildTypeTable();

        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(3)]
        [InlineData(4)]
        public void RandomOperations_SeededStream_MatchReferenceModel(int seed)
        {
            using Harness harness = new Harness(seed);
            harness.Run(OpsPerSeed);
        }

        [Fact]
        public void SetEntry_RamRwAccessNAtMfnZero_ReadsAsHoleLikeXen()
        {
            // Type 0, access 0, frame 0 and no permission bits make an all-zero word, which Xen's
            // validity predicate (docs/model/ept.md §1.1) calls "not valid": the model relies on this.
            using HostMemory memory = new HostMemory(64 << 20);
            using P2m p2m = new P2m(memory);
            p2m.SetEntry(0x1000, 0, PageOrder.Size4K, P2mType.RamRw, P2mAccess.N, SuppressVe.Clear);

            P2mEntry e = p2m.GetEntry(0x1000);
            Assert.False(e.IsMapped);
            Assert.Equal(P2mType.MmioDm, e.Type);
            Assert.Equal(Mfn.Invalid, e.Mfn);
            Assert.Equal(0UL, p2m.MaxMappedPfn);
        }

        // docs/model/types.md §2.3 step 1 with the default options (no A/D, no PML, no ioreq claim, no
        // read-only MMIO): the r/w/x a type grants, as r = 1, w = 2, x = 4.
        private static int BaseRwx(P2mType type) => type switch
        {
            P2mType.RamRw or P2mType.MmioDirect => 0b111,
            P2mType.IoreqServer or P2mType.GrantMapRw or P2mType.MapForeign => 0b011,
            P2mType.RamLogDirty or P2mType.RamRo or P2mType.RamShared => 0b101,
            P2mType.GrantMapRo => 0b001,
            _ => 0b000,
        };

        // docs/model/types.md §2.3 step 2: the bits an access leaves standing (it only ever clears).
        private static int AccessMask(P2mAccess access) => access switch
        {
            P2mAccess.N or P2mAccess.N2RWX => 0b000,
            P2mAccess.R or P2mAccess.R_PW => 0b001,
            P2mAccess.W => 0b010,
            P2mAccess.RW => 0b011,
            P2mAccess.X => 0b100,
            P2mAccess.RX or P2mAccess.RX2RW => 0b101,
            P2mAccess.WX => 0b110,
            _ => 0b111,
        };

        // Types whose entries must name a frame in host memory.
        private static bool IsRamBacked(P2mType type) => type switch
        {
            P2mType.Invalid or P2mType.MmioDm or P2mType.MmioDirect or P2mType.PopulateOnDemand
                or P2mType.RamPagingOut or P2mType.RamPaged or P2mType.RamPagingIn => false,
            _ => true,
        };

        private static bool IsWriteWithoutRead(P2mType type, P2mAccess access)
            => (BaseRwx(type) & 0b001) != 0 && access is P2mAccess.W or P2mAccess.WX;

        private static P2mType[] BuildTypeTable()
        {
            (P2mType Type, int Weight)[] weights =
            [
                (P2mType.RamRw, 22), (P2mType.RamLogDirty, 5), (P2mType.RamRo, 7), (P2mType.RamShared, 4),
                (P2mType.IoreqServer, 4), (P2mType.GrantMapRw, 5), (P2mType.GrantMapRo, 5), (P2mType.MapForeign, 3),
                (P2mType.RamBroken, 2), (P2mType.MmioDirect, 6), (P2mType.MmioDm, 6), (P2mType.PopulateOnDemand, 10),
                (P2mType.RamPagingOut, 2), (P2mType.RamPaged, 2), (P2mType.RamPagingIn, 2), (P2mType.Invalid, 15),
            ];
            return weights.SelectMany(w => Enumerable.Repeat(w.Type, w.Weight)).ToArray();
        }

        /// <summary>What the reference model knows about one 4 KiB GFN.</summary>
        private struct Cell
        {
            public ulong Mfn;           // this GFN's own frame (superpage base + offset), or Mfn.Invalid
            public P2mType Type;
            public P2mAccess Access;    // as stored; GetEntry reports N for populate-on-demand
            public bool SuppressVe;
            public bool Mapped;
            public byte Order;          // order of the mapping this GFN belongs to
        }

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

        /// <summary>One seeded run: the p2m under test, the model, the generator and the checks.</summary>
        private sealed class Harness : IDisposable
        {
            private readonly int _seed;
            private readonly Random _rng;
            private readonly HostMemory _memory;
            private readonly P2m _p2m;
            private readonly Reference _model = new();
            private readonly PodPool _pool = new();
            private readonly string[] _recent = new string[8];
            private int _op;
            private string _current = "";
            private ulong _lastPodGfn = WindowBase;
            private int _lastPodOrder;

            public Harness(int seed)
            {
                _seed = seed;
                _rng = new Random(seed);
                _memory = new HostMemory((long)(OwnedFrames << 12) + (TableBudgetFrames << 12));
                ulong first = _memory.AllocateFrames((long)OwnedFrames);
                Assert.Equal(0UL, first);
                _p2m = new P2m(_memory);
            }

            public void Run(int ops)
            {
                for (_op = 0; _op < ops; _op++)
                {
                    // 66% SetEntry, 6% populating GetEntry, 1.2% PoD cache refills (rare, so the
                    // cache often runs dry), the rest read-only probes; every op ends in checks.
                    int roll = _rng.Next(1000);
                    if (roll < 660)
                    {
                        DoSet();
                    }
                    else if (roll < 720)
                    {
                        DoPopulate();
                    }
                    else if (roll < 732)
                    {
                        DoAddPodPages();
                    }
                    else
                    {
                        DoProbe();
                    }

                    CheckCounters();
                    _recent[_op % _recent.Length] = $"#{_op}: {_current}";
                    if ((_op + 1) % SweepInterval == 0)
                    {
                        Sweep();
                    }
                }

                _current = "final sweep";
                Sweep();
                CheckFrameAccounting();
            }

            public void Dispose()
            {
                _p2m.Dispose();
                _memory.Dispose();
            }

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
