// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Threading;
using FastEpt.Internal;
using static FastEpt.Interop.FastEptNative;

namespace FastEpt.Interop
{
    /// <summary>
    /// The safe facade over FastEpt's native twin (<c>libfastept</c>, see <c>native/include/fastept.h</c>):
    /// translates, looks up and writes EPT tables in a <see cref="HostMemory"/> with the C walker,
    /// which gives bit-identical results to the managed <see cref="P2m"/> for the same memory and
    /// arguments.
    /// </summary>
    /// <remarks>
    /// <para>A walker is bound either to a <see cref="FastEpt.P2m"/> (<see cref="NativeWalker(FastEpt.P2m)"/>),
    /// whose tables, options and bookkeeping it shares, or to any hierarchy in a host memory
    /// (<see cref="NativeWalker(HostMemory, ulong, P2mOptions?)"/>).</para>
    /// <para><b>Errors.</b> Every argument is checked in managed code before the native call, and
    /// bad arguments throw the same exception types, with the same parameter names, as the
    /// matching <see cref="FastEpt.P2m"/> method.</para>
    /// <para><b>Concurrency.</b> <see cref="Translate"/>, <see cref="TranslateBatch"/> and
    /// <see cref="GetEntry"/> take no lock and allocate nothing; they may run on any number of
    /// threads alongside writers. They announce themselves to FastEpt's epoch-based reclamation as
    /// the managed readers do, so a p2m never frees a table a native walk can still be inside.
    /// <see cref="SetEntry"/> is serialised: on a p2m-bound walker with the p2m's own writers, on a
    /// memory-bound walker with the other writers of that walker.</para>
    /// <para><b>Loading.</b> The first walker created checks that the native library loads and that
    /// its ABI version equals <see cref="FastEptNative.FASTEPT_ABI_VERSION"/>.</para>
    /// </remarks>
    public sealed unsafe class NativeWalker
    {
        // A 1 GiB superpage split down to 4 KiB needs one page directory and 512 page tables.
        private const int WorstCasePool = 1 + 512;

        private static volatile bool s_verified;

        private fastept_walker _walker;                     // pinned with `fixed` for each native call
        private readonly P2m? _p2m;
        private readonly HostMemory _memory;
        private readonly int _levels;
        private readonly int _addressBits;
        private readonly ulong _gpaLimit;
        private readonly ulong _gfnLimit;
        private readonly bool _support1G;
        private readonly bool _customMemoryTypes;           // EmtPolicy or MmioReadOnly set: native SetEntry unsupported
        private readonly Lock? _writeLock;                  // memory-bound walkers only
        private readonly List<(ulong Table, uint Level)>? _retired;

        /// <summary>
        /// Creates a walker over <paramref name="p2m"/>'s tables: same host memory, EPTP and options;
        /// <see cref="GetEntry"/> uses the p2m's <see cref="FastEpt.P2m.MaxMappedPfn"/> at each call,
        /// and <see cref="SetEntry"/> keeps the p2m's own bookkeeping coherent.
        /// </summary>
        /// <param name="p2m">The p2m; it must outlive the walker.</param>
        /// <exception cref="ArgumentNullException"><paramref name="p2m"/> is null.</exception>
        /// <exception cref="ObjectDisposedException">The p2m or its host memory was disposed.</exception>
        /// <exception cref="DllNotFoundException">The native library is not built (run ./build.sh).</exception>
        /// <exception cref="InvalidOperationException">The native library's ABI version differs from the bindings'.</exception>
        public NativeWalker(P2m p2m)
        {
            ArgumentNullException.ThrowIfNull(p2m);
            EnsureNative();
            if (p2m.IsDisposed)
            {
                ThrowHelper.ThrowObjectDisposedException(p2m);
            }

            P2mOptions o = p2m.Options;
            _p2m = p2m;
            _memory = p2m.Memory;
            _levels = p2m.Levels;
            _addressBits = o.AddressBits;
            _support1G = o.Support1G;
            _customMemoryTypes = o.EmtPolicy is not null || o.MmioReadOnly is not null;
            _gpaLimit = 1UL << _addressBits;
            _gfnLimit = 1UL << (_addressBits - EptEntry.PageBits);
            _walker = new fastept_walker
            {
                host_base = _memory.Base,
                host_frames = (ulong)_memory.FrameCount,
                eptp = p2m.Eptp,
                max_mapped_pfn = p2m.MaxMappedPfn,
                address_bits = (uint)o.AddressBits,
                host_address_bits = (uint)o.HostAddressBits,
                caps = CapsOf(o),
                default_access = (uint)o.DefaultAccess,
            };
            CheckWalker("p2m");
        }

        /// <summary>
        /// Creates a walker over any EPT hierarchy in <paramref name="memory"/>, rooted where
        /// <paramref name="eptp"/> says. It keeps its own <see cref="MaxMappedPfn"/> (initially
        /// <see cref="ulong.MaxValue"/>: <see cref="GetEntry"/> always walks).
        /// </summary>
        /// <param name="memory">Where the tables live; it must outlive the walker.</param>
        /// <param name="eptp">The EPT pointer: root table HPA (bits 51:12), levels - 1 (bits 5:3; 4 or 5
        /// levels), memory type and A/D enable (bit 6). The number of levels comes from here.</param>
        /// <param name="options">CPU and domain settings (<see cref="P2mOptions.AddressBits"/>,
        /// <see cref="P2mOptions.HostAddressBits"/>, capabilities, <see cref="P2mOptions.DefaultAccess"/>),
        /// copied now; null for the defaults. <see cref="P2mOptions.Levels"/> and
        /// <see cref="P2mOptions.AccessDirty"/> are taken from <paramref name="eptp"/> instead.</param>
        /// <exception cref="ArgumentNullException"><paramref name="memory"/> is null.</exception>
        /// <exception cref="ArgumentOutOfRangeException">An option is out of range, or <paramref name="eptp"/>
        /// names a level count other than 4 or 5 or a root outside <paramref name="memory"/>.</exception>
        /// <exception cref="ArgumentException">The native library rejects the combination.</exception>
        /// <exception cref="ObjectDisposedException"><paramref name="memory"/> was disposed.</exception>
        /// <exception cref="DllNotFoundException">The native library is not built (run ./build.sh).</exception>
        /// <exception cref="InvalidOperationException">The native library's ABI version differs from the bindings'.</exception>
        public NativeWalker(HostMemory memory, ulong eptp, P2mOptions? options = null)
        {
            ArgumentNullException.ThrowIfNull(memory);
            P2mOptions o = (options ?? new P2mOptions()).Clone();
            o.Validate(nameof(options));
            EnsureNative();

            int levels = (int)((eptp >> 3) & 7) + 1;
            if (levels is not (4 or 5))
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(eptp), $"0x{eptp:X}", $"The EPTP names {levels} paging levels; 4 or 5 are supported.");
            }

            if (o.AddressBits > EptEntry.PageBits + EptEntry.TableOrder * levels)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(options), o.AddressBits, $"P2mOptions.AddressBits must be at most {EptEntry.PageBits + EptEntry.TableOrder * levels} for the EPTP's {levels} levels.");
            }

            ulong root = (eptp & EptEntry.MfnMask) >> EptEntry.MfnShift;
            if (root >= (ulong)memory.FrameCount)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(eptp), $"0x{eptp:X}", $"The root table 0x{root:X} is outside host memory ({memory.FrameCount} frames).");
            }

            _memory = memory;
            _levels = levels;
            _addressBits = o.AddressBits;
            _support1G = o.Support1G;
            _customMemoryTypes = o.EmtPolicy is not null || o.MmioReadOnly is not null;
            _gpaLimit = 1UL << _addressBits;
            _gfnLimit = 1UL << (_addressBits - EptEntry.PageBits);
            _writeLock = new Lock();
            _retired = new List<(ulong, uint)>();
            _walker = new fastept_walker
            {
                host_base = memory.Base,
                host_frames = (ulong)memory.FrameCount,
                eptp = eptp,
                max_mapped_pfn = ulong.MaxValue,
                address_bits = (uint)o.AddressBits,
                host_address_bits = (uint)o.HostAddressBits,
                caps = CapsOf(o),
                default_access = (uint)o.DefaultAccess,
            };
            CheckWalker(nameof(eptp));
        }

        /// <summary>
        /// The ABI version of the loaded native library (<c>fastept_abi_version()</c>); the bindings
        /// expect <see cref="FastEptNative.FASTEPT_ABI_VERSION"/>.
        /// </summary>
        /// <exception cref="DllNotFoundException">The native library is not built (run ./build.sh).</exception>
        public static int AbiVersion => (int)LoadAbiVersion();

        /// <summary>The p2m this walker is bound to, or null for a walker over host memory.</summary>
        public P2m? P2m => _p2m;

        /// <summary>The host memory the tables live in.</summary>
        public HostMemory Memory => _memory;

        /// <summary>The EPT pointer the walks start from.</summary>
        public ulong Eptp => _walker.eptp;

        /// <summary>Paging levels (4 or 5).</summary>
        public int Levels => _levels;

        /// <summary>
        /// <see cref="GetEntry"/> reports GFNs above this as holes without walking. For a p2m-bound
        /// walker it is the p2m's <see cref="FastEpt.P2m.MaxMappedPfn"/> (read-only here); for a
        /// memory-bound walker it starts at <see cref="ulong.MaxValue"/> ("always walk") and
        /// <see cref="SetEntry"/> raises it like the p2m's.
        /// </summary>
        /// <exception cref="InvalidOperationException">Set on a p2m-bound walker.</exception>
        public ulong MaxMappedPfn
        {
            get => _p2m is not null ? _p2m.MaxMappedPfn : Volatile.Read(ref _walker.max_mapped_pfn);
            set
            {
                if (_p2m is not null || _writeLock is null)
                {
                    throw new InvalidOperationException("This walker is bound to a P2m: it uses the p2m's MaxMappedPfn, which only the p2m's writers change.");
                }

                lock (_writeLock)
                {
                    Volatile.Write(ref _walker.max_mapped_pfn, value);
                }
            }
        }

        /// <summary>Number of unlinked table subtrees a memory-bound walker holds for <see cref="ReclaimRetired"/>; 0 for a p2m-bound walker.</summary>
        public int RetiredSubtreeCount
        {
            get
            {
                if (_retired is null || _writeLock is null)
                {
                    return 0;
                }

                lock (_writeLock)
                {
                    return _retired.Count;
                }
            }
        }

        /// <summary>
        /// Walks <paramref name="gpa"/> natively exactly as <see cref="FastEpt.P2m.Translate"/> does
        /// (Intel SDM 29.3, accessed/dirty updates when the EPTP enables them).
        /// </summary>
        /// <param name="gpa">Guest-physical address, below 2^AddressBits.</param>
        /// <param name="access">Read, Write and/or Execute (at least one).</param>
        /// <returns>The translation; violations and misconfigurations are statuses, never exceptions.</returns>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="gpa"/> or <paramref name="access"/> is out of range.</exception>
        /// <exception cref="ObjectDisposedException">The p2m or the host memory was disposed.</exception>
        /// <remarks>Lock-free and allocation-free.</remarks>
        public EptTranslation Translate(ulong gpa, AccessKind access)
        {
            if (gpa >= _gpaLimit)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_gpa(gpa, _addressBits);
            }

            if (unchecked((uint)access - 1) >= 7)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_access(access);
            }

            ThrowIfDisposed();
            fastept_translation t;
            long previous = Epoch.Enter(out Epoch.ReaderSlot slot);
            fixed (fastept_walker* w = &_walker)
            {
                t = fastept_translate(w, gpa, (uint)access);
            }

            Epoch.Exit(slot, previous);
            return Unsafe.As<fastept_translation, EptTranslation>(ref t);
        }

        /// <summary>
        /// Translates every address of <paramref name="gpas"/> as <see cref="Translate"/> would, in
        /// one native call that writes straight into <paramref name="results"/>.
        /// </summary>
        /// <returns>The number of results written (= <paramref name="gpas"/>.Length).</returns>
        /// <exception cref="ArgumentException"><paramref name="results"/> is shorter than <paramref name="gpas"/>.</exception>
        /// <exception cref="ArgumentOutOfRangeException">An address or <paramref name="access"/> is out of range (checked before any walk).</exception>
        /// <exception cref="ObjectDisposedException">The p2m or the host memory was disposed.</exception>
        /// <remarks>Lock-free and allocation-free.</remarks>
        public int TranslateBatch(ReadOnlySpan<ulong> gpas, AccessKind access, Span<EptTranslation> results)
        {
            P2m.ValidateBatchArguments(gpas, access, results, _gpaLimit, _addressBits);

            ThrowIfDisposed();
            if (gpas.IsEmpty)
            {
                return 0;
            }

            long previous = Epoch.Enter(out Epoch.ReaderSlot slot);
            fixed (fastept_walker* w = &_walker)
            fixed (ulong* g = gpas)
            fixed (EptTranslation* r = results)
            {
                // EptTranslation and fastept_translation are the same 16 bytes (checked in EnsureNative).
                fastept_translate_batch(w, g, (ulong)gpas.Length, (uint)access, (fastept_translation*)r);
            }

            Epoch.Exit(slot, previous);
            return gpas.Length;
        }

        /// <summary>
        /// Looks up what <paramref name="gfn"/> maps to natively, as <see cref="FastEpt.P2m.GetEntry"/>
        /// does without populate-on-demand (<see cref="P2mQuery.None"/>).
        /// </summary>
        /// <param name="gfn">Guest frame number, below 2^(AddressBits-12).</param>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="gfn"/> is out of range.</exception>
        /// <exception cref="ObjectDisposedException">The p2m or the host memory was disposed.</exception>
        /// <remarks>Lock-free and allocation-free; never changes a table.</remarks>
        public P2mEntry GetEntry(ulong gfn)
        {
            if (gfn >= _gfnLimit)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_gfn(gfn, _addressBits);
            }

            ThrowIfDisposed();
            fastept_walker w = _walker;
            w.max_mapped_pfn = MaxMappedPfn;
            long previous = Epoch.Enter(out Epoch.ReaderSlot slot);
            fastept_entry e = fastept_get_entry(&w, gfn);
            Epoch.Exit(slot, previous);
            return new P2mEntry(e.mfn, (P2mType)e.type, (P2mAccess)e.access, e.suppress_ve != 0, e.is_mapped != 0, e.order);
        }

        /// <summary>
        /// Maps (or, with <see cref="P2mType.Invalid"/>, removes) the 2^order frames at
        /// <paramref name="gfn"/> with the native writer, with the semantics of
        /// <see cref="FastEpt.P2m.SetEntry"/>. New tables come from the host memory's allocator;
        /// a replaced subtree is retired: on a p2m-bound walker through the p2m's own epoch-based
        /// reclamation, on a memory-bound walker until <see cref="ReclaimRetired"/>.
        /// </summary>
        /// <param name="gfn">First guest frame; aligned to <paramref name="order"/>.</param>
        /// <param name="mfn">First host frame, aligned to <paramref name="order"/>; <see cref="Mfn.Invalid"/>
        /// for removal, populate-on-demand, paging and MMIO types.</param>
        /// <param name="order">4K, 2M or 1G (1G only with <see cref="P2mOptions.Support1G"/>).</param>
        /// <param name="type">The p2m type.</param>
        /// <param name="access">The p2m access.</param>
        /// <param name="suppressVe">The suppress-#VE bit: inherited from the replaced entry by default.</param>
        /// <exception cref="ArgumentOutOfRangeException">An argument is outside its range or enum (nothing changed).</exception>
        /// <exception cref="ArgumentException">Misaligned <paramref name="gfn"/>/<paramref name="mfn"/>, or an access that
        /// would misconfigure (nothing changed).</exception>
        /// <exception cref="NotSupportedException">The options carry a custom <see cref="P2mOptions.EmtPolicy"/> or
        /// <see cref="P2mOptions.MmioReadOnly"/>: the native library implements only the default memory-type policy.</exception>
        /// <exception cref="InsufficientMemoryException">Host memory ran out for new tables; nothing changed.</exception>
        /// <exception cref="ObjectDisposedException">The p2m or the host memory was disposed.</exception>
        /// <remarks>
        /// On a p2m-bound walker the p2m's writer lock is held throughout, <see cref="FastEpt.P2m.MaxMappedPfn"/>
        /// is raised before the entry is published (and restored if the call fails), new tables join
        /// the p2m's <see cref="FastEpt.P2m.TableFrameCount"/> and the populate-on-demand change is
        /// added to <see cref="FastEpt.P2m.PodEntryCount"/>, exactly as a managed write would.
        /// </remarks>
        public void SetEntry(ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access, SuppressVe suppressVe = SuppressVe.Inherit)
        {
            ThrowIfDisposed();
            if (_customMemoryTypes)
            {
                throw new NotSupportedException("The native library implements only the default memory-type policy; SetEntry is not supported when P2mOptions.EmtPolicy or P2mOptions.MmioReadOnly is set.");
            }

            if (_p2m is not null)
            {
                SetEntryBound(_p2m, gfn, mfn, order, type, access, suppressVe);
            }
            else
            {
                SetEntryUnbound(gfn, mfn, order, type, access, suppressVe);
            }
        }

        /// <summary>
        /// Returns to host memory the table frames of every subtree that this memory-bound walker's
        /// <see cref="SetEntry"/> unlinked (frames that are no longer allocated are skipped).
        /// Call it only when no translation can be in flight in those tables, on any thread.
        /// </summary>
        /// <returns>The number of frames freed.</returns>
        /// <exception cref="InvalidOperationException">The walker is bound to a p2m, whose own reclamation
        /// (<see cref="FastEpt.P2m.Reclaim"/>) frees retired tables.</exception>
        /// <exception cref="ObjectDisposedException">The host memory was disposed.</exception>
        public long ReclaimRetired()
        {
            if (_retired is null || _writeLock is null)
            {
                throw new InvalidOperationException("This walker is bound to a P2m: retired tables are freed by the p2m's epoch-based reclamation (P2m.Reclaim).");
            }

            lock (_writeLock)
            {
                ThrowIfDisposed();
                long freed = 0;
                ulong* small = stackalloc ulong[64];
                foreach ((ulong table, uint level) in _retired)
                {
                    ulong count;
                    fixed (fastept_walker* w = &_walker)
                    {
                        count = fastept_collect_tables(w, table, level, small, 64);
                    }

                    ulong[]? large = null;
                    if (count > 64)
                    {
                        large = new ulong[count];
                        fixed (fastept_walker* w = &_walker)
                        fixed (ulong* l = large)
                        {
                            count = Math.Min(count, fastept_collect_tables(w, table, level, l, (ulong)large.Length));
                        }
                    }

                    for (ulong i = 0; i < count; i++)
                    {
                        ulong frame = large is not null ? large[i] : small[i];
                        if (frame < (ulong)_memory.FrameCount && _memory.IsAllocated(frame))
                        {
                            _memory.FreeFrame(frame);
                            freed++;
                        }
                    }
                }

                _retired.Clear();
                return freed;
            }
        }

        private void SetEntryBound(P2m p2m, ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access, SuppressVe suppressVe)
        {
            p2m.ValidateSet(gfn, mfn, order, type, access, suppressVe);
            using OrderedLock.Scope scope = p2m.EnterWriter();
            ulong maxBefore = p2m.MaxMappedPfn;
            bool completed = false;
            try
            {
                // As SetEntryLocked: raised before the entry is published, so a reader that finds
                // the entry never finds max_mapped_pfn below it; lowered again if the call fails.
                if (p2m.WritesValidEntry(gfn, mfn, order, type, access))
                {
                    ulong last = gfn + (1UL << (int)order) - 1;
                    if (last > maxBefore)
                    {
                        p2m.MaxMappedPfn = last;
                    }
                }

                fastept_walker w = _walker;
                w.max_mapped_pfn = p2m.MaxMappedPfn;
                ulong* pool = stackalloc ulong[WorstCasePool];
                int pooled = 0;
                int used = 0;
                try
                {
                    fastept_set_result result = RunSet(&w, pool, ref pooled, gfn, mfn, order, type, access, suppressVe);
                    used = (int)result.frames_used;
                    p2m.CompleteExternalSet(new ReadOnlySpan<ulong>(pool, used), result.retired_table, (int)result.retired_level, result.pod_delta);
                    completed = true;
                }
                finally
                {
                    FreePool(pool, used, pooled);
                }
            }
            finally
            {
                if (!completed)
                {
                    p2m.MaxMappedPfn = maxBefore;
                }
            }
        }

        private void SetEntryUnbound(ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access, SuppressVe suppressVe)
        {
            // The checks P2m.ValidateSet makes first (same exceptions); what needs the tables or
            // host memory is left to the native library and mapped from its error code.
            FastEpt.P2m.ValidateSetArguments(gfn, order, type, access, suppressVe, _support1G, _addressBits);

            Lock writeLock = _writeLock!;
            lock (writeLock)
            {
                ThrowIfDisposed();
                ulong* pool = stackalloc ulong[WorstCasePool];
                int pooled = 0;
                int used = 0;
                try
                {
                    fastept_set_result result;
                    fixed (fastept_walker* w = &_walker)
                    {
                        result = RunSet(w, pool, ref pooled, gfn, mfn, order, type, access, suppressVe);
                    }

                    used = (int)result.frames_used;
                    if (result.retired_table != FASTEPT_INVALID_MFN && result.retired_level != 0)
                    {
                        _retired!.Add((result.retired_table, result.retired_level));
                    }
                }
                finally
                {
                    FreePool(pool, used, pooled);
                }
            }
        }

        // Runs fastept_set_entry with a pool of `levels` frames (enough for any new chain), and
        // once more with the worst case if that was too few. `pooled` tracks what was allocated
        // so the caller frees the unused tail whatever happens.
        private fastept_set_result RunSet(fastept_walker* w, ulong* pool, ref int pooled, ulong gfn, ulong mfn, PageOrder order, P2mType type, P2mAccess access, SuppressVe suppressVe)
        {
            pooled = Refill(pool, pooled, _levels);
            fastept_set_result result;
            int rc;
            while (true)
            {
                rc = fastept_set_entry(w, pool, (uint)pooled, gfn, mfn, (uint)order, (uint)type, (uint)access, (uint)suppressVe, &result);
                if (rc != FASTEPT_ERR_NO_FRAMES || pooled == WorstCasePool)
                {
                    break;
                }

                int before = pooled;
                pooled = Refill(pool, pooled, WorstCasePool);
                if (pooled == before)
                {
                    break;      // host memory is exhausted
                }
            }

            if (rc != FASTEPT_OK)
            {
                ThrowForNativeError(rc, gfn, mfn, order, type);
            }

            if (result.frames_used > (uint)pooled)
            {
                throw new InvalidOperationException($"fastept_set_entry reported {result.frames_used} frames used from a pool of {pooled}.");
            }

            return result;
        }

        private int Refill(ulong* pool, int count, int target)
        {
            while (count < target && _memory.TryAllocateFrame(out ulong frame))
            {
                pool[count++] = frame;
            }

            return count;
        }

        private void FreePool(ulong* pool, int used, int pooled)
        {
            for (int i = used; i < pooled; i++)
            {
                _memory.FreeFrame(pool[i]);
            }
        }

        private static void ThrowForNativeError(int rc, ulong gfn, ulong mfn, PageOrder order, P2mType type)
        {
            ulong count = 1UL << (int)order;
            switch (rc)
            {
                case FASTEPT_ERR_NO_FRAMES:
                    ThrowHelper.ThrowInsufficientMemoryException_frames();
                    break;
                case FASTEPT_ERR_RANGE:
                    if (type == P2mType.MapForeign && order != PageOrder.Size4K)
                    {
                        ThrowHelper.ThrowArgumentOutOfRangeException(nameof(order), order, "Foreign mappings are 4K only.");
                    }

                    ThrowHelper.ThrowArgumentOutOfRangeException(nameof(mfn), mfn == Mfn.Invalid ? "INVALID" : $"0x{mfn:X}", $"The native library rejected the frame number for type {type} at order {(int)order} (FASTEPT_ERR_RANGE): outside host memory or the host address width, or not allowed for this type.");
                    break;
                case FASTEPT_ERR_ALIGN:
                    if ((gfn & (count - 1)) != 0)
                    {
                        ThrowHelper.ThrowArgumentException(nameof(gfn), $"GFN 0x{gfn:X} is not aligned to order {(int)order}.");
                    }

                    ThrowHelper.ThrowArgumentException(nameof(mfn), mfn == Mfn.Invalid
                        ? $"Type {type} takes no frame here (FASTEPT_ERR_ALIGN)."
                        : $"MFN 0x{mfn:X} is not aligned to order {(int)order}.");
                    break;
                case FASTEPT_ERR_PERMISSION:
                    ThrowHelper.ThrowArgumentException("access", $"The access on type {type} would give an entry this CPU treats as an EPT misconfiguration (write without read, or unsupported execute-only).");
                    break;
                default:
                    throw new InvalidOperationException($"fastept_set_entry returned the unknown code {rc}.");
            }
        }

        private void CheckWalker(string paramName)
        {
            int rc;
            fixed (fastept_walker* w = &_walker)
            {
                rc = fastept_walker_check(w);
            }

            if (rc != FASTEPT_OK)
            {
                ThrowHelper.ThrowArgumentException(paramName, $"The native library rejects this walker (code {rc}): EPTP 0x{_walker.eptp:X}, {_walker.host_frames} host frames, {_walker.address_bits}-bit guest and {_walker.host_address_bits}-bit host addresses.");
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void ThrowIfDisposed()
        {
            if ((_p2m is not null && _p2m.IsDisposed) || _memory.IsDisposed)
            {
                ThrowDisposed();
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private void ThrowDisposed()
        {
            if (_p2m is not null && _p2m.IsDisposed)
            {
                ThrowHelper.ThrowObjectDisposedException(_p2m);
            }

            ThrowHelper.ThrowObjectDisposedException(_memory);
        }

        private static uint CapsOf(P2mOptions o)
            => (o.ExecuteOnly ? FASTEPT_CAP_EXECUTE_ONLY : 0)
               | (o.Support1G ? FASTEPT_CAP_1G : 0)
               | (o.PmlEnabled ? FASTEPT_CAP_PML : 0)
               | (o.PagingWriteSupported ? FASTEPT_CAP_PAGING_WRITE : 0)
               | (o.ExecutableSuperpages ? FASTEPT_CAP_EXEC_SUPERPAGES : 0)
               | (o.IoreqServerClaimsWrites ? FASTEPT_CAP_IOREQ_CLAIMS_WRITES : 0);

        // Loads the library and checks, once, that it speaks the bindings' ABI and that
        // EptTranslation can stand in for fastept_translation.
        private static void EnsureNative()
        {
            if (s_verified)
            {
                return;
            }

            uint version = LoadAbiVersion();
            if (version != FASTEPT_ABI_VERSION)
            {
                throw new InvalidOperationException($"The native FastEpt library (lib{LibraryName}.so) has ABI version {version}, but FastEpt.Interop was generated for ABI version {FASTEPT_ABI_VERSION}. Rebuild native/ with ./build.sh and regenerate the bindings (native/tools/gen_bindings.py) from the same fastept.h.");
            }

            CheckTranslationLayout();
            s_verified = true;
        }

        private static uint LoadAbiVersion()
        {
            try
            {
                return CallAbiVersion();
            }
            catch (DllNotFoundException e)
            {
                throw new DllNotFoundException($"The native FastEpt library (lib{LibraryName}.so) could not be loaded. Build native/ with ./build.sh (cmake into native/build); projects that reference FastEpt.Interop copy native/build/libfastept.so next to their assembly. {e.Message}", e);
            }
            catch (EntryPointNotFoundException e)
            {
                throw new InvalidOperationException($"lib{LibraryName}.so has no fastept_abi_version: it is not FastEpt's native library, or too old. Rebuild native/ with ./build.sh.", e);
            }
        }

        // Never inlined: a P/Invoke without GC transition binds its target when the calling
        // method is compiled, so a missing library must fail while compiling this method,
        // inside LoadAbiVersion's try, not while compiling whoever inlined it.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static uint CallAbiVersion() => fastept_abi_version();

        /// <summary>
        /// Checks that <see cref="EptTranslation"/> (private fields _hpa, _qualification, _status,
        /// _level) has the layout of <see cref="fastept_translation"/>, so a native result can be
        /// reinterpreted in place; throws <see cref="InvalidOperationException"/> if not.
        /// </summary>
        internal static void CheckTranslationLayout()
        {
            if (Unsafe.SizeOf<EptTranslation>() != sizeof(fastept_translation) || sizeof(fastept_translation) != 16)
            {
                throw new InvalidOperationException($"EptTranslation ({Unsafe.SizeOf<EptTranslation>()} bytes) and fastept_translation ({sizeof(fastept_translation)} bytes) differ in size.");
            }

            EptTranslation probe = new EptTranslation(EptStatus.Misconfig, 0x0123_4567_89AB_C000, 3, 0x2D);
            fastept_translation n = Unsafe.As<EptTranslation, fastept_translation>(ref probe);
            if (n.hpa != probe.Hpa || n.qualification != probe.Qualification || n.status != (byte)probe.Status || n.level != probe.Level
                || n.reserved[0] != 0 || n.reserved[1] != 0)
            {
                throw new InvalidOperationException("EptTranslation's fields are not laid out as fastept_translation's (hpa, qualification, status, level).");
            }
        }
    }
}
