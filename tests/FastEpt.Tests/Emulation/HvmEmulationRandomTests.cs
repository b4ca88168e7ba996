// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Diagnostics;
using FastEpt.Testing;
using FastEpt.Tests.Guest;
using Xunit.Abstractions;

namespace FastEpt.Tests.Emulation
{
    /// <summary>
    /// Randomized test of <see cref="HvmEmulation"/>'s MMIO split-access cache (docs/model/mmio-cache.md):
    /// seeded streams of instructions of 1 to 3 operands (reads, writes and compare-exchanges of 1
    /// to 64 bytes at linear addresses around page boundaries) run against random layouts of guest
    /// RAM and MMIO pages, in flat mode and in 4-level long mode (random linear page -> GFN maps,
    /// aliases included). The recording fake device answers <see cref="MmioResult.Retry"/> at
    /// random (a rate of 0 to 50 % per layout, or "asynchronously": every request once), never
    /// performing a request it answers Retry, and each instruction is re-run from its first
    /// operand until every operand returns Okay. 4 seeds x 25,000 instructions, plus 1,000
    /// instructions of page-crossing 8-byte MMIO operands with one device per page.
    /// </summary>
    /// <remarks>
    /// <para>After every instruction: the read buffers, compare-exchange outcomes and the bytes
    /// found, guest RAM and the device's backing bytes all equal a one-pass reference (the
    /// operands applied once, in order, to a byte model of the window); the device saw each MMIO
    /// byte of each operand exactly once over all passes, in exactly the chunk sequence of docs/model/mmio-cache.md
    /// §6.3 (per page piece: the largest power of two that fits, at most 8, never growing), each
    /// request routed to the device that owns its page; a request answered Retry is re-issued
    /// unchanged as the very next device request; the cache holds one entry per MMIO operand with
    /// the expected skip and size; after <see cref="HvmEmulation.Complete"/> it holds none and no
    /// guest frame keeps a page reference. With the asynchronous device every pass completes
    /// exactly one request (docs/model/mmio-cache.md §6.8). The device itself checks that each request is 1, 2, 4 or
    /// 8 bytes, within one page and within its own pages. In a
    /// sample of instructions the whole instruction runs once more before Complete() and must
    /// issue no device request at all and produce the same results.</para>
    /// <para>Instructions whose one-pass meaning is not what re-execution gives are not generated
    /// (they are inherent to Xen's design, not bugs): a RAM byte read (or compared by an all-RAM
    /// compare-exchange) by one operand and written by a later operand, when an operand at or after
    /// the writer touches MMIO (a retry there re-runs the read and sees the new bytes); and an
    /// all-RAM compare-exchange that succeeds with desired != expected followed by an MMIO operand
    /// (the re-run compare fails). Such a compare-exchange is generated as a successful exchange of
    /// equal values, or as a failing one.</para>
    /// </remarks>
    public sealed partial class HvmEmulationRandomTests
    {
        private const int InstructionsPerSeed = 25_000;     // 4 seeds: 100,000 random instructions
        private const int PageCrossingInstructions = 1_000;

        private readonly ITestOutputHelper _output;

        public HvmEmulationRandomTests(ITestOutputHelper output) => _output = output;

        [Theory]
        [InlineData(0x5EED_0001)]
        [InlineData(0x5EED_0002)]
        [InlineData(0x5EED_0003)]
        [InlineData(0x5EED_0004)]
        public void RandomInstructions_RandomRetries_MatchOnePassReference_EachDeviceByteOnce(int seed)
        {
            using var harness = new Harness(seed);
            var clock = Stopwatch.StartNew();
            harness.RunRandom(InstructionsPerSeed);
            _output.WriteLine($"seed 0x{seed:X}: {harness.Stats} in {clock.Elapsed.TotalMilliseconds:F0} ms");
        }

        [Fact]
        public void PageCrossing8ByteMmio_DevicePerPage_SplitIntoChunksPerPage()
        {
            const int Seed = 0x5EED_0F0A;
            using var harness = new Harness(Seed);
            var clock = Stopwatch.StartNew();
            harness.RunPageCrossing(PageCrossingInstructions);
            _output.WriteLine($"seed 0x{Seed:X}: {harness.Stats} in {clock.Elapsed.TotalMilliseconds:F0} ms");
        }

        [Theory]
        [InlineData(1, new[] { 1 })]
        [InlineData(2, new[] { 2 })]
        [InlineData(3, new[] { 2, 1 })]
        [InlineData(5, new[] { 4, 1 })]
        [InlineData(6, new[] { 4, 2 })]
        [InlineData(7, new[] { 4, 2, 1 })]
        [InlineData(10, new[] { 8, 2 })]
        [InlineData(12, new[] { 8, 4 })]
        [InlineData(15, new[] { 8, 4, 2, 1 })]
        [InlineData(16, new[] { 8, 8 })]
        [InlineData(64, new[] { 8, 8, 8, 8, 8, 8, 8, 8 })]
        public void ReferenceChunking_MatchesSpecSequences(int size, int[] chunks)
        {
            // The model's chunking (docs/model/mmio-cache.md §6.3) against the spec's literal examples.
            Span<int> got = stackalloc int[64];
            int count = Harness.Chunks(size, got);
            Assert.Equal(chunks, got[..count].ToArray());
        }

        private enum OpKind : byte
        {
            Read,
            Write,
            CmpXchg,
        }

        private readonly record struct Request(int Op, int Device, ulong Gpa, int Size, bool Write, ulong Value, bool Retried);

        /// <summary>One operand of the current instruction, with preallocated buffers.</summary>
        private sealed class Operand
        {
            public OpKind Kind;
            public ulong Gla;
            public int Size;
            public AccessTag Tag;
            public PageFaultErrorCode Pfec;
            public bool UseCurrent;
            public bool AllRam;
            public bool HasMmio;
            public int PieceCount;
            public readonly int[] PieceStart = new int[2];     // offset of the piece in the operand
            public readonly int[] PieceLen = new int[2];
            public readonly int[] PieceWin = new int[2];       // window page index of the piece's GFN
            public readonly int[] PieceOff = new int[2];       // page offset of the piece's first byte
            public readonly bool[] PieceMmio = new bool[2];
            public readonly byte[] Data = new byte[64];        // write data; cmpxchg desired
            public readonly byte[] Expected = new byte[64];    // cmpxchg comparand
            public readonly byte[] Buffer = new byte[64];      // read buffer / cmpxchg current
            public readonly byte[] Reference = new byte[64];   // reference read bytes / bytes found
            public bool RefSuccess;
            public bool Success;

            public bool IsWrite => Kind != OpKind.Read;

            public bool ReadsRam => Kind == OpKind.Read || (Kind == OpKind.CmpXchg && AllRam);
        }

        /// <summary>An MMIO device over a range of window pages; every request goes to the harness.</summary>
        private sealed class RecordingDevice : IMmioDevice
        {
            private readonly Harness _harness;

            public RecordingDevice(Harness harness, int id, int firstWin, int pages)
            {
                _harness = harness;
                Id = id;
                FirstWin = firstWin;
                Pages = pages;
            }

            public int Id { get; }

            public int FirstWin { get; }

            public int Pages { get; }

            public MmioResult Read(ulong gpa, int size, out ulong value) => _harness.DeviceAccess(this, gpa, size, false, 0, out value);

            public MmioResult Write(ulong gpa, int size, ulong value) => _harness.DeviceAccess(this, gpa, size, true, value, out _);
        }

        private sealed partial class Harness : IDisposable
        {
            private const ulong WindowGfn = 0x40;               // the data window: GFNs 0x40..0x57
            private const int WindowPages = 24;
            private const ulong Pml4Gfn = 0x10, PtGfn = 0x13;
            private const int LongModeLinearPages = 16;
            private const int MaxPasses = 5_000;
            private const int RemapInterval = 40;               // long mode: new linear -> GFN map every so often
            private const ulong TableFlags = Pte.Present | Pte.Writable | Pte.User;
            private const double Asynchronous = -1;            // retry rate: every request answered Retry once, then completed

            private static readonly double[] s_retryRates = [0.0, 0.1, 0.3, 0.3, 0.5, Asynchronous];
            private static readonly int[] s_powerSizes = [1, 2, 4, 8, 16, 32, 64, 6, 10, 12, 15];

            private readonly int _seed;
            private readonly Random _rng;
            private readonly HostMemory _memory;
            private readonly ulong _ramMfn;                     // window page i is backed by frame _ramMfn + i
            private readonly ulong _tableMfn;                   // PML4, PDPT, PD, PT
            private readonly byte[] _model = new byte[WindowPages * 4096];
            private readonly byte[] _deviceStore = new byte[WindowPages * 4096];
            private readonly bool[] _isMmio = new bool[WindowPages];
            private readonly RecordingDevice?[] _owner = new RecordingDevice?[WindowPages];
            private readonly int[] _linToWin = new int[WindowPages];
            private readonly Operand[] _ops = [new(), new(), new()];
            private readonly List<Request> _log = new(256);
            private readonly List<Request> _expectedChunks = new(64);
            private readonly int[,] _seen = new int[3, 64];

            private Domain? _domain;
            private GuestPageTableBuilder? _tables;             // long mode: PML4, PDPT, PD and PT at GFNs 0x10..0x13
            private HvmEmulation? _emu;
            private bool _longMode;
            private ulong _linBase;
            private int _linPages;
            private double _retryRate;
            private int _cacheEntries = 3, _entryBytes = 64;
            private int _deviceCount;
            private int _opCount;
            private int _currentOp;
            private bool _forbidDevice;
            private int _layout;
            private long _instruction;
            private int _pass;

            // Statistics.
            private long _passes, _requests, _retries, _reruns, _mmioOps, _crossingOps, _rejected, _cmpxchgSucceeded, _cmpxchgDegraded;

            public Harness(int seed)
            {
                _seed = seed;
                _rng = new Random(seed);
                _memory = new HostMemory(1024L * 4096);
                _ramMfn = _memory.AllocateFrames(WindowPages);
                _tableMfn = _memory.AllocateFrames(4);
            }

            public string Stats =>
                $"{_instruction} instructions over {_layout} layouts, {_passes} passes, {_requests} device requests ({_retries} answered Retry), " +
                $"{_mmioOps} MMIO operands ({_crossingOps} crossing a page), {_cmpxchgSucceeded} RAM exchanges done, {_cmpxchgDegraded} degraded, " +
                $"{_reruns} re-runs after success, {_rejected} generated instructions rejected";

            /// <summary>The sizes of the device requests for one operand piece (docs/model/mmio-cache.md §6.3), in order.</summary>
            public static int Chunks(int size, Span<int> sizes)
            {
                int c = 8;
                while (c > size)
                {
                    c >>= 1;
                }

                int count = 0;
                while (size > 0)
                {
                    sizes[count++] = c;
                    size -= c;
                    while (c > size && c > 1)
                    {
                        c >>= 1;
                    }
                }

                return count;
            }

            public void RunRandom(int instructions)
            {
                while (_instruction < instructions)
                {
                    _longMode = _rng.Next(2) == 1;
                    double mmioShare = _rng.Next(5) switch { 0 => 0.15, 1 => 0.85, _ => 0.5 };
                    BuildLayout(mmioShare, devicePerPage: _rng.Next(4) == 0);
                    int count = (int)Math.Min(150 + _rng.Next(300), instructions - _instruction);
                    for (int i = 0; i < count; i++)
                    {
                        if (_longMode && i > 0 && i % RemapInterval == 0)
                        {
                            RemapLinear();
                        }

                        GenerateRandom();
                        Execute();
                    }

                    CheckWholeWindow();
                }
            }

            public void RunPageCrossing(int instructions)
            {
                while (_instruction < instructions)
                {
                    _longMode = false;
                    BuildLayout(mmioShare: 1.0, devicePerPage: true);
                    _retryRate = _layout % 2 == 0 ? 0.3 : Asynchronous;
                    int count = (int)Math.Min(200, instructions - _instruction);
                    for (int i = 0; i < count; i++)
                    {
                        GeneratePageCrossing();
                        Execute();
                        CheckPageCrossingLiterally();
                    }

                    CheckWholeWindow();
                }
            }

            public void Dispose()
            {
                _domain?.Dispose();
                _memory.Dispose();
            }
        }
    }
}
