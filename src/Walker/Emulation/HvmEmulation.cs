// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

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
    /// <para><b>Translation.</b> An access within one page that the vCPU's combined TLB
    /// (<see cref="Vcpu.Tlb"/>) holds as guest RAM is done from the hit: a read copies and then
    /// checks that no invalidation happened, a write references the frame first. Otherwise each
    /// piece is translated by <see cref="Vcpu.GetPageFromGva"/>
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
    public sealed partial class HvmEmulation
    {
        /// <summary>Largest access: one 512-bit operand.</summary>
        public const int MaxAccessBytes = 64;

        private const int MaxResolveRounds = 8;

        private readonly Vcpu _vcpu;
        private readonly Domain _domain;
        private readonly MmioCache _cache;
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
            _cache = new MmioCache(cacheEntries, entryBytes);
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
        public int CacheEntriesInUse => _cache.Count;

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
            if (OnePageNoDevice(gla, buffer.Length) && TryTlbAccess(gla, buffer, default, write: false, pfec))
            {
                return Done();      // one page of RAM the TLB holds, no device operand in flight
            }

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
            if (OnePageNoDevice(gla, data.Length) && TryTlbAccess(gla, default, data, write: true, pfec))
            {
                return Done();
            }

            return Access(gla, default, data, write: true, pfec, tag);
        }

        /// <summary>
        /// The instruction retired (or was abandoned): drops the MMIO cache and any pending device
        /// request, so the next instruction starts afresh (Xen's cache reset / hvmemul_cancel).
        /// </summary>
        public void Complete()
        {
            _cache.Clear();
            _pending = default;
        }

        /// <summary>Test view of one cache entry: whether it exists, its skip and completed size.</summary>
        internal bool TryGetCacheEntry(ulong gla, bool write, AccessTag tag, out int skip, out int size)
        {
            MmioCache.Entry? e = _cache.Find(gla, write, tag);
            skip = e?.Skip ?? 0;
            size = e?.Size ?? 0;
            return e is not null;
        }

        // ---- the access --------------------------------------------------------------------

        private static PageFaultErrorCode Describe(PageFaultErrorCode pfec, AccessTag tag, bool write)
        {
            Vcpu.CheckPfec(pfec);
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
                MmioCache.Entry? entry = _cache.Find(gla, write, tag);
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
                            entry ??= _cache.Create(gla, write, tag, offset);
                            if (entry is null)
                            {
                                return Fail($"More than {_cache.Capacity} MMIO operands in one instruction.");
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

        // The TLB path's precondition: the access stays in one page and no device operand of
        // this instruction is cached or pending (those need the piece bookkeeping).
        private bool OnePageNoDevice(ulong gla, int length)
            => _cache.Count == 0 && !_pending.Active && length <= MaxAccessBytes && (gla & EptEntry.PageMask) + (ulong)length <= EptEntry.PageSize;

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
    }
}
