// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Buffers.Binary;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using FastEpt.Tests.Guest;
using Xunit.Abstractions;
using Xunit.Sdk;

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
    public sealed class HvmEmulationRandomTests
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

        private sealed class Harness : IDisposable
        {
            private const ulong WindowGfn = 0x40;               // the data window: GFNs 0x40..0x57
            private const int WindowPages = 24;
            private const ulong Pml4Gfn = 0x10, PdptGfn = 0x11, PdGfn = 0x12, PtGfn = 0x13;
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

            // ---- layouts ---------------------------------------------------------------------

            private void BuildLayout(double mmioShare, bool devicePerPage)
            {
                _domain?.Dispose();
                _layout++;
                _retryRate = s_retryRates[_rng.Next(s_retryRates.Length)];
                _domain = new Domain(_memory, new DomainOptions { AltViews = 0 });
                P2m host = _domain.HostP2m;
                for (ulong t = 0; t < 4; t++)
                {
                    _memory.Frame(_tableMfn + t).Clear();
                    host.SetEntry(Pml4Gfn + t, _tableMfn + t, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                }

                for (int i = 0; i < WindowPages; i++)
                {
                    _isMmio[i] = _rng.NextDouble() < mmioShare;
                    _owner[i] = null;
                }

                // Guarantee both kinds where the share allows it.
                if (mmioShare > 0 && mmioShare < 1)
                {
                    _isMmio[_rng.Next(WindowPages)] = true;
                    _isMmio[_rng.Next(WindowPages)] = false;
                }

                _deviceCount = 0;
                int w = 0;
                while (w < WindowPages)
                {
                    if (!_isMmio[w])
                    {
                        host.SetEntry(WindowGfn + (ulong)w, _ramMfn + (ulong)w, PageOrder.Size4K, P2mType.RamRw, P2mAccess.RWX);
                        w++;
                        continue;
                    }

                    // A run of MMIO pages, cut into devices of random extent.
                    int run = 1;
                    while (w + run < WindowPages && _isMmio[w + run])
                    {
                        run++;
                    }

                    int at = w;
                    while (at < w + run)
                    {
                        int pages = devicePerPage ? 1 : 1 + _rng.Next(w + run - at);
                        var device = new RecordingDevice(this, ++_deviceCount, at, pages);
                        _domain.MapMmio(WindowGfn + (ulong)at, (ulong)pages, device);
                        for (int p = at; p < at + pages; p++)
                        {
                            _owner[p] = device;
                        }

                        at += pages;
                    }

                    w += run;
                }

                // Random contents: the model, RAM frames and device bytes agree.
                _rng.NextBytes(_model);
                for (int i = 0; i < WindowPages; i++)
                {
                    Span<byte> page = _model.AsSpan(i * 4096, 4096);
                    if (_isMmio[i])
                    {
                        page.CopyTo(_deviceStore.AsSpan(i * 4096, 4096));
                    }
                    else
                    {
                        page.CopyTo(_memory.Frame(_ramMfn + (ulong)i));
                        _deviceStore.AsSpan(i * 4096, 4096).Clear();
                    }
                }

                Vcpu cpu = _domain.Vcpus[0];
                if (_longMode)
                {
                    cpu.Mode = GuestPagingMode.LongMode4;
                    cpu.Cr3 = Pml4Gfn << 12;
                    cpu.Wp = _rng.Next(2) == 1;
                    cpu.Nxe = true;
                    _linPages = LongModeLinearPages;
                    ulong i4 = (ulong)_rng.Next(256), i3 = (ulong)_rng.Next(512), i2 = (ulong)_rng.Next(512);
                    ulong i1 = (ulong)_rng.Next(512 - LongModeLinearPages + 1);
                    _linBase = (i4 << 39) | (i3 << 30) | (i2 << 21) | (i1 << 12);
                    ulong extra = _rng.Next(2) == 1 ? Pte.Accessed : 0;
                    WriteTable(0, i4, (PdptGfn << 12) | TableFlags | extra);
                    WriteTable(1, i3, (PdGfn << 12) | TableFlags | extra);
                    WriteTable(2, i2, (PtGfn << 12) | TableFlags | extra);
                    RemapLinear();
                }
                else
                {
                    cpu.Mode = GuestPagingMode.Flat;
                    _linPages = WindowPages;
                    _linBase = WindowGfn << 12;
                    for (int j = 0; j < WindowPages; j++)
                    {
                        _linToWin[j] = j;
                    }
                }

                // Mostly Xen's 3 x 64 bytes; sometimes more or larger entries (same behaviour for <= 3 operands of <= 64 bytes).
                _cacheEntries = _rng.Next(4) == 0 ? 3 + _rng.Next(14) : 3;
                _entryBytes = _rng.Next(4) == 0 ? 64 + (8 * _rng.Next(505)) : 64;
                _emu = new HvmEmulation(cpu, _cacheEntries, _entryBytes);
            }

            // Long mode: each linear page of the window maps to a random window GFN (aliases allowed).
            private void RemapLinear()
            {
                ulong i1 = (_linBase >> 12) & 511;
                for (int j = 0; j < _linPages; j++)
                {
                    _linToWin[j] = _rng.Next(WindowPages);
                    ulong ad = _rng.Next(3) switch { 0 => 0, 1 => Pte.Accessed, _ => Pte.Accessed | Pte.Dirty };
                    WriteTable(3, i1 + (ulong)j, ((WindowGfn + (ulong)_linToWin[j]) << 12) | TableFlags | ad);
                }
            }

            private void WriteTable(int table, ulong index, ulong entry)
                => _memory.WriteUInt64(((_tableMfn + (ulong)table) << 12) + (index * 8), entry);

            // ---- instruction generation -----------------------------------------------------

            private void GenerateRandom()
            {
                _instruction++;
                for (int attempt = 0; ; attempt++)
                {
                    _opCount = attempt < 50 ? 1 + _rng.Next(3) : 1;
                    int boundary = 1 + _rng.Next(_linPages - 1);
                    for (int k = 0; k < _opCount; k++)
                    {
                        Operand op = _ops[k];
                        do
                        {
                            if (k > 0 && _rng.Next(2) == 0)
                            {
                                boundary = 1 + _rng.Next(_linPages - 1);     // else: the same boundary, to overlap
                            }

                            int r = _rng.Next(100);
                            op.Kind = r < 40 ? OpKind.Read : r < 72 ? OpKind.Write : OpKind.CmpXchg;
                            op.Tag = op.Kind != OpKind.CmpXchg && _rng.Next(10) == 0 ? AccessTag.SystemTable : AccessTag.Operand;
                            op.Size = _rng.Next(4) == 0 ? s_powerSizes[_rng.Next(s_powerSizes.Length)] : 1 + _rng.Next(64);
                            op.Gla = k > 0 && _rng.Next(4) == 0
                                ? _ops[_rng.Next(k)].Gla        // the same address, another direction or tag (read-modify-write)
                                : _linBase + ((ulong)boundary << 12) - 70 + (ulong)_rng.Next(81);
                        }
                        while (KeyTaken(k));

                        op.Pfec = (_rng.Next(2) == 0 ? PageFaultErrorCode.User : PageFaultErrorCode.None)
                                  | (_rng.Next(4) == 0 ? PageFaultErrorCode.Present : PageFaultErrorCode.None);
                        Place(op);
                    }

                    if (!Hazardous())
                    {
                        break;
                    }

                    _rejected++;
                }

                GenerateData();
            }

            private void GeneratePageCrossing()
            {
                _instruction++;
                _opCount = 1 + _rng.Next(3);
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    do
                    {
                        op.Kind = _rng.Next(4) == 0 ? OpKind.Write : OpKind.Read;
                        op.Tag = AccessTag.Operand;
                        op.Size = 8;
                        int boundary = 1 + _rng.Next(_linPages - 1);
                        op.Gla = _linBase + ((ulong)boundary << 12) - 7 + (ulong)_rng.Next(7);     // page offsets 0xFF9..0xFFF
                    }
                    while (KeyTaken(k));

                    op.Pfec = PageFaultErrorCode.None;
                    Place(op);
                }

                GenerateData();
            }

            private bool KeyTaken(int k)
            {
                Operand op = _ops[k];
                for (int i = 0; i < k; i++)
                {
                    Operand o = _ops[i];
                    if (o.Gla == op.Gla && o.IsWrite == op.IsWrite && (o.Kind == OpKind.CmpXchg ? AccessTag.Operand : o.Tag) == op.Tag)
                    {
                        return true;
                    }
                }

                return false;
            }

            // Splits the operand at the page boundary and finds each piece's GFN in the model.
            private void Place(Operand op)
            {
                int offset = (int)(op.Gla & 0xFFF);
                int first = Math.Min(op.Size, 4096 - offset);
                op.PieceCount = first == op.Size ? 1 : 2;
                op.AllRam = true;
                op.HasMmio = false;
                for (int p = 0; p < op.PieceCount; p++)
                {
                    ulong gla = p == 0 ? op.Gla : op.Gla + (ulong)first;
                    int page = (int)((gla - _linBase) >> 12);
                    int win = _linToWin[page];
                    op.PieceStart[p] = p == 0 ? 0 : first;
                    op.PieceLen[p] = p == 0 ? first : op.Size - first;
                    op.PieceWin[p] = win;
                    op.PieceOff[p] = (int)(gla & 0xFFF);
                    op.PieceMmio[p] = _isMmio[win];
                    op.AllRam &= !_isMmio[win];
                    op.HasMmio |= _isMmio[win];
                }
            }

            // Re-execution redoes RAM pieces: a RAM byte read by operand i and written by a later
            // operand j changes what the re-run of i reads, if a retry can happen at or after j.
            private bool Hazardous()
            {
                for (int j = 1; j < _opCount; j++)
                {
                    if (!_ops[j].IsWrite || !MmioAtOrAfter(j))
                    {
                        continue;
                    }

                    for (int i = 0; i < j; i++)
                    {
                        if (_ops[i].ReadsRam && RamOverlap(_ops[i], _ops[j]))
                        {
                            return true;
                        }
                    }
                }

                return false;
            }

            private bool MmioAtOrAfter(int k)
            {
                for (int i = k; i < _opCount; i++)
                {
                    if (_ops[i].HasMmio)
                    {
                        return true;
                    }
                }

                return false;
            }

            private static bool RamOverlap(Operand a, Operand b)
            {
                for (int p = 0; p < a.PieceCount; p++)
                {
                    for (int q = 0; q < b.PieceCount; q++)
                    {
                        if (!a.PieceMmio[p] && !b.PieceMmio[q] && a.PieceWin[p] == b.PieceWin[q]
                            && a.PieceOff[p] < b.PieceOff[q] + b.PieceLen[q] && b.PieceOff[q] < a.PieceOff[p] + a.PieceLen[p])
                        {
                            return true;
                        }
                    }
                }

                return false;
            }

            // Data and the one-pass reference: the operands applied once, in order, to the model.
            private void GenerateData()
            {
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    int n = op.Size;
                    op.UseCurrent = _rng.Next(2) == 0;
                    switch (op.Kind)
                    {
                        case OpKind.Read:
                            ModelRead(op, op.Reference.AsSpan(0, n));
                            break;

                        case OpKind.Write:
                            _rng.NextBytes(op.Data.AsSpan(0, n));
                            ModelWrite(op, op.Data.AsSpan(0, n));
                            break;

                        default:
                            Span<byte> found = op.Reference.AsSpan(0, n);
                            ModelRead(op, found);
                            found.CopyTo(op.Expected);
                            bool match = _rng.Next(2) == 0;
                            if (!match)
                            {
                                int at = _rng.Next(n);
                                op.Expected[at] ^= (byte)(1 + _rng.Next(255));
                            }

                            _rng.NextBytes(op.Data.AsSpan(0, n));
                            if (!op.AllRam)
                            {
                                // Degrades to a plain write of desired; "found" reads as expected.
                                op.RefSuccess = true;
                                op.Expected.AsSpan(0, n).CopyTo(found);
                                ModelWrite(op, op.Data.AsSpan(0, n));
                                break;
                            }

                            if (match && MmioAtOrAfter(k + 1))
                            {
                                // A re-run would compare against desired: exchange equal values.
                                op.Expected.AsSpan(0, n).CopyTo(op.Data);
                            }

                            op.RefSuccess = match;
                            if (match)
                            {
                                ModelWrite(op, op.Data.AsSpan(0, n));
                            }

                            break;
                    }
                }
            }

            private void ModelRead(Operand op, Span<byte> into)
            {
                for (int p = 0; p < op.PieceCount; p++)
                {
                    _model.AsSpan((op.PieceWin[p] * 4096) + op.PieceOff[p], op.PieceLen[p]).CopyTo(into.Slice(op.PieceStart[p]));
                }
            }

            private void ModelWrite(Operand op, ReadOnlySpan<byte> data)
            {
                for (int p = 0; p < op.PieceCount; p++)
                {
                    data.Slice(op.PieceStart[p], op.PieceLen[p]).CopyTo(_model.AsSpan((op.PieceWin[p] * 4096) + op.PieceOff[p]));
                }
            }

            // ---- execution and checks -------------------------------------------------------

            private void Execute()
            {
                HvmEmulation emu = _emu!;
                _log.Clear();
                for (_pass = 1; ; _pass++)
                {
                    if (_pass > MaxPasses)
                    {
                        Fail($"the instruction did not complete in {MaxPasses} passes");
                    }

                    _passes++;
                    if (RunOnce(emu, out int retriedOp))
                    {
                        break;
                    }

                    if (!emu.HasPendingRequest)
                    {
                        Fail($"operand {retriedOp} returned Retry but no device request is pending");
                    }
                }

                if (emu.HasPendingRequest)
                {
                    Fail("a device request is still pending after every operand returned Okay");
                }

                CheckResults(rerun: false);
                CheckDeviceLog();
                CheckCache(emu);
                CheckMemory();

                if (_rng.Next(10) == 0 && RerunSafe())
                {
                    _reruns++;
                    int logged = _log.Count;
                    for (int k = 0; k < _opCount; k++)
                    {
                        _ops[k].Buffer.AsSpan(0, _ops[k].Size).Clear();
                    }

                    _forbidDevice = true;
                    try
                    {
                        _pass = -1;
                        if (!RunOnce(emu, out int retriedOp))
                        {
                            Fail($"re-run after success: operand {retriedOp} returned Retry");
                        }
                    }
                    finally
                    {
                        _forbidDevice = false;
                    }

                    if (_log.Count != logged)
                    {
                        Fail($"re-run after success issued {_log.Count - logged} device request(s)");
                    }

                    CheckResults(rerun: true);
                    CheckCache(emu);
                    CheckMemory();
                }

                emu.Complete();
                if (emu.CacheEntriesInUse != 0 || emu.HasPendingRequest)
                {
                    Fail($"after Complete(): {emu.CacheEntriesInUse} cache entries in use, pending request {emu.HasPendingRequest}");
                }
            }

            // One pass over the instruction: true when every operand returned Okay.
            private bool RunOnce(HvmEmulation emu, out int retriedOp)
            {
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    _currentOp = k;
                    int n = op.Size;
                    EmulationResult r;
                    switch (op.Kind)
                    {
                        case OpKind.Read:
                            r = emu.LinearRead(op.Gla, op.Buffer.AsSpan(0, n), op.Pfec, op.Tag);
                            break;

                        case OpKind.Write:
                            r = emu.LinearWrite(op.Gla, op.Data.AsSpan(0, n), op.Pfec, op.Tag);
                            break;

                        default:
                            r = op.UseCurrent
                                ? emu.CmpXchg(op.Gla, op.Expected.AsSpan(0, n), op.Data.AsSpan(0, n), op.Pfec, op.Buffer.AsSpan(0, n))
                                : emu.CmpXchg(op.Gla, op.Expected.AsSpan(0, n), op.Data.AsSpan(0, n), op.Pfec);
                            if (r == EmulationResult.Okay)
                            {
                                op.Success = emu.LastCompareSucceeded;
                            }

                            break;
                    }

                    if (r == EmulationResult.Retry)
                    {
                        if (!op.HasMmio)
                        {
                            Fail($"operand {k} has no MMIO byte but returned Retry");
                        }

                        retriedOp = k;
                        return false;
                    }

                    if (r != EmulationResult.Okay)
                    {
                        Fail($"operand {k} returned {r}: {emu.LastFailure ?? emu.LastException.ToString()}");
                    }
                }

                retriedOp = -1;
                return true;
            }

            private void CheckResults(bool rerun)
            {
                string when = rerun ? "re-run after success: " : string.Empty;
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    int n = op.Size;
                    if (op.Kind == OpKind.Read || (op.Kind == OpKind.CmpXchg && op.UseCurrent))
                    {
                        ReadOnlySpan<byte> got = op.Buffer.AsSpan(0, n);
                        if (!got.SequenceEqual(op.Reference.AsSpan(0, n)))
                        {
                            Fail($"{when}operand {k} ({op.Kind}) {(op.Kind == OpKind.Read ? "read" : "found")} {Hex(got)}, the one-pass reference {Hex(op.Reference.AsSpan(0, n))}");
                        }
                    }

                    if (op.Kind == OpKind.CmpXchg && op.Success != op.RefSuccess)
                    {
                        Fail($"{when}operand {k} CmpXchg: LastCompareSucceeded {op.Success}, the one-pass reference {op.RefSuccess}");
                    }

                    if (!rerun && op.Kind == OpKind.CmpXchg)
                    {
                        if (!op.AllRam)
                        {
                            _cmpxchgDegraded++;
                        }
                        else if (op.RefSuccess && !op.Expected.AsSpan(0, n).SequenceEqual(op.Data.AsSpan(0, n)))
                        {
                            _cmpxchgSucceeded++;
                        }
                    }
                }
            }

            // The device saw exactly the chunk sequence of docs/model/mmio-cache.md §6.3 for each operand's MMIO
            // pieces, in operand order, each byte once; every Retry was re-issued unchanged next.
            private void CheckDeviceLog()
            {
                Span<int> sizes = stackalloc int[16];
                _expectedChunks.Clear();
                Array.Clear(_seen);
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    if (op.HasMmio)
                    {
                        _mmioOps++;
                    }

                    if (op.PieceCount == 2 && op.HasMmio)
                    {
                        _crossingOps++;
                    }

                    for (int p = 0; p < op.PieceCount; p++)
                    {
                        if (!op.PieceMmio[p])
                        {
                            continue;
                        }

                        ulong gpa = ((WindowGfn + (ulong)op.PieceWin[p]) << 12) + (ulong)op.PieceOff[p];
                        int device = _owner[op.PieceWin[p]]!.Id;
                        int count = Chunks(op.PieceLen[p], sizes);
                        int at = 0;
                        for (int c = 0; c < count; c++)
                        {
                            int n = sizes[c];
                            ulong value = op.IsWrite ? Little(op.Data.AsSpan(op.PieceStart[p] + at, n)) : 0;
                            _expectedChunks.Add(new Request(k, device, gpa + (ulong)at, n, op.IsWrite, value, false));
                            at += n;
                        }
                    }
                }

                int done = 0;
                for (int t = 0; t < _log.Count; t++)
                {
                    Request q = _log[t];
                    _requests++;
                    if (q.Retried)
                    {
                        _retries++;
                        if (t + 1 >= _log.Count || !SameRequest(q, _log[t + 1]))
                        {
                            Fail($"device request #{t} {Show(q)} answered Retry was not re-issued next (next: {(t + 1 < _log.Count ? Show(_log[t + 1]) : "none")})");
                        }

                        continue;
                    }

                    CountBytes(q, t);
                    if (done >= _expectedChunks.Count || !SameRequest(q, _expectedChunks[done]))
                    {
                        Fail($"completed device request #{t} {Show(q)}; expected {(done < _expectedChunks.Count ? Show(_expectedChunks[done]) : "no more requests")}");
                    }

                    done++;
                }

                if (done != _expectedChunks.Count)
                {
                    Fail($"the device completed {done} requests, expected {_expectedChunks.Count}; first missing {Show(_expectedChunks[done])}");
                }

                // An asynchronous device model (docs/model/mmio-cache.md §6.8): each re-execution replays what is
                // finished and issues exactly one new request, which is answered Retry again.
                if (_retryRate == Asynchronous && (_log.Count != 2 * done || _pass != done + 1))
                {
                    Fail($"asynchronous device: {_log.Count} requests and {_pass} passes for {done} completed requests, expected {2 * done} and {done + 1}");
                }

                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    for (int p = 0; p < op.PieceCount; p++)
                    {
                        for (int b = op.PieceStart[p]; b < op.PieceStart[p] + op.PieceLen[p]; b++)
                        {
                            int want = op.PieceMmio[p] ? 1 : 0;
                            if (_seen[k, b] != want)
                            {
                                Fail($"operand {k} byte {b} ({(op.PieceMmio[p] ? "MMIO" : "RAM")}) was seen by the device {_seen[k, b]} times over {_pass} passes, expected {want}");
                            }
                        }
                    }
                }
            }

            private void CountBytes(Request q, int t)
            {
                Operand op = _ops[q.Op];
                int win = (int)((q.Gpa >> 12) - WindowGfn);
                int offset = (int)(q.Gpa & 0xFFF);
                for (int p = 0; p < op.PieceCount; p++)
                {
                    if (op.PieceMmio[p] && op.PieceWin[p] == win && offset >= op.PieceOff[p] && offset + q.Size <= op.PieceOff[p] + op.PieceLen[p])
                    {
                        for (int b = 0; b < q.Size; b++)
                        {
                            _seen[q.Op, op.PieceStart[p] + offset - op.PieceOff[p] + b]++;
                        }

                        return;
                    }
                }

                Fail($"device request #{t} {Show(q)} lies outside the MMIO bytes of operand {q.Op}");
            }

            private static bool SameRequest(Request a, Request b)
                => a.Op == b.Op && a.Device == b.Device && a.Gpa == b.Gpa && a.Size == b.Size && a.Write == b.Write
                   && (!a.Write || (a.Value & Mask(a.Size)) == (b.Value & Mask(b.Size)));

            // One entry per MMIO operand, keyed by its starting address: skip = first MMIO byte,
            // size = one past the last.
            private void CheckCache(HvmEmulation emu)
            {
                int mmioOps = 0;
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    AccessTag tag = op.Kind == OpKind.CmpXchg ? AccessTag.Operand : op.Tag;
                    bool present = emu.TryGetCacheEntry(op.Gla, op.IsWrite, tag, out int skip, out int size);
                    if (!op.HasMmio)
                    {
                        if (present)
                        {
                            Fail($"operand {k} touches no MMIO but has a cache entry (skip {skip}, size {size})");
                        }

                        continue;
                    }

                    mmioOps++;
                    int wantSkip = op.PieceMmio[0] ? 0 : op.PieceLen[0];
                    int wantSize = op.PieceCount == 2 && op.PieceMmio[1] ? op.Size : op.PieceLen[0];
                    if (!present || skip != wantSkip || size != wantSize)
                    {
                        Fail($"operand {k}: cache entry {(present ? $"skip {skip} size {size}" : "missing")}, expected skip {wantSkip} size {wantSize}");
                    }
                }

                if (emu.CacheEntriesInUse != mmioOps)
                {
                    Fail($"{emu.CacheEntriesInUse} cache entries in use, expected {mmioOps} (one per MMIO operand)");
                }
            }

            // The bytes around every operand piece, in RAM or the device, equal the model.
            private void CheckMemory()
            {
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    for (int p = 0; p < op.PieceCount; p++)
                    {
                        int from = Math.Max(0, op.PieceOff[p] - 64), to = Math.Min(4096, op.PieceOff[p] + op.PieceLen[p] + 64);
                        ComparePage(op.PieceWin[p], from, to);
                        int refs = _memory.ReferenceCount(_ramMfn + (ulong)op.PieceWin[p]);
                        if (refs != 0)
                        {
                            Fail($"operand {k} piece {p}: the frame of window page {op.PieceWin[p]} still holds {refs} page reference(s)");
                        }
                    }
                }
            }

            private void CheckWholeWindow()
            {
                for (int w = 0; w < WindowPages; w++)
                {
                    ComparePage(w, 0, 4096);
                }
            }

            private void ComparePage(int win, int from, int to)
            {
                ReadOnlySpan<byte> want = _model.AsSpan((win * 4096) + from, to - from);
                ReadOnlySpan<byte> got = _isMmio[win]
                    ? _deviceStore.AsSpan((win * 4096) + from, to - from)
                    : _memory.Frame(_ramMfn + (ulong)win).Slice(from, to - from);
                if (!got.SequenceEqual(want))
                {
                    int at = 0;
                    while (got[at] == want[at])
                    {
                        at++;
                    }

                    ulong gpa = ((WindowGfn + (ulong)win) << 12) + (ulong)(from + at);
                    int len = Math.Min(16, want.Length - at);
                    Fail($"{(_isMmio[win] ? "device" : "RAM")} bytes at GPA 0x{gpa:X}: {Hex(got.Slice(at, len))}, the one-pass reference {Hex(want.Slice(at, len))}");
                }
            }

            // A re-run reproduces the results only when no operand's RAM input is changed by a
            // later operand and no all-RAM exchange changed its own bytes.
            private bool RerunSafe()
            {
                for (int j = 0; j < _opCount; j++)
                {
                    Operand op = _ops[j];
                    if (op.Kind == OpKind.CmpXchg && op.AllRam && op.RefSuccess && !op.Expected.AsSpan(0, op.Size).SequenceEqual(op.Data.AsSpan(0, op.Size)))
                    {
                        return false;
                    }

                    for (int i = 0; i < j; i++)
                    {
                        if (op.IsWrite && _ops[i].ReadsRam && RamOverlap(_ops[i], op))
                        {
                            return false;
                        }
                    }
                }

                return true;
            }

            // The page-crossing phase: an 8-byte MMIO operand at page offset o (0xFF9..0xFFF) of
            // page P, continuing on page Q of another device, is split (4096 - o) + (o - 4088)
            // bytes; e.g. o = 0xFFA: 4 at P+0xFFA, 2 at P+0xFFE, 2 at Q+0 (docs/model/mmio-cache.md §6.8).
            private void CheckPageCrossingLiterally()
            {
                int t = 0;
                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    int first = 4096 - op.PieceOff[0];
                    int[] sizes = first switch
                    {
                        1 => [1, 4, 2, 1],
                        2 => [2, 4, 2],
                        3 => [2, 1, 4, 1],
                        4 => [4, 4],
                        5 => [4, 1, 2, 1],
                        6 => [4, 2, 2],
                        _ => [4, 2, 1, 1],
                    };
                    ulong p = ((WindowGfn + (ulong)op.PieceWin[0]) << 12) + (ulong)op.PieceOff[0];
                    ulong q = (WindowGfn + (ulong)op.PieceWin[1]) << 12;
                    int at = 0;
                    foreach (int n in sizes)
                    {
                        while (_log[t].Retried)
                        {
                            t++;
                        }

                        Request r = _log[t++];
                        ulong gpa = at < first ? p + (ulong)at : q + (ulong)(at - first);
                        int device = _owner[op.PieceWin[at < first ? 0 : 1]]!.Id;
                        if (r.Op != k || r.Gpa != gpa || r.Size != n || r.Device != device || _owner[op.PieceWin[0]] == _owner[op.PieceWin[1]])
                        {
                            Fail($"page-crossing operand {k} at offset 0x{op.PieceOff[0]:X}: request {Show(r)}, expected {n} bytes at 0x{gpa:X} on device {device}");
                        }

                        at += n;
                    }
                }
            }

            // ---- the recording device -------------------------------------------------------

            public MmioResult DeviceAccess(RecordingDevice device, ulong gpa, int size, bool write, ulong value, out ulong result)
            {
                result = 0;
                if (_forbidDevice)
                {
                    Fail($"re-run after success: the device was asked to {(write ? "write" : "read")} {size} bytes at 0x{gpa:X}");
                }

                if (size is not (1 or 2 or 4 or 8))
                {
                    Fail($"device access of {size} bytes at 0x{gpa:X}");
                }

                if ((gpa & 0xFFF) + (ulong)size > 0x1000)
                {
                    Fail($"device access of {size} bytes at 0x{gpa:X} crosses a page");
                }

                ulong gfn = gpa >> 12;
                if (gfn < WindowGfn + (ulong)device.FirstWin || gfn >= WindowGfn + (ulong)(device.FirstWin + device.Pages))
                {
                    Fail($"device {device.Id} (GFNs 0x{WindowGfn + (ulong)device.FirstWin:X}+{device.Pages}) asked for 0x{gpa:X}");
                }

                int at = (int)((gfn - WindowGfn) << 12) + (int)(gpa & 0xFFF);
                bool retry = _retryRate == Asynchronous
                    ? _log.Count == 0 || !_log[^1].Retried || !SameRequest(_log[^1], new Request(_currentOp, device.Id, gpa, size, write, value, true))
                    : _retryRate > 0 && _rng.NextDouble() < _retryRate;
                if (retry)
                {
                    _log.Add(new Request(_currentOp, device.Id, gpa, size, write, value, true));
                    result = 0xBAD0_BAD0_BAD0_BAD0;     // must not be used
                    return MmioResult.Retry;
                }

                Span<byte> bytes = _deviceStore.AsSpan(at, size);
                if (write)
                {
                    Span<byte> v = stackalloc byte[8];
                    BinaryPrimitives.WriteUInt64LittleEndian(v, value);
                    v[..size].CopyTo(bytes);
                }
                else
                {
                    result = Little(bytes);
                }

                _log.Add(new Request(_currentOp, device.Id, gpa, size, write, write ? value : result, false));
                return MmioResult.Okay;
            }

            // ---- helpers ---------------------------------------------------------------------

            private static ulong Little(ReadOnlySpan<byte> bytes)
            {
                Span<byte> v = stackalloc byte[8];
                v.Clear();
                bytes.CopyTo(v);
                return BinaryPrimitives.ReadUInt64LittleEndian(v);
            }

            private static ulong Mask(int size) => size == 8 ? ~0UL : (1UL << (8 * size)) - 1;

            private static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexString(bytes);

            private static string Show(Request q)
                => $"[op {q.Op} dev {q.Device} {(q.Write ? "write" : "read")} {q.Size} @0x{q.Gpa:X}{(q.Write ? $" = 0x{q.Value & Mask(q.Size):X}" : string.Empty)}{(q.Retried ? " RETRY" : string.Empty)}]";

            [DoesNotReturn]
            private void Fail(string what)
            {
                var sb = new StringBuilder();
                sb.Append($"seed 0x{_seed:X}, layout {_layout}, instruction {_instruction} (pass {_pass}): {what}\n");
                sb.Append($"mode {(_longMode ? "LongMode4" : "Flat")}, linear base 0x{_linBase:X}, retry rate {(_retryRate == Asynchronous ? "asynchronous" : _retryRate.ToString(CultureInfo.InvariantCulture))}, HvmEmulation({_cacheEntries} entries, {_entryBytes} bytes)\n");
                sb.Append("window (GFN 0x40..): ");
                for (int w = 0; w < WindowPages; w++)
                {
                    sb.Append(_isMmio[w] ? $"M{_owner[w]!.Id} " : "R ");
                }

                sb.Append('\n');
                if (_longMode)
                {
                    sb.Append("linear page -> window page: ");
                    for (int j = 0; j < _linPages; j++)
                    {
                        sb.Append($"{j}->{_linToWin[j]} ");
                    }

                    sb.Append('\n');
                }

                for (int k = 0; k < _opCount; k++)
                {
                    Operand op = _ops[k];
                    sb.Append($"op {k}: {op.Kind} {op.Size} bytes at 0x{op.Gla:X} tag {op.Tag} pfec {op.Pfec}{(op.UseCurrent && op.Kind == OpKind.CmpXchg ? " (current)" : string.Empty)};");
                    for (int p = 0; p < op.PieceCount; p++)
                    {
                        ulong gpa = ((WindowGfn + (ulong)op.PieceWin[p]) << 12) + (ulong)op.PieceOff[p];
                        sb.Append($" [{op.PieceLen[p]} @0x{gpa:X} {(op.PieceMmio[p] ? $"MMIO dev {_owner[op.PieceWin[p]]!.Id}" : "RAM")}]");
                    }

                    if (op.Kind == OpKind.CmpXchg)
                    {
                        sb.Append($" expected {Hex(op.Expected.AsSpan(0, op.Size))}");
                    }

                    if (op.IsWrite)
                    {
                        sb.Append($" data {Hex(op.Data.AsSpan(0, op.Size))}");
                    }

                    sb.Append('\n');
                }

                sb.Append("device log:");
                for (int t = 0; t < _log.Count && t < 200; t++)
                {
                    sb.Append(' ').Append(Show(_log[t]));
                }

                throw new XunitException(sb.ToString());
            }
        }
    }
}
