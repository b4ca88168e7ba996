// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Text;
using Xunit.Sdk;

namespace FastEpt.Tests.DomainTests
{
    /// <summary>
    /// Model-based randomized test of <see cref="Domain"/> and <see cref="Altp2m"/>: seeded
    /// streams of host writes, view lifecycle, EPT-violation handling (lazy copy, mem_access
    /// relaxing, log-dirty writes), SetMemAccess, SetSuppressVe/GetSuppressVe, GetMemAccess and
    /// ChangeGfn run over a 16 MiB guest-physical window, and after every operation the host and
    /// every active view are compared with a reference model of the effective mapping of each
    /// 4 KiB GFN.
    /// </summary>
    /// <remarks>
    /// <para>The model keeps, per view (0 = host) and GFN, the frame, type, access and
    /// suppress-#VE bit, plus each view's default access, remapped GFNs and remapped range. It
    /// knows nothing about tables: the few structural facts the library's behaviour depends on
    /// (the order of a view's hole, of the host's mapping, whether the host slot of a 2 MiB write
    /// holds a 2 MiB leaf) are read from the system under test before the operation; mapping
    /// contents never are.</para>
    /// <para>After every operation the GFNs it could touch are compared in every active view
    /// (entry fields and the hardware walk); every <see cref="SweepInterval"/> operations and at
    /// the end every GFN of every view is. View-reset notifications, the reset counter, the
    /// remapped ranges and the vCPUs' views are checked after every operation, and so is the
    /// security invariant: no view maps writable RAM over a frame that the host maps only as
    /// <see cref="P2mType.RamShared"/>.</para>
    /// </remarks>
    public sealed class Altp2mModelTests
    {
        private const int OpsPerSeed = 15_000;
        private const int SweepInterval = 500;
        private const int AltViews = 4;                   // views 1..4; index 0 is the host
        private const int Vcpus = 2;
        private const ulong WindowFrames = 4096;          // GFNs [0, 4096): eight 2 MiB blocks
        private const long HostFrames = 0x10000;
        private const ulong PoolBase = 0x8000;            // guest RAM frames; tables come from below
        private const ulong PoolFrames = 0x8000;
        private const ulong MmioBase = 0x10_0000;         // pass-through MMIO frames, above host memory
        private const ulong MmioFrames = 0x10_0000;
        private const int HistoryLength = 16;
        private const ulong RemapCluster = 0xF00;         // most ChangeGfn targets lie in [0xF00, 0xF20)

        private static readonly P2mAccess[] s_hostAccess =
        [
            P2mAccess.RWX, P2mAccess.RWX, P2mAccess.RWX, P2mAccess.RWX, P2mAccess.RW, P2mAccess.RW,
            P2mAccess.RX, P2mAccess.RX, P2mAccess.R, P2mAccess.R, P2mAccess.X, P2mAccess.N,
            P2mAccess.RX2RW, P2mAccess.N2RWX, P2mAccess.R_PW,
        ];

        private static readonly P2mAccess[] s_viewAccess =
        [
            P2mAccess.RWX, P2mAccess.RWX, P2mAccess.RWX, P2mAccess.RW, P2mAccess.RW, P2mAccess.RX,
            P2mAccess.RX, P2mAccess.R, P2mAccess.R, P2mAccess.X, P2mAccess.N, P2mAccess.RX2RW,
            P2mAccess.N2RWX, P2mAccess.R_PW,
        ];

        private static readonly AccessKind[] s_kinds = [AccessKind.Read, AccessKind.Write, AccessKind.Execute];

        [Theory]
        [InlineData(1)]
        [InlineData(2)]
        [InlineData(3)]
        [InlineData(4)]
        public void RandomHostAndViewOperations_SeededStream_MatchPerGfnModel(int seed)
        {
            using var harness = new Harness(seed);
            harness.Run(OpsPerSeed);
        }

        // ---- the reference semantics, written per 4 KiB GFN ------------------------------

        // The r/w/x rights of an access (1 = r, 2 = w, 4 = x).
        private static uint Rights(P2mAccess a) => a switch
        {
            P2mAccess.RX2RW => 5,
            P2mAccess.N2RWX => 0,
            P2mAccess.R_PW => 1,
            _ => (uint)a,
        };

        // The stricter of two accesses: the one whose rights are a subset of the other's, else
        // the plain intersection.
        private static P2mAccess Stricter(P2mAccess a, P2mAccess b)
        {
            uint ra = Rights(a), rb = Rights(b);
            if ((ra & rb) == ra)
            {
                return a;
            }

            if ((ra & rb) == rb)
            {
                return b;
            }

            return (P2mAccess)(ra & rb);
        }

        // The base r/w/x a type grants with the default options (no PML, no read-only MMIO).
        private static uint TypeRwx(P2mType t) => t switch
        {
            P2mType.RamRw or P2mType.MmioDirect => 7,
            P2mType.RamLogDirty or P2mType.RamRo or P2mType.RamShared => 5,
            _ => 0,
        };

        private static bool IsWriteWithoutRead(P2mType t, P2mAccess a)
            => (TypeRwx(t) & 1) != 0 && a is P2mAccess.W or P2mAccess.WX;

        // What a copy into a view can carry (execute-only is supported by default).
        private static P2mAccess Representable(P2mType t, P2mAccess a)
            => !IsWriteWithoutRead(t, a) ? a : a == P2mAccess.WX ? P2mAccess.X : P2mAccess.N;

        private static bool IsWritableRam(P2mType t) => t is P2mType.RamRw or P2mType.RamLogDirty;

        /// <summary>What the model knows about one GFN of one view.</summary>
        private readonly record struct Cell(bool Mapped, ulong Mfn, P2mType Type, P2mAccess Access, bool SuppressVe)
        {
            public static Cell Of(ulong mfn, P2mType type, P2mAccess access, bool sve) => new(true, mfn, type, access, sve);

            public override string ToString()
                => Mapped ? $"mfn=0x{Mfn:X} {Type} {Access}{(SuppressVe ? " sve" : "")}" : "hole";
        }

        private enum Outcome
        {
            Ok,
            NoEntry,
            InvalidType,
            ThrowsAccess,
        }

        private sealed class Harness : IDisposable
        {
            private readonly int _seed;
            private readonly Random _rng;
            private readonly HostMemory _memory;
            private readonly Domain _domain;

            // The model.
            private readonly Cell[][] _cells = new Cell[AltViews + 1][];
            private readonly bool[] _active = new bool[AltViews + 1];
            private readonly P2mAccess[] _default = new P2mAccess[AltViews + 1];
            private readonly HashSet<ulong>[] _remapped = new HashSet<ulong>[AltViews + 1];
            private readonly ulong[] _minRemap = new ulong[AltViews + 1];
            private readonly ulong[] _maxRemap = new ulong[AltViews + 1];
            private readonly int[] _vcpuView = new int[Vcpus];
            private readonly ulong[] _hot;
            private readonly ulong[] _recent = new ulong[32];
            private int _recentNext;
            private long _resets;

            // Security bookkeeping: per frame, host RamShared entries, other host entries, and
            // writable-RAM entries of the alternate views.
            private readonly Dictionary<ulong, int> _hostShared = new();
            private readonly Dictionary<ulong, int> _hostOther = new();
            private readonly Dictionary<ulong, int> _viewWritable = new();

            // Per-operation bookkeeping.
            private readonly int[][] _stamp = new int[AltViews + 1][];
            private readonly List<(int View, ulong Gfn)> _changed = new();
            private readonly List<ulong> _opGfns = new();
            private readonly HashSet<ulong> _changedMfns = new();
            private readonly List<int> _resetViews = new();
            private readonly bool[] _fullCompare = new bool[AltViews + 1];
            private readonly Queue<string> _history = new();
            private int _op;
            private int _tick;                    // one per operation, for the change stamps
            private string _desc = "set-up";

            public Harness(int seed)
            {
                _seed = seed;
                _rng = new Random(seed);
                _memory = new HostMemory(HostFrames << 12);
                _domain = new Domain(_memory, new DomainOptions { Vcpus = Vcpus, AltViews = AltViews });
                for (int v = 0; v <= AltViews; v++)
                {
                    _cells[v] = new Cell[WindowFrames];
                    _stamp[v] = new int[WindowFrames];
                    _remapped[v] = new HashSet<ulong>();
                    _minRemap[v] = ulong.MaxValue;
                }

                _active[0] = true;
                _hot = new ulong[48];
                for (int i = 0; i < _hot.Length; i++)
                {
                    _hot[i] = (ulong)(i % 8) * 512 + (ulong)_rng.Next(512);
                }
            }

            private Altp2m Alt => _domain.Altp2m;

            private string OpLabel => _op < 0 ? "set-up" : _op.ToString(System.Globalization.CultureInfo.InvariantCulture);

            private P2m Host => _domain.HostP2m;

            public void Dispose()
            {
                _domain.Dispose();
                _memory.Dispose();
            }

            public void Run(int ops)
            {
                // Set-up (op -1): every 2 MiB block of the host as one 2 MiB page or as 512 4 KiB
                // pages, then two views.
                _op = -1;
                for (int b = 0; b < 8; b++)
                {
                    Begin();
                    ulong gfn = (ulong)b * 512;
                    if (b % 2 == 0)
                    {
                        DoHostSet(gfn, 9, PoolBase + gfn, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Inherit);
                    }
                    else
                    {
                        for (ulong i = 0; i < 512; i++)
                        {
                            DoHostSet(gfn + i, 0, PoolBase + 0x4000 + gfn + i, P2mType.RamRw, P2mAccess.RWX, SuppressVe.Inherit);
                        }
                    }

                    Check();
                }

                for (int i = 0; i < 2; i++)
                {
                    Begin();
                    OpCreateView();
                    Check();
                }

                FullSweep();
                for (_op = 0; _op < ops; _op++)
                {
                    Begin();
                    try
                    {
                        Step();
                        Check();
                    }
                    catch (Exception ex) when (ex is not XunitException)
                    {
                        Fail($"unexpected exception: {ex}");
                    }

                    if ((_op + 1) % SweepInterval == 0)
                    {
                        FullSweep();
                    }
                }

                FullSweep();
            }

            // ---- operations ---------------------------------------------------------------

            private void Step()
            {
                int r = _rng.Next(100);
                if (r < 28)
                {
                    OpHostSet();
                }
                else if (r < 56)
                {
                    OpFault();
                }
                else if (r < 70)
                {
                    OpSetMemAccess();
                }
                else if (r < 78)
                {
                    OpSetSuppressVe();
                }
                else if (r < 83)
                {
                    OpQuery();
                }
                else if (r < 92)
                {
                    OpChangeGfn();
                }
                else if (r < 97)
                {
                    OpCreateView();
                }
                else
                {
                    OpDestroyView();
                }
            }

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
