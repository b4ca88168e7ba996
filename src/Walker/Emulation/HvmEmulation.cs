// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using FastEpt.Internal;

namespace FastEpt
{
    /// <summary>
    /// Emulated linear-memory accesses of one vCPU, one instruction at a time (Xen's hvm/emulate.c
    /// with the 2025 page-split fixes, docs/model/mmio-cache.md and docs/model/README.md §0.7): accesses of 1 to
    /// 64 bytes at any linear address, split at page boundaries, each piece going to guest RAM or
    /// to the <see cref="IMmioDevice"/> that owns its GPA by its own translation, with an MMIO
    /// cache that makes device retries safe.
    /// </summary>
    /// <remarks>
    /// <para><b>The MMIO cache.</b> An instruction's device bytes are recorded in up to
    /// <c>cacheEntries</c> entries of <c>entryBytes</c> bytes, one per operand, keyed by the
    /// operand's starting linear address, direction and <see cref="AccessTag"/> (never by an
    /// address advanced past a page boundary), with a <c>skip</c> for a RAM prefix. When a device
    /// answers <see cref="MmioResult.Retry"/> the call returns <see cref="EmulationResult.Retry"/>
    /// and the embedder runs the same instruction again: finished device reads are replayed from
    /// the cache, finished device writes are compared with the new data and not re-issued, RAM
    /// pieces are redone, and the device sees the pending request again. So every device byte is
    /// touched exactly once per instruction. <see cref="Complete"/> drops the cache when the
    /// instruction retires.</para>
    /// <para><b>Translation.</b> Each piece is translated by <see cref="Vcpu.GetPageFromGva"/>
    /// (stage 1 as the CPU does it, accessed/dirty flags included; mem_access restrictions do not
    /// apply to the hypervisor's own access, as in Xen); a RAM page stays referenced while it is
    /// copied. Every piece is translated before anything is read or written, so a fault on the
    /// second page leaves the first untouched. An EPT violation that is not a device access goes
    /// through <see cref="Domain.HandleEptViolationExit"/> (lazy altp2m copy, populate-on-demand,
    /// unsharing, log-dirty): <see cref="FaultOutcome.Retry"/> translates again, a discarded
    /// write (read-only RAM) is dropped, a mem_access event gives <see cref="EmulationResult.Retry"/>
    /// (the vCPU waits for the answer), a #VE gives <see cref="EmulationResult.Exception"/>.</para>
    /// <para>Not thread-safe: one instance per vCPU, used by the thread that runs it. Allocates
    /// nothing per access except the text of a failure.</para>
    /// </remarks>
    public sealed unsafe class HvmEmulation
    {
        /// <summary>Largest access: one 512-bit operand.</summary>
        public const int MaxAccessBytes = 64;

        private const int MaxResolveRounds = 8;

        private readonly Vcpu _vcpu;
        private readonly Domain _domain;
        private readonly CacheEntry[] _entries;
        private readonly int _entryBytes;
        private int _used;
        private Pending _pending;

        /// <summary>Creates the emulation context of <paramref name="vcpu"/>.</summary>
        /// <param name="vcpu">The vCPU whose accesses are emulated.</param>
        /// <param name="cacheEntries">MMIO cache entries: independent device operands per instruction (1 to 16; Xen: 3).</param>
        /// <param name="entryBytes">Bytes per entry (8 to 4096, a multiple of 8; Xen: 64).</param>
        /// <exception cref="ArgumentNullException"><paramref name="vcpu"/> is null.</exception>
        /// <exception cref="ArgumentOutOfRangeException">A size is out of range.</exception>
        public HvmEmulation(Vcpu vcpu, int cacheEntries = 3, int entryBytes = 64)
        {
            ArgumentNullException.ThrowIfNull(vcpu);
            if (cacheEntries < 1 || cacheEntries > 16)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(cacheEntries), cacheEntries, "Between 1 and 16 cache entries.");
            }

            if (entryBytes < 8 || entryBytes > 4096 || entryBytes % 8 != 0)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(entryBytes), entryBytes, "Between 8 and 4096 bytes, a multiple of 8.");
            }

            _vcpu = vcpu;
            _domain = vcpu.Domain;
            _entryBytes = entryBytes;
            _entries = new CacheEntry[cacheEntries];
            for (int i = 0; i < cacheEntries; i++)
            {
                _entries[i] = new CacheEntry(entryBytes);
            }
        }

        /// <summary>The vCPU this context emulates for.</summary>
        public Vcpu Vcpu => _vcpu;

        /// <summary>Why the last call returned <see cref="EmulationResult.Unhandleable"/> (null after any other result).</summary>
        public string? LastFailure { get; private set; }

        /// <summary>The exception of the last call that returned <see cref="EmulationResult.Exception"/>.</summary>
        public EmulationException LastException { get; private set; }

        /// <summary>Whether the last <see cref="CmpXchg(ulong, ReadOnlySpan{byte}, ReadOnlySpan{byte}, PageFaultErrorCode)"/> found the expected value (always true when it degraded to a write).</summary>
        public bool LastCompareSucceeded { get; private set; }

        /// <summary>MMIO cache entries in use by the current instruction (Xen's mmio_cache_count).</summary>
        public int CacheEntriesInUse => _used;

        /// <summary>True while a device request answered <see cref="MmioResult.Retry"/> waits to be re-issued.</summary>
        public bool HasPendingRequest => _pending.Active;

        /// <summary>Reads <paramref name="buffer"/>.Length bytes at <paramref name="gla"/>.</summary>
        /// <param name="gla">The linear address of the operand's first byte.</param>
        /// <param name="buffer">Receives the bytes (1 to 64 of them).</param>
        /// <param name="pfec">User and InstructionFetch describe the access (Write is ignored; Present is ignored).</param>
        /// <param name="tag">The access class: <see cref="AccessTag.InstructionFetch"/> is a fetch, <see cref="AccessTag.SystemTable"/> a supervisor access.</param>
        /// <exception cref="ArgumentException"><paramref name="buffer"/> is empty.</exception>
        /// <exception cref="ArgumentOutOfRangeException">Unknown <paramref name="pfec"/> bits or <paramref name="tag"/>.</exception>
        public EmulationResult LinearRead(ulong gla, Span<byte> buffer, PageFaultErrorCode pfec, AccessTag tag = AccessTag.Operand)
        {
            if (buffer.IsEmpty)
            {
                ThrowHelper.ThrowArgumentException(nameof(buffer), "An access reads at least one byte.");
            }

            pfec = Describe(pfec, tag, write: false);
            return Access(gla, buffer, default, write: false, pfec, tag);
        }

        /// <summary>Writes <paramref name="data"/> (1 to 64 bytes) at <paramref name="gla"/>.</summary>
        /// <param name="gla">The linear address of the operand's first byte.</param>
        /// <param name="data">The bytes to write.</param>
        /// <param name="pfec">User describes the access (Write is implied; InstructionFetch is not allowed).</param>
        /// <param name="tag">The access class (<see cref="AccessTag.InstructionFetch"/> is not a write).</param>
        /// <exception cref="ArgumentException"><paramref name="data"/> is empty, or the tag is InstructionFetch.</exception>
        /// <exception cref="ArgumentOutOfRangeException">Unknown <paramref name="pfec"/> bits or <paramref name="tag"/>.</exception>
        public EmulationResult LinearWrite(ulong gla, ReadOnlySpan<byte> data, PageFaultErrorCode pfec, AccessTag tag = AccessTag.Operand)
        {
            if (data.IsEmpty)
            {
                ThrowHelper.ThrowArgumentException(nameof(data), "An access writes at least one byte.");
            }

            pfec = Describe(pfec, tag, write: true);
            return Access(gla, default, data, write: true, pfec, tag);
        }

        /// <summary>
        /// A locked compare-exchange of <paramref name="expected"/>.Length bytes at <paramref name="gla"/>.
        /// On RAM: when the bytes equal <paramref name="expected"/> they become <paramref name="desired"/>
        /// (<see cref="LastCompareSucceeded"/>); atomic for a naturally aligned 1, 2, 4 or 8 bytes,
        /// otherwise compared and written with both pages translated first (not atomic against other
        /// vCPUs). When any byte is MMIO or discarded read-only RAM it degrades to a plain write of
        /// <paramref name="desired"/> keyed by its own address, as Xen's does.
        /// </summary>
        /// <exception cref="ArgumentException">Empty or different-length operands.</exception>
        /// <exception cref="ArgumentOutOfRangeException">Unknown <paramref name="pfec"/> bits.</exception>
        public EmulationResult CmpXchg(ulong gla, ReadOnlySpan<byte> expected, ReadOnlySpan<byte> desired, PageFaultErrorCode pfec)
            => CmpXchg(gla, expected, desired, pfec, default);

        /// <summary>
        /// <see cref="CmpXchg(ulong, ReadOnlySpan{byte}, ReadOnlySpan{byte}, PageFaultErrorCode)"/> that
        /// also returns the bytes found (the value the CPU loads into the accumulator on a mismatch).
        /// </summary>
        /// <param name="gla">The linear address.</param>
        /// <param name="expected">The comparand.</param>
        /// <param name="desired">The new value.</param>
        /// <param name="pfec">User describes the access.</param>
        /// <param name="current">Empty, or as long as <paramref name="expected"/>: receives the bytes found (equal to
        /// <paramref name="expected"/> on success or when it degraded to a write).</param>
        /// <exception cref="ArgumentException">Empty or different-length operands.</exception>
        /// <exception cref="ArgumentOutOfRangeException">Unknown <paramref name="pfec"/> bits.</exception>
        public EmulationResult CmpXchg(ulong gla, ReadOnlySpan<byte> expected, ReadOnlySpan<byte> desired, PageFaultErrorCode pfec, Span<byte> current)
        {
            if (expected.IsEmpty || desired.Length != expected.Length)
            {
                ThrowHelper.ThrowArgumentException(nameof(desired), "Compare-exchange operands must be non-empty and of one length.");
            }

            if (!current.IsEmpty && current.Length != expected.Length)
            {
                ThrowHelper.ThrowArgumentException(nameof(current), "The current-value span must be empty or as long as the operands.");
            }

            pfec = Describe(pfec, AccessTag.Operand, write: true);
            LastCompareSucceeded = false;
            if (!Prepare(gla, expected.Length, pfec, AccessTag.Operand, out Pieces pieces, out EmulationResult early))
            {
                return early;
            }

            try
            {
                if (!pieces.AllRam)
                {
                    // Xen's hvmemul_cmpxchg cannot map MMIO: it becomes a plain write.
                    pieces.Release();
                    EmulationResult r = Access(gla, default, desired, write: true, pfec, AccessTag.Operand);
                    if (r == EmulationResult.Okay)
                    {
                        LastCompareSucceeded = true;
                        if (!current.IsEmpty)
                        {
                            expected.CopyTo(current);
                        }
                    }

                    return r;
                }

                LastCompareSucceeded = CompareExchangeRam(ref pieces, expected, desired, current);
                return Done();
            }
            finally
            {
                pieces.Release();
            }
        }

        /// <summary>
        /// The instruction retired (or was abandoned): drops the MMIO cache and any pending device
        /// request, so the next instruction starts afresh (Xen's cache reset / hvmemul_cancel).
        /// </summary>
        public void Complete()
        {
            for (int i = 0; i < _used; i++)
            {
                _entries[i].Clear();
            }

            _used = 0;
            _pending = default;
        }

        /// <summary>Test view of one cache entry: whether it exists, its skip and completed size.</summary>
        internal bool TryGetCacheEntry(ulong gla, bool write, AccessTag tag, out int skip, out int size)
        {
            CacheEntry? e = Find(gla, write, tag);
            skip = e?.Skip ?? 0;
            size = e?.Size ?? 0;
            return e is not null;
        }

        // ---- the access --------------------------------------------------------------------

        private static PageFaultErrorCode Describe(PageFaultErrorCode pfec, AccessTag tag, bool write)
        {
            const uint Allowed = (uint)(PageFaultErrorCode.Present | PageFaultErrorCode.Write | PageFaultErrorCode.User | PageFaultErrorCode.InstructionFetch);
            if (((uint)pfec & ~Allowed) != 0)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(pfec), pfec, "Only Present, Write, User and InstructionFetch describe an access.");
            }

            if ((uint)tag > (uint)AccessTag.SystemTable)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(tag), tag, "Unknown access tag.");
            }

            pfec &= PageFaultErrorCode.User | PageFaultErrorCode.InstructionFetch;
            if (write)
            {
                if (tag == AccessTag.InstructionFetch || (pfec & PageFaultErrorCode.InstructionFetch) != 0)
                {
                    ThrowHelper.ThrowArgumentException(nameof(tag), "An instruction fetch is not a write.");
                }

                pfec |= PageFaultErrorCode.Write;
            }
            else if (tag == AccessTag.InstructionFetch)
            {
                pfec |= PageFaultErrorCode.InstructionFetch;
            }

            // Descriptor-table and other implicit accesses are supervisor accesses at any CPL.
            return tag == AccessTag.SystemTable ? pfec & ~PageFaultErrorCode.User : pfec;
        }

        private EmulationResult Access(ulong gla, Span<byte> readBuf, ReadOnlySpan<byte> writeData, bool write, PageFaultErrorCode pfec, AccessTag tag)
        {
            int length = write ? writeData.Length : readBuf.Length;
            if (!Prepare(gla, length, pfec, tag, out Pieces pieces, out EmulationResult early))
            {
                return early;
            }

            try
            {
                CacheEntry? entry = Find(gla, write, tag);
                for (int p = 0; p < pieces.Count; p++)
                {
                    ref Piece piece = ref pieces[p];
                    int offset = (int)(piece.Gla - gla);
                    int end = offset + piece.Length;
                    bool inWindow = entry is not null && end > entry.Skip && offset < entry.Size;
                    switch (piece.Kind)
                    {
                        case PieceKind.Ram when !inWindow:
                            Span<byte> ram = piece.Page.Bytes.Slice(piece.Page.Offset, piece.Length);
                            if (write)
                            {
                                writeData.Slice(offset, piece.Length).CopyTo(ram);
                            }
                            else
                            {
                                ram.CopyTo(readBuf.Slice(offset, piece.Length));
                            }

                            break;

                        case PieceKind.Discard when !inWindow:
                            break;      // a write to read-only RAM is dropped (Xen: discard-write types)

                        case PieceKind.Ram:
                        case PieceKind.Discard:
                            // RAM now, but the cache holds device bytes for it: the translation
                            // changed under a pending instruction. Replay what is cached, never mix.
                            if (offset < entry!.Skip || end > entry.Size)
                            {
                                return Fail($"The piece at 0x{piece.Gla:X} was MMIO earlier in this instruction and is RAM now; run Complete() and emulate it afresh.");
                            }

                            EmulationResult replay = Replay(entry, offset, piece.Length, readBuf, writeData, write);
                            if (replay != EmulationResult.Okay)
                            {
                                return replay;
                            }

                            break;

                        default:
                            entry ??= Create(gla, write, tag, offset);
                            if (entry is null)
                            {
                                return Fail($"More than {_entries.Length} MMIO operands in one instruction.");
                            }

                            EmulationResult r = PhysMmio(entry, piece.Device!, piece.Gpa, piece.Length, offset, readBuf, writeData, write);
                            if (r != EmulationResult.Okay)
                            {
                                return r;
                            }

                            break;
                    }
                }

                return Done();
            }
            finally
            {
                pieces.Release();
            }
        }

        // Splits the access at the page boundary and translates every piece before anything is
        // touched. False with the result to return when a piece cannot proceed.
        private bool Prepare(ulong gla, int length, PageFaultErrorCode pfec, AccessTag tag, out Pieces pieces, out EmulationResult result)
        {
            pieces = default;
            LastFailure = null;
            if (length > MaxAccessBytes)
            {
                result = Fail($"An access of {length} bytes is larger than {MaxAccessBytes}.");
                return false;
            }

            if (gla + (ulong)(length - 1) < gla)
            {
                result = Fail($"The access at 0x{gla:X} of {length} bytes wraps around the top of the address space.");
                return false;
            }

            int first = (int)Math.Min((ulong)length, EptEntry.PageSize - (gla & EptEntry.PageMask));
            pieces.Count = first == length ? 1 : 2;
            for (int p = 0; p < pieces.Count; p++)
            {
                ulong pieceGla = p == 0 ? gla : gla + (ulong)first;
                int pieceLength = p == 0 ? first : length - first;
                result = Translate(pieceGla, pieceLength, pfec, tag, ref pieces[p]);
                if (result != EmulationResult.Okay)
                {
                    pieces.Release();
                    return false;
                }
            }

            result = EmulationResult.Okay;
            return true;
        }

        private EmulationResult Translate(ulong gla, int length, PageFaultErrorCode pfec, AccessTag tag, ref Piece piece)
        {
            bool write = (pfec & PageFaultErrorCode.Write) != 0;
            AccessKind kind = write ? AccessKind.Write
                              : (pfec & PageFaultErrorCode.InstructionFetch) != 0 ? AccessKind.Execute : AccessKind.Read;
            bool user = (pfec & PageFaultErrorCode.User) != 0;
            piece = new Piece { Gla = gla, Length = length };
            for (int round = 0; round < MaxResolveRounds; round++)
            {
                GuestPage page = _vcpu.GetPageFromGva(gla, kind, user);
                switch (page.Status)
                {
                    case GuestPageStatus.Ok:
                        piece.Kind = PieceKind.Ram;
                        piece.Page = page;
                        return EmulationResult.Okay;

                    case GuestPageStatus.PageFault:
                        return Raise(14, (uint)page.Translation.ErrorCode, gla);

                    case GuestPageStatus.NonCanonical:
                        return Raise(13, 0, gla);

                    case GuestPageStatus.EptMisconfig:
                        // A lazily recalculated path (log-dirty, type changes): resolve it and look again.
                        if (page.Translation.Gpa < _domain.HostP2m.GpaLimit
                            && _domain.HandleEptMisconfig(_vcpu, page.Translation.Gpa) == FaultOutcome.Retry)
                        {
                            continue;
                        }

                        return Fail($"EPT misconfiguration at GPA 0x{page.Translation.Gpa:X} translating 0x{gla:X}.");
                }

                GuestTranslation t = page.Translation;
                bool final = page.Status == GuestPageStatus.NotRam || (t.Ept.Qualification & (1UL << 8)) != 0;
                ulong gpa = page.Status == GuestPageStatus.NotRam ? page.Gpa : t.Gpa;
                if (final && _domain.TryGetMmioDevice(gpa >> EptEntry.PageBits, out IMmioDevice device))
                {
                    if (tag == AccessTag.InstructionFetch || kind == AccessKind.Execute)
                    {
                        return Fail($"Instruction fetch from MMIO at GPA 0x{gpa:X}.");
                    }

                    piece.Kind = PieceKind.Mmio;
                    piece.Gpa = gpa;
                    piece.Device = device;
                    return EmulationResult.Okay;
                }

                if (page.Status == GuestPageStatus.NotRam || gpa >= _domain.HostP2m.GpaLimit)
                {
                    return Fail($"GPA 0x{gpa:X} (from 0x{gla:X}) is neither guest RAM nor a registered device.");
                }

                // Let the domain resolve what it can: lazy altp2m copy, PoD, unsharing, log-dirty.
                FaultOutcome o = _domain.HandleEptViolationExit(_vcpu, gpa, t.Ept.Qualification, gla);
                switch (o)
                {
                    case FaultOutcome.Retry:
                        continue;

                    case FaultOutcome.Mmio when write && final && IsDiscardWrite(gpa):
                        piece.Kind = PieceKind.Discard;
                        piece.Gpa = gpa;
                        return EmulationResult.Okay;

                    case FaultOutcome.MemAccessEvent:
                        LastFailure = null;
                        return EmulationResult.Retry;      // the vCPU waits for the listener's answer

                    case FaultOutcome.VirtualizationException:
                        return Raise(Domain.VeVector, 0, gla);

                    default:
                        return Fail($"EPT violation at GPA 0x{gpa:X} (qualification 0x{t.Ept.Qualification:X}) translating 0x{gla:X}: {o}.");
                }
            }

            return Fail($"The translation of 0x{gla:X} kept changing.");
        }

        private bool IsDiscardWrite(ulong gpa)
        {
            P2mType type = _domain.Altp2m.ViewLocked(_vcpu.View).GetEntry(gpa >> EptEntry.PageBits).Type;
            return type is P2mType.RamRo or P2mType.GrantMapRo;
        }

        // Xen's phys_mmio_access: `buffer` is the caller's whole operand and `offset` indexes both
        // it and the cache entry. Completed bytes replay; the rest goes to the device in chunks of
        // the largest power of two that fits, at most 8, never growing again.
        private EmulationResult PhysMmio(CacheEntry e, IMmioDevice device, ulong gpa, int size, int offset, Span<byte> readBuf, ReadOnlySpan<byte> writeData, bool write)
        {
            if (offset + size > _entryBytes)
            {
                return Fail($"Device bytes {offset}..{offset + size} of the operand exceed the {_entryBytes}-byte cache entry.");
            }

            if (offset < e.Skip)
            {
                return Fail($"Device access at operand offset {offset} before the entry's MMIO start ({e.Skip}).");
            }

            int chunk = Math.Min(8, (int)BitOperations.RoundUpToPowerOf2((uint)size + 1) >> 1);
            while (size > 0)
            {
                int n;
                if (offset < e.Size)
                {
                    // Replay what an earlier pass completed (possibly less than a chunk when an
                    // earlier access of this operand was shorter: FastEpt then continues from there).
                    n = Math.Min(size, e.Size - offset);
                    n = Math.Min(n, chunk);
                    EmulationResult r = Replay(e, offset, n, readBuf, writeData, write);
                    if (r != EmulationResult.Okay)
                    {
                        return r;
                    }
                }
                else
                {
                    if (offset != e.Size)
                    {
                        return Fail($"Device access at operand offset {offset} leaves a gap after the {e.Size} bytes completed.");
                    }

                    n = chunk;
                    EmulationResult r = Issue(e, device, gpa, n, offset, readBuf, writeData, write);
                    if (r != EmulationResult.Okay)
                    {
                        return r;
                    }
                }

                gpa += (ulong)n;
                offset += n;
                size -= n;
                while (chunk > size && chunk > 1)
                {
                    chunk >>= 1;
                }
            }

            return EmulationResult.Okay;
        }

        private EmulationResult Replay(CacheEntry e, int offset, int n, Span<byte> readBuf, ReadOnlySpan<byte> writeData, bool write)
        {
            ReadOnlySpan<byte> cached = e.Buffer.AsSpan(offset, n);
            if (!write)
            {
                cached.CopyTo(readBuf.Slice(offset, n));
                return EmulationResult.Okay;
            }

            return cached.SequenceEqual(writeData.Slice(offset, n))
                ? EmulationResult.Okay
                : Fail($"The re-executed instruction writes different data to operand bytes {offset}..{offset + n} than the device already received.");
        }

        private EmulationResult Issue(CacheEntry e, IMmioDevice device, ulong gpa, int n, int offset, Span<byte> readBuf, ReadOnlySpan<byte> writeData, bool write)
        {
            ulong value = 0;
            if (write)
            {
                Span<byte> v = stackalloc byte[8];
                writeData.Slice(offset, n).CopyTo(v);
                value = BinaryPrimitives.ReadUInt64LittleEndian(v);
            }

            var request = new Pending(true, gpa, n, write, value);
            if (_pending.Active && _pending != request)
            {
                return Fail($"The re-issued device request ({(write ? "write" : "read")} of {n} bytes at 0x{gpa:X}) differs from the pending one ({(_pending.Write ? "write" : "read")} of {_pending.Size} bytes at 0x{_pending.Gpa:X}).");
            }

            MmioResult result = write ? device.Write(gpa, n, value) : device.Read(gpa, n, out value);
            if (result == MmioResult.Retry)
            {
                _pending = request;
                LastFailure = null;
                return EmulationResult.Retry;
            }

            if (result != MmioResult.Okay)
            {
                return Fail($"The device answered {result} for a {(write ? "write" : "read")} at 0x{gpa:X}.");
            }

            _pending = default;
            Span<byte> bytes = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
            bytes[..n].CopyTo(e.Buffer.AsSpan(offset, n));
            if (!write)
            {
                bytes[..n].CopyTo(readBuf.Slice(offset, n));
            }

            e.Size += n;
            return EmulationResult.Okay;
        }

        private bool CompareExchangeRam(ref Pieces pieces, ReadOnlySpan<byte> expected, ReadOnlySpan<byte> desired, Span<byte> current)
        {
            int n = expected.Length;
            ref Piece first = ref pieces[0];
            if (pieces.Count == 1 && n is 1 or 2 or 4 or 8 && (first.Page.Offset & (n - 1)) == 0)
            {
                ref byte at = ref first.Page.Bytes[first.Page.Offset];
                ulong want = ReadLittle(expected), next = ReadLittle(desired), found = n switch
                {
                    1 => Interlocked.CompareExchange(ref at, (byte)next, (byte)want),
                    2 => Interlocked.CompareExchange(ref Unsafe.As<byte, ushort>(ref at), (ushort)next, (ushort)want),
                    4 => Interlocked.CompareExchange(ref Unsafe.As<byte, uint>(ref at), (uint)next, (uint)want),
                    _ => Interlocked.CompareExchange(ref Unsafe.As<byte, ulong>(ref at), next, want),
                };
                if (!current.IsEmpty)
                {
                    Span<byte> f = stackalloc byte[8];
                    BinaryPrimitives.WriteUInt64LittleEndian(f, found);
                    f[..n].CopyTo(current);
                }

                return found == want;
            }

            // Unaligned, odd-sized or split: compare, then write (every page already translated).
            Span<byte> seen = stackalloc byte[MaxAccessBytes];
            int at0 = 0;
            for (int p = 0; p < pieces.Count; p++)
            {
                ref Piece piece = ref pieces[p];
                piece.Page.Bytes.Slice(piece.Page.Offset, piece.Length).CopyTo(seen[at0..]);
                at0 += piece.Length;
            }

            if (!current.IsEmpty)
            {
                seen[..n].CopyTo(current);
            }

            if (!seen[..n].SequenceEqual(expected))
            {
                return false;
            }

            at0 = 0;
            for (int p = 0; p < pieces.Count; p++)
            {
                ref Piece piece = ref pieces[p];
                desired.Slice(at0, piece.Length).CopyTo(piece.Page.Bytes.Slice(piece.Page.Offset, piece.Length));
                at0 += piece.Length;
            }

            return true;
        }

        private static ulong ReadLittle(ReadOnlySpan<byte> bytes)
        {
            Span<byte> v = stackalloc byte[8];
            bytes.CopyTo(v);
            return BinaryPrimitives.ReadUInt64LittleEndian(v);
        }

        // ---- cache -------------------------------------------------------------------------

        private CacheEntry? Find(ulong gla, bool write, AccessTag tag)
        {
            for (int i = 0; i < _used; i++)
            {
                CacheEntry e = _entries[i];
                if (e.Gla == gla && e.Write == write && e.Tag == tag)
                {
                    return e;
                }
            }

            return null;
        }

        private CacheEntry? Create(ulong gla, bool write, AccessTag tag, int skip)
        {
            if (_used == _entries.Length || skip >= _entryBytes)
            {
                return null;
            }

            CacheEntry e = _entries[_used++];
            e.Gla = gla;
            e.Write = write;
            e.Tag = tag;
            e.Skip = skip;
            e.Size = skip;
            return e;
        }

        private EmulationResult Done()
        {
            LastFailure = null;
            return EmulationResult.Okay;
        }

        private EmulationResult Fail(string why)
        {
            LastFailure = why;
            return EmulationResult.Unhandleable;
        }

        private EmulationResult Raise(int vector, uint errorCode, ulong gla)
        {
            LastFailure = null;
            LastException = new EmulationException(vector, errorCode, gla);
            return EmulationResult.Exception;
        }

        private sealed class CacheEntry
        {
            public CacheEntry(int bytes) => Buffer = new byte[bytes];

            public byte[] Buffer { get; }

            public ulong Gla { get; set; }

            public bool Write { get; set; }

            public AccessTag Tag { get; set; }

            public int Skip { get; set; }

            public int Size { get; set; }

            public void Clear()
            {
                Array.Clear(Buffer);
                Gla = 0;
                Skip = Size = 0;
            }
        }

        private readonly record struct Pending(bool Active, ulong Gpa, int Size, bool Write, ulong Value);

        private enum PieceKind : byte
        {
            Ram,
            Mmio,
            Discard,
        }

        private struct Piece
        {
            public ulong Gla;
            public int Length;
            public PieceKind Kind;
            public GuestPage Page;
            public ulong Gpa;
            public IMmioDevice? Device;
        }

        // At most two pieces: an access of up to 64 bytes crosses at most one page boundary.
        private struct Pieces
        {
            public int Count;
            private Piece _p0;
            private Piece _p1;

            public readonly bool AllRam
            {
                get
                {
                    bool ram = _p0.Kind == PieceKind.Ram;
                    return Count == 1 ? ram : ram && _p1.Kind == PieceKind.Ram;
                }
            }

            [UnscopedRef]
            public ref Piece this[int i] => ref i == 0 ? ref _p0 : ref _p1;

            // Drops the page references (each once: a released piece forgets its page).
            public void Release()
            {
                for (int i = 0; i < 2; i++)
                {
                    ref Piece p = ref this[i];
                    if (p.Kind == PieceKind.Ram && p.Page.IsOk)
                    {
                        p.Page.Dispose();
                        p.Page = default;
                    }
                }
            }
        }
    }
}
