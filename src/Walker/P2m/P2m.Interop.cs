// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // Hooks for FastEpt.Interop's NativeWalker, which writes this p2m's tables with the native
    // twin (native/include/fastept.h) instead of SetEntryLocked. The native writer follows the
    // same protocol; these keep the p2m's bookkeeping (owned tables, retirement, PoD count,
    // max_mapped_pfn) coherent with what it did. Nothing here changes public behaviour.
    public sealed unsafe partial class P2m
    {
        /// <summary>True once <see cref="Dispose"/> has started.</summary>
        internal bool IsDisposed => _disposed;

        /// <summary>
        /// Records what an external writer did after it published its entry, as SetEntryLocked
        /// does for its own: <paramref name="linked"/> table frames are now owned, the unlinked
        /// subtree rooted at <paramref name="retiredTable"/> (a table at <paramref name="retiredLevel"/>;
        /// <see cref="Mfn.Invalid"/> for none) goes to epoch-based reclamation, and
        /// <paramref name="podDelta"/> is added to <see cref="PodEntryCount"/>; every <see cref="SoftTlb"/>
        /// over this p2m is invalidated (it may have replaced a present entry). Write locks held.
        /// </summary>
        private void CompleteExternalSet(ReadOnlySpan<ulong> linked, ulong retiredTable, int retiredLevel, long podDelta)
        {
            Debug.Assert(_lock.IsHeldByCurrentThread || Array.Exists(_stripes, s => s.IsHeldByCurrentThread));
            // The native writer does not say what it replaced: flush the software TLBs always.
            BumpTlbGeneration();
            foreach (ulong f in linked)
            {
                _tables.Add(f);
            }

            if (podDelta != 0)
            {
                Interlocked.Add(ref _hot.PodEntryCount, podDelta);
            }

            if (retiredTable != Mfn.Invalid && retiredLevel >= 1)
            {
                RetireSubtree(retiredTable, retiredLevel);
            }

            TryReclaimLocked();
        }

        /// <summary>
        /// The one seam FastEpt.Interop's <c>NativeWalker</c> reaches this assembly through: what a
        /// native walker needs to walk and write tables in a <see cref="HostMemory"/>, bound to a
        /// <see cref="P2m"/> or to bare host memory, and nothing more. FastEpt.Interop sees this
        /// assembly's internals (InternalsVisibleTo) but uses only this type and public API.
        /// </summary>
        /// <remarks>
        /// <para><b>Binding</b> (<see cref="HostBase"/>, <see cref="ValidatedOptions"/>): read once
        /// when a walker is built. The base pointer stays valid until the host memory is disposed;
        /// every walk checks <see cref="IsDisposed(P2m)"/> / <see cref="IsDisposed(HostMemory)"/> first.</para>
        /// <para><b>Readers</b> (<see cref="EnterRead"/> … <see cref="ReadSection.Exit"/>): lock-free and
        /// allocation-free; any number of threads, concurrently with everything below, including a
        /// writer and <see cref="Reclaim"/>. The section announces the walk to the epoch-based
        /// reclamation exactly as <see cref="Translate"/> does, so a table unlinked while it is open
        /// is not freed before it closes. Sections nest; close each on the thread that opened it.</para>
        /// <para><b>Argument checks</b> (<see cref="ValidateBatch"/>): the p2m's own checks, same
        /// exceptions and parameter names; no lock, nothing changed, safe on any thread. A native
        /// write's arguments are checked by the C library itself (<c>fastept_check_set</c>).</para>
        /// <para><b>Writers on a p2m</b>: the C library's checks, then <see cref="EnterWriter"/>,
        /// which takes the locks a managed write of that GFN and order takes (the GFN's 2 MiB-region
        /// stripe; the p2m lock exclusive for 1G or a marked path), so a native
        /// write runs in parallel with writes of other regions and is serialised with writes of
        /// its own region, 1G writes, type changes and view resets. While the scope is held (and
        /// only then): <see cref="RaiseMaxMappedPfn"/> (to the GFN the C check names) before
        /// publishing, then after the native writer published its entry
        /// <see cref="CompleteExternalSet"/> and <see cref="NotePublished"/>, or
        /// <see cref="FailedSet"/> if it failed (max_mapped_pfn is lowered exactly once no
        /// writer is in flight, as SetEntryLocked does).</para>
        /// </remarks>
        internal static class NativeAccess
        {
            // ---- Binding --------------------------------------------------------------------

            /// <summary>The host memory's base address: table frame <c>n</c> is at <c>base + (n &lt;&lt; 12)</c>.</summary>
            /// <exception cref="ObjectDisposedException">The memory was disposed.</exception>
            internal static byte* HostBase(HostMemory memory) => memory.Base;

            /// <summary>
            /// A private copy of <paramref name="options"/> (the defaults when null), validated as the
            /// <see cref="P2m"/> constructor validates its own; exceptions name <paramref name="paramName"/>.
            /// </summary>
            internal static P2mOptions ValidatedOptions(P2mOptions? options, string paramName)
            {
                P2mOptions o = (options ?? new P2mOptions()).Clone();
                o.Validate(paramName);
                return o;
            }

            /// <summary>An <see cref="EptTranslation"/> with these fields, for checking the native layout against it.</summary>
            internal static EptTranslation Translation(EptStatus status, ulong hpa, int level, ulong qualification)
                => new EptTranslation(status, hpa, level, qualification);

            /// <summary>A <see cref="P2mEntry"/> from the fields of a native lookup.</summary>
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            internal static P2mEntry Entry(ulong mfn, P2mType type, P2mAccess access, bool suppressVe, bool isMapped, int order)
                => new P2mEntry(mfn, type, access, suppressVe, isMapped, order);

            // ---- Disposal -------------------------------------------------------------------

            /// <summary>True once the p2m's <see cref="Dispose"/> has started.</summary>
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            internal static bool IsDisposed(P2m p2m) => p2m._disposed;

            /// <summary>True once the host memory was disposed.</summary>
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            internal static bool IsDisposed(HostMemory memory) => memory.IsDisposed;

            // ---- Readers --------------------------------------------------------------------

            /// <summary>Opens a read-side section around one native walk (or batch of walks).</summary>
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            internal static ReadSection EnterRead()
            {
                long previous = Epoch.Enter(out Epoch.ReaderSlot slot);
                return new ReadSection(slot, previous);
            }

            /// <summary>
            /// Hands the native library's read-section slots (fastept_read_state_get) to the epoch
            /// reclaimer, which from then on honours C sections (fastept_read_enter) in every scan.
            /// </summary>
            internal static void RegisterReadSections(nint slots, int count, int stride, nint epochCell, nint shared)
                => Reclaimer.RegisterNative(slots, count, stride, epochCell, shared);

            /// <summary>An open read-side section; <see cref="Exit"/> closes it.</summary>
            internal readonly struct ReadSection
            {
                private readonly Epoch.ReaderSlot _slot;
                private readonly long _previous;

                internal ReadSection(Epoch.ReaderSlot slot, long previous)
                {
                    _slot = slot;
                    _previous = previous;
                }

                /// <summary>Closes the section opened by <see cref="EnterRead"/>.</summary>
                [MethodImpl(MethodImplOptions.AggressiveInlining)]
                internal void Exit() => Epoch.Exit(_slot, _previous);
            }

            // ---- Argument checks ------------------------------------------------------------

            /// <summary><see cref="TranslateBatch(ReadOnlySpan{ulong}, AccessKind, Span{EptTranslation})"/>'s checks, for a walker of the given width.</summary>
            internal static void ValidateBatch(ReadOnlySpan<ulong> gpas, AccessKind access, Span<EptTranslation> results, ulong gpaLimit, int addressBits)
                => ValidateBatchArguments(gpas, access, results, gpaLimit, addressBits);

            // ---- Writers on a p2m -----------------------------------------------------------

            /// <summary>
            /// Takes <paramref name="p2m"/>'s write locks for a native write of 2^<paramref name="order"/>
            /// frames at <paramref name="gfn"/>, as <see cref="SetEntry"/> does; throws
            /// <see cref="ObjectDisposedException"/> (nothing held) when the p2m is disposed.
            /// </summary>
            internal static WriterScope EnterWriter(P2m p2m, ulong gfn, PageOrder order) => new WriterScope(p2m.EnterWrite(gfn, (int)order));

            /// <summary>The write locks, held until <see cref="Dispose"/>.</summary>
            internal ref struct WriterScope
            {
                private WriteScope _scope;

                internal WriterScope(WriteScope scope) => _scope = scope;

                /// <summary>Releases the write locks (and lowers max_mapped_pfn after a failed write).</summary>
                public void Dispose() => _scope.Dispose();
            }

            /// <summary>Raises <see cref="MaxMappedPfn"/> to at least <paramref name="last"/> before a write publishes. Write locks held.</summary>
            internal static void RaiseMaxMappedPfn(P2m p2m, ulong last) => p2m.RaiseMaxMapped(last);

            /// <summary>Records that a write published a valid entry ending at <paramref name="last"/>. Write locks held.</summary>
            internal static void NotePublished(P2m p2m, ulong last) => p2m.NotePublished(last);

            /// <summary>A write that raised <see cref="MaxMappedPfn"/> failed: it is lowered again once no writer is in flight. Write locks held.</summary>
            internal static void FailedSet(P2m p2m) => p2m.LowerMaxAfterFailure();

            /// <summary>
            /// Records a published native write in the p2m's bookkeeping: <paramref name="linked"/> new
            /// table frames, the retired subtree (<see cref="Mfn.Invalid"/> for none) and the PoD change;
            /// invalidates every <see cref="SoftTlb"/> over the p2m. Write locks held.
            /// </summary>
            internal static void CompleteExternalSet(P2m p2m, ReadOnlySpan<ulong> linked, ulong retiredTable, int retiredLevel, long podDelta)
                => p2m.CompleteExternalSet(linked, retiredTable, retiredLevel, podDelta);
        }
    }
}
