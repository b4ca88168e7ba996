// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

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
    public sealed partial class Altp2mModelTests
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

        private sealed partial class Harness : IDisposable
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
        }
    }
}
