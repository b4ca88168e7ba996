// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    public sealed unsafe partial class P2m
    {
        /// <summary>
        /// Walks the live tables as the CPU does (Intel SDM 29.3): misconfiguration before
        /// violation, rights ANDed over every level, table pointers outside host memory treated
        /// as misconfigurations. With <see cref="P2mOptions.AccessDirty"/> the walk sets accessed
        /// flags on the entries it uses and the dirty flag on a written leaf, each by a
        /// compare-exchange against the value it read; if the entry changed meanwhile, the walk
        /// starts again from the root, as the CPU does (Intel SDM 29.3.5).
        /// </summary>
        /// <param name="gpa">Guest-physical address, below 2^AddressBits.</param>
        /// <param name="access">Read, Write and/or Execute (at least one).</param>
        /// <returns>The translation; violations and misconfigurations are statuses, never exceptions.</returns>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="gpa"/> or <paramref name="access"/> is out of range.</exception>
        /// <exception cref="ObjectDisposedException">The p2m or its host memory was disposed.</exception>
        /// <remarks>Lock-free and allocation-free; safe to call from any number of threads alongside writers.</remarks>
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
            byte* b = _memory.Base;
            long previous = Epoch.Enter(_readerTag, out Epoch.ReaderSlot slot);
            EptTranslation t = Walk(b, gpa, (uint)access);
            Epoch.Exit(slot, previous);
            if (FastEptMetrics.WalksEnabled)
            {
                FastEptMetrics.CountWalk(t.Status);     // only while a listener observes the meter
            }

            return t;
        }

        /// <summary>
        /// Translates every address of <paramref name="gpas"/> as <see cref="Translate"/> would,
        /// writing one result per address, with as many walks in flight as the tables call for.
        /// </summary>
        /// <param name="gpas">Guest-physical addresses, each below 2^AddressBits.</param>
        /// <param name="access">Read, Write and/or Execute (at least one), the same for every address.</param>
        /// <param name="results">Receives one translation per address, in order; at least as long as <paramref name="gpas"/>.</param>
        /// <returns>The number of results written (= <paramref name="gpas"/>.Length).</returns>
        /// <exception cref="ArgumentException"><paramref name="results"/> is shorter than <paramref name="gpas"/>.</exception>
        /// <exception cref="ArgumentOutOfRangeException">An address or <paramref name="access"/> is out of range (checked before any walk).</exception>
        /// <exception cref="ObjectDisposedException">The p2m or its host memory was disposed.</exception>
        /// <remarks>
        /// <para>Every result equals what <see cref="Translate"/> returns for that address at some
        /// instant during the call; each entry a walk uses is read once. Lock-free and allocation-free.</para>
        /// <para>The path is chosen per call. When the tables fit comfortably in cache, or the
        /// addresses are clustered, walks run one after another (interleaving would only add
        /// bookkeeping). Otherwise walks are software-pipelined: each level's entry is prefetched
        /// (<c>Sse.Prefetch0</c> where available) a fixed distance ahead of its use, so dozens of
        /// cache misses overlap instead of queueing. 5-level hierarchies and hierarchies with
        /// accessed/dirty flags enabled always walk one address at a time.</para>
        /// </remarks>
        public int TranslateBatch(ReadOnlySpan<ulong> gpas, AccessKind access, Span<EptTranslation> results)
            => TranslateBatch(gpas, access, results, BatchPath.Auto);

        // The hardware walk. Each slot is read once into `pte`; every decision uses that snapshot.
        // The common shape (4 levels, no A/D, readable well-formed pointers down to a readable
        // 4K leaf that grants the access) runs straight-line with one AND-and-compare per level
        // (see _fastPointerMask); anything else - a superpage, a violation, a misconfiguration -
        // continues in the general loop from the entry already read, so no slot is read twice.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private EptTranslation Walk(byte* b, ulong gpa, uint access)
        {
            if (_levels != 4 || _accessDirty)
            {
                ulong* rootSlot = (ulong*)(b + (_rootMfn << EptEntry.PageBits)) + ((gpa >> ShiftOf(_levels)) & (EptEntry.EntriesPerTable - 1));
                return WalkFrom(b, gpa, access, _levels, rootSlot, Volatile.Read(ref *rootSlot), EptEntry.RwxMask);
            }

            ulong pointerMask = _fastPointerMask;
            ulong limit = _tableLimit;
            ulong rights = EptEntry.RwxMask;
            int level = 4;
            ulong* p = (ulong*)(b + (_rootMfn << EptEntry.PageBits)) + ((gpa >> 39) & 511);
            ulong pte = Volatile.Read(ref *p);
            ulong next = pte & EptEntry.MfnMask;        // the next table's HPA
            if ((pte & pointerMask) == 1 && next < limit)
            {
                rights = pte;
                level = 3;
                p = (ulong*)(b + next) + ((gpa >> 30) & 511);
                pte = Volatile.Read(ref *p);
                next = pte & EptEntry.MfnMask;
                if ((pte & pointerMask) == 1 && next < limit)
                {
                    rights &= pte;
                    level = 2;
                    p = (ulong*)(b + next) + ((gpa >> 21) & 511);
                    pte = Volatile.Read(ref *p);
                    next = pte & EptEntry.MfnMask;
                    if ((pte & pointerMask) == 1 && next < limit)
                    {
                        rights &= pte;
                        level = 1;
                        p = (ulong*)(b + next) + ((gpa >> 12) & 511);
                        pte = Volatile.Read(ref *p);
                        // A readable PTE without bits 51:MAXPHYADDR, with a defined memory type
                        // (not 2, 3 or 7), whose rights (ANDed over the walk) grant the access.
                        if ((pte & _fastLeafMask) == 1
                            && ((0x8Cu >> (int)((pte >> EptEntry.MemoryTypeShift) & 7)) & 1) == 0
                            && (access & ~(uint)(rights & pte & EptEntry.RwxMask)) == 0)
                        {
                            return new EptTranslation(EptStatus.Ok, (pte & EptEntry.MfnMask) | (gpa & EptEntry.PageMask), 1, 0);
                        }
                    }
                }
            }

            // Anything unusual (a superpage, not present, a violation, reserved bits...): one shared exit.
            return WalkFrom(b, gpa, access, level, p, pte, rights & EptEntry.RwxMask);
        }

        // The general walk from `level`, whose slot `p` was already read into `pte`; `rights` is
        // the AND of r/w/x over the levels above.
        private EptTranslation WalkFrom(byte* b, ulong gpa, uint access, int level, ulong* p, ulong pte, ulong rights)
        {
            int shift = ShiftOf(level);
            while (true)
            {
                // Not present: violation; bits 3-5 stay 0 (SDM: no permissions for this GPA).
                if ((pte & EptEntry.RwxMask) == 0)
                {
                    return new EptTranslation(EptStatus.Violation, 0, level, access);
                }

                // Write without read, or execute-only without the capability.
                if (((_badRwx >> (int)(pte & EptEntry.RwxMask)) & 1) != 0)
                {
                    return new EptTranslation(EptStatus.Misconfig, 0, level, 0);
                }

                if (level == 1 || (pte & EptEntry.SuperPageBit) != 0)
                {
                    // Leaf. PML4E/PML5E bit 7 is reserved; 1G needs the capability; the frame field
                    // must be aligned to the page; memory types 2, 3 and 7 are reserved.
                    ulong reserved = level == 1 ? _leafReserved1 : level == 2 ? _leafReserved2 : level == 3 ? _leafReserved3 : ~0UL;
                    if ((pte & reserved) != 0 || ((0x8Cu >> (int)((pte >> EptEntry.MemoryTypeShift) & 7)) & 1) != 0)
                    {
                        return new EptTranslation(EptStatus.Misconfig, 0, level, 0);
                    }

                    rights &= pte;
                    if ((access & ~(uint)rights) != 0)
                    {
                        return new EptTranslation(EptStatus.Violation, 0, level, access | (rights << 3));
                    }

                    if (_accessDirty)
                    {
                        ulong want = EptEntry.AccessedBit | ((access & (uint)AccessKind.Write) != 0 ? EptEntry.DirtyBit : 0);
                        if ((pte & want) != want && !TrySetAccessedDirty(b, p, pte, want, level))
                        {
                            goto Restart;
                        }
                    }

                    ulong offsetMask = (1UL << shift) - 1;
                    return new EptTranslation(EptStatus.Ok, (pte & EptEntry.MfnMask & ~offsetMask) | (gpa & offsetMask), level, 0);
                }

                ulong next = (pte & EptEntry.MfnMask) >> EptEntry.MfnShift;
                if ((pte & _nonLeafReserved) != 0 || next >= _frameCount)
                {
                    return new EptTranslation(EptStatus.Misconfig, 0, level, 0);
                }

                if (_accessDirty && (pte & EptEntry.AccessedBit) == 0 && !TrySetAccessedDirty(b, p, pte, EptEntry.AccessedBit, level))
                {
                    goto Restart;
                }

                rights &= pte;
                level--;
                shift -= EptEntry.TableOrder;
                p = (ulong*)(b + (next << EptEntry.PageBits)) + ((gpa >> shift) & (EptEntry.EntriesPerTable - 1));
                pte = Volatile.Read(ref *p);
                continue;

            Restart:
                // The entry changed between the read and the A/D update (a writer replaced or
                // removed it): what was read may no longer be mapped, so nothing read so far
                // counts. Walk again from the root, as the CPU does.
                level = _levels;
                shift = ShiftOf(level);
                rights = EptEntry.RwxMask;
                p = (ulong*)(b + (_rootMfn << EptEntry.PageBits)) + ((gpa >> shift) & (EptEntry.EntriesPerTable - 1));
                pte = Volatile.Read(ref *p);
            }
        }

        // Sets `want` (accessed, and dirty for a written leaf) in the slot `p` by one
        // compare-exchange against `pte`, the value the walk read and decided on. False when the
        // slot holds anything else: a writer changed it after the walk read it, and the walk must
        // start again. A blind OR here would resurrect a removed entry (an empty slot with A set
        // reads as a valid RAM entry of MFN 0) and would set flags on an entry the walk never
        // used. Writers compare-exchange against their own snapshot, so this update makes theirs
        // fail and rebuild; neither side can lose the other's change. `b` (the host memory's base)
        // and `level` only feed the test seam.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static bool TrySetAccessedDirty(byte* b, ulong* p, ulong pte, ulong want, int level)
        {
            if (s_testHooks)
            {
                RunAccessDirtyHook(level, (ulong)((byte*)p - b));
            }

            return Interlocked.CompareExchange(ref *p, pte | want, pte) == pte;
        }

        // ---- Test seam -----------------------------------------------------------------------

        // Whether the test seam below is live: read once, from an AppContext switch the test host
        // sets before P2m is first used. Everywhere else it is false, and since it is a static
        // readonly field of an initialised class the JIT compiles the check away (tier 1).
        private static readonly bool s_testHooks = AppContext.TryGetSwitch("FastEpt.Walker.TestHooks", out bool on) && on;

        [ThreadStatic]
        private static Action<int, ulong>? t_accessDirtyRaceHook;

        /// <summary>
        /// Tests only (live with the AppContext switch <c>FastEpt.Walker.TestHooks</c>): called on
        /// the setting thread between a walk's read of a slot and its accessed/dirty
        /// compare-exchange on it, with the slot's level and host-physical address, so a test
        /// can change the slot inside that window.
        /// </summary>
        internal static Action<int, ulong>? AccessDirtyRaceHook
        {
            get => t_accessDirtyRaceHook;
            set => t_accessDirtyRaceHook = value;
        }

        internal static bool TestHooksEnabled => s_testHooks;

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void RunAccessDirtyHook(int level, ulong slotHpa) => t_accessDirtyRaceHook?.Invoke(level, slotHpa);

        /// <summary>
        /// A guest paging-structure write (A/D update, or any structure access with EPTP A/D) to
        /// <paramref name="gpa"/>: allowed when the EPT allows a write, or when the leaf is readable
        /// and carries the paging-write bit (58) with <see cref="P2mOptions.PagingWriteSupported"/>
        /// (the r_pw access, docs/model/types.md §2.2). Returns the translation of the access.
        /// </summary>
        internal EptTranslation TranslatePagingWrite(ulong gpa, AccessKind kind)
        {
            EptTranslation t = Translate(gpa, kind);
            if (t.Status != EptStatus.Violation || !Options.PagingWriteSupported)
            {
                return t;
            }

            EptTranslation read = Translate(gpa, (kind & ~AccessKind.Write) | AccessKind.Read);
            if (read.Status != EptStatus.Ok)
            {
                return t;
            }

            _memory.ThrowIfDisposed();
            long previous = Epoch.Enter(_readerTag, out Epoch.ReaderSlot slot);
            ulong leaf = Descend(gpa >> EptEntry.PageBits, 1, out int level, out _, out _);
            Epoch.Exit(slot, previous);
            // A table pointer naming no host frame (the walk stopped on it) is no leaf.
            return !IsTablePointer(leaf, level) && (leaf & EptEntry.PagingWriteBit) != 0 ? read : t;
        }
    }
}
