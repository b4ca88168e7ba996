// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

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
    public sealed partial class P2mModelTests
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

        /// <summary>One seeded run: the p2m under test, the model, the generator and the checks.</summary>
        private sealed partial class Harness : IDisposable
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
        }
    }
}
