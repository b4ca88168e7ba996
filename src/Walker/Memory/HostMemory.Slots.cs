// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using FastEpt.Internal;

namespace FastEpt
{
    // The one seam through which code outside HostMemory reaches 64-bit words of host memory
    // without a pointer: the walkers, the software TLB, the guest-page-table code and the
    // native bindings go through these accessors (one word, or one table frame's 512 words),
    // so pointer arithmetic stays here.
    public sealed unsafe partial class HostMemory
    {
        /// <summary>
        /// The aligned 64-bit word at <paramref name="hpa"/>, for <see cref="Volatile"/> and
        /// <see cref="Interlocked"/> access. Checked: throws if the memory is disposed, the word
        /// is not inside host memory or <paramref name="hpa"/> is not 8-byte aligned.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException">The word is outside host memory or misaligned.</exception>
        /// <exception cref="ObjectDisposedException">The memory was disposed.</exception>
        internal ref ulong Slot(ulong hpa)
        {
            if ((hpa & 7) != 0)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_hpa(hpa, sizeof(ulong));
            }

            return ref *(ulong*)Pointer(hpa, sizeof(ulong));
        }

        /// <summary>
        /// The 64-bit word at <paramref name="hpa"/> with no check at all: the caller has already
        /// proved that <paramref name="hpa"/> is 8-byte aligned and inside host memory and that
        /// the memory is not disposed (the walkers check each table pointer against
        /// <see cref="Size"/> before they follow it).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal ref ulong DangerousSlot(ulong hpa) => ref *(ulong*)(_base + hpa);

        /// <summary>
        /// The 512 entries of the table frame <paramref name="mfn"/> with no check at all: the
        /// caller has already proved that the frame is inside host memory (a table it owns) and
        /// that the memory is not disposed. For the writers' whole-table loops.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal Span<ulong> DangerousTable(ulong mfn)
            => new Span<ulong>(_base + (mfn << EptEntry.PageBits), EptEntry.EntriesPerTable);

        /// <summary>
        /// Throws <see cref="ObjectDisposedException"/> once the memory is disposed: the check a
        /// caller makes once, on entry, before it uses <see cref="DangerousSlot"/> or
        /// <see cref="DangerousTable"/>.
        /// </summary>
        /// <exception cref="ObjectDisposedException">The memory was disposed.</exception>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal void ThrowIfDisposed()
        {
            if (_base == null)
            {
                ThrowHelper.ThrowObjectDisposedException(this);
            }
        }
    }
}
