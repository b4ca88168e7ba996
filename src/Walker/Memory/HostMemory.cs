// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Runtime.InteropServices;
using FastEpt.Internal;

namespace FastEpt
{
    /// <summary>
    /// Host-physical memory: one contiguous native range cut into 4 KiB frames, where frame
    /// number (MFN) n covers host-physical addresses [n*4096, n*4096+4096). EPT tables and guest
    /// RAM both live here. The range is reserved up front and committed lazily by the OS, so a
    /// 64 GiB reservation costs nothing until it is touched; on Linux it is 2 MiB aligned and
    /// advised for transparent huge pages.
    /// </summary>
    /// <remarks>
    /// Frame allocation and freeing are thread-safe (one internal lock, never held across a
    /// callback). Every accessor is bounds-checked and throws
    /// <see cref="ArgumentOutOfRangeException"/> outside the range; reads and writes of memory
    /// itself are not synchronised beyond what <see cref="ReadUInt64"/>/<see cref="WriteUInt64"/>
    /// say. A <see cref="Span{T}"/> from <see cref="Frame"/> must not be used after
    /// <see cref="Dispose"/>.
    /// </remarks>
    public sealed unsafe partial class HostMemory : IDisposable
    {
        /// <summary>The pattern freed frames are filled with when poisoning is on (tests).
        /// Read as an EPT entry it is present with reserved bits set and an unknown type.</summary>
        internal const ulong PoisonPattern = 0xDEAD_BEEF_DEAD_BEEF;

        private const int RefChunkFrames = 1 << 16;
        private const int FreePending = 1 << 30;          // set in a reference word: freed, reuse waits for the last release
        private const int RefCountMask = FreePending - 1;

        private readonly NativeRegion _region;
        private readonly ulong[] _allocated;       // one bit per frame
        private readonly int[]?[] _refs;           // per-frame reference words, in lazily created chunks
        private readonly OrderedLock _lock = new(OrderedLock.PageAllocRank, "host memory allocator");
        private ulong[] _freeStack = new ulong[64];
        private int _freeCount;
        private ulong _next;                       // frames below this were handed out at least once
        private long _allocatedCount;
        private byte* _base;                       // null once disposed

        /// <summary>Reserves <paramref name="bytes"/> of host-physical memory (rounded up to whole frames).</summary>
        /// <param name="bytes">At least one frame and at most 2^46 bytes.</param>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="bytes"/> is out of range.</exception>
        /// <exception cref="InsufficientMemoryException">The OS refused the reservation.</exception>
        public HostMemory(long bytes)
        {
            if (bytes < EptEntry.PageSize || bytes > (1L << 46))
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(bytes), bytes, "Host memory must hold between one 4 KiB frame and 64 TiB.");
            }

            FrameCount = (bytes + EptEntry.PageSize - 1) >> EptEntry.PageBits;
            _region = new NativeRegion((ulong)FrameCount << EptEntry.PageBits);
            _base = _region.Base;
            _allocated = new ulong[(FrameCount + 63) / 64];
            _refs = new int[]?[(FrameCount + RefChunkFrames - 1) / RefChunkFrames];
        }

        /// <summary>Number of 4 KiB frames; valid MFNs are 0 .. FrameCount-1.</summary>
        public long FrameCount { get; }

        /// <summary>Size in bytes (<see cref="FrameCount"/> × 4096).</summary>
        public long Size => FrameCount << EptEntry.PageBits;

        /// <summary>Number of frames currently allocated (for leak checks and statistics).</summary>
        public long AllocatedFrameCount => Volatile.Read(ref _allocatedCount);

        /// <summary>When set, freed frames are filled with a poison pattern, so a use after free shows up as garbage.</summary>
        internal bool PoisonFreedFrames { get; set; }

        internal bool IsDisposed => _base == null;

        internal byte* Base
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get
            {
                byte* b = _base;
                if (b == null)
                {
                    ThrowHelper.ThrowObjectDisposedException(this);
                }

                return b;
            }
        }

        /// <summary>Allocates one zeroed frame. Thread-safe.</summary>
        /// <returns>The frame's MFN.</returns>
        /// <exception cref="InsufficientMemoryException">No frame is free.</exception>
        public ulong AllocateFrame()
        {
            if (!TryAllocateFrame(out ulong mfn))
            {
                ThrowHelper.ThrowInsufficientMemoryException_frames();
            }

            return mfn;
        }

        /// <summary>Allocates one zeroed frame, or returns false when none is free. Thread-safe.</summary>
        public bool TryAllocateFrame(out ulong mfn)
        {
            byte* b = Base;
            using (_lock.Enter())
            {
                if (_freeCount > 0)
                {
                    mfn = _freeStack[--_freeCount];
                }
                else if (_next < (ulong)FrameCount)
                {
                    mfn = _next++;
                }
                else
                {
                    mfn = Mfn.Invalid;
                    return false;
                }

                _allocatedCount++;
            }

            // Zero outside the lock: the frame is ours alone now. Fresh frames are zero already
            // unless a caller wrote into them through Write/Frame, so clear unconditionally.
            // Only then is it marked allocated, so no reference can be taken on a frame that is
            // still being cleared.
            NativeMemory.Clear(b + (mfn << EptEntry.PageBits), EptEntry.PageSize);
            MarkAllocated(mfn, 1);
            return true;
        }

        /// <summary>
        /// Allocates <paramref name="count"/> contiguous zeroed frames (e.g. a guest's RAM) and
        /// returns the first MFN. Thread-safe. Only never-used frames are considered, so this
        /// does not reuse freed frames.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is not positive.</exception>
        /// <exception cref="InsufficientMemoryException">Not enough contiguous frames are left.</exception>
        public ulong AllocateFrames(long count)
        {
            if (count <= 0)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException(nameof(count), count, "The frame count must be positive.");
            }

            _ = Base;
            ulong first;
            using (_lock.Enter())
            {
                if ((ulong)count > (ulong)FrameCount - _next)
                {
                    throw new InsufficientMemoryException($"Host memory has no run of {count} free frames left.");
                }

                first = _next;
                _next += (ulong)count;
                _allocatedCount += count;
            }

            _region.Zero(first << EptEntry.PageBits, (ulong)count << EptEntry.PageBits);
            MarkAllocated(first, (ulong)count);
            return first;
        }

        // Sets the allocation bits of [first, first + count) word by word. Interlocked: other
        // frames' bits in the same word change concurrently (allocations publish outside the lock).
        private void MarkAllocated(ulong first, ulong count)
        {
            ulong end = first + count;
            for (ulong f = first; f < end;)
            {
                int lo = (int)(f & 63);
                int n = (int)Math.Min(64UL - (ulong)lo, end - f);
                ulong mask = (n == 64 ? ~0UL : ((1UL << n) - 1)) << lo;
                Interlocked.Or(ref _allocated[f >> 6], mask);
                f += (ulong)n;
            }
        }

        /// <summary>
        /// Returns a frame to the allocator. Thread-safe. A frame that still holds references
        /// (<see cref="TryAddReference"/>) stops being allocated at once but is reused only after
        /// its last <see cref="ReleaseReference"/>, so a page handed to an emulator stays valid.
        /// </summary>
        /// <param name="mfn">A frame returned by <see cref="AllocateFrame"/> or <see cref="AllocateFrames"/> and not yet freed.</param>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="mfn"/> is outside host memory.</exception>
        /// <exception cref="ArgumentException"><paramref name="mfn"/> is not allocated (double free).</exception>
        public void FreeFrame(ulong mfn)
        {
            _ = Base;
            CheckMfn(mfn);
            ref int word = ref RefWord(mfn);
            using (_lock.Enter())
            {
                ulong bit = 1UL << (int)(mfn & 63);
                if ((Volatile.Read(ref _allocated[mfn >> 6]) & bit) == 0)
                {
                    ThrowHelper.ThrowArgumentException(nameof(mfn), $"Frame 0x{mfn:X} is not allocated.");
                }

                Interlocked.And(ref _allocated[mfn >> 6], ~bit);
                _allocatedCount--;

                // Mark the free pending; whoever sees the count at zero with the mark set (this
                // call, or the release or failed acquire that follows) returns the frame, once.
                int before = Interlocked.Or(ref word, FreePending);
                if ((before & RefCountMask) == 0 && Interlocked.CompareExchange(ref word, 0, FreePending) == FreePending)
                {
                    PushFreeLocked(mfn);
                }
            }
        }

        /// <summary>
        /// Takes a reference on an allocated frame (Xen's get_page): while any reference is held,
        /// <see cref="FreeFrame"/> defers the frame's reuse. Lock-free and thread-safe.
        /// </summary>
        /// <returns>False when the frame is not allocated (free, or freed and waiting for its last reference).</returns>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="mfn"/> is outside host memory.</exception>
        /// <exception cref="InvalidOperationException">The frame already holds 2^30 - 1 references.</exception>
        public bool TryAddReference(ulong mfn)
        {
            _ = Base;
            CheckMfn(mfn);
            ref int word = ref RefWord(mfn);
            int now = Interlocked.Increment(ref word);
            if ((now & FreePending) != 0 || (Volatile.Read(ref _allocated[mfn >> 6]) & (1UL << (int)(mfn & 63))) == 0)
            {
                Drop(mfn, ref word);
                return false;
            }

            if ((now & RefCountMask) == RefCountMask)
            {
                Drop(mfn, ref word);
                throw new InvalidOperationException($"Frame 0x{mfn:X} has too many references.");
            }

            return true;
        }

        /// <summary>
        /// Drops a reference taken with <see cref="TryAddReference"/> (Xen's put_page); the last
        /// one completes a pending <see cref="FreeFrame"/>. Thread-safe.
        /// </summary>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="mfn"/> is outside host memory.</exception>
        /// <exception cref="InvalidOperationException">The frame holds no reference (a double release); nothing changes.</exception>
        public void ReleaseReference(ulong mfn)
        {
            CheckMfn(mfn);
            Drop(mfn, ref RefWord(mfn));
        }

        /// <summary>References currently held on <paramref name="mfn"/>.</summary>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="mfn"/> is outside host memory.</exception>
        public int ReferenceCount(ulong mfn)
        {
            CheckMfn(mfn);
            int[]? chunk = Volatile.Read(ref _refs[(long)(mfn / RefChunkFrames)]);
            return chunk is null ? 0 : Volatile.Read(ref chunk[(int)(mfn % RefChunkFrames)]) & RefCountMask;
        }

        private void Drop(ulong mfn, ref int word)
        {
            int now = Interlocked.Decrement(ref word);
            if ((now & RefCountMask) == RefCountMask)
            {
                Interlocked.Increment(ref word);
                throw new InvalidOperationException($"Frame 0x{mfn:X} holds no reference to release.");
            }

            if (now == FreePending && Interlocked.CompareExchange(ref word, 0, FreePending) == FreePending)
            {
                using (_lock.Enter())
                {
                    if (_base != null)
                    {
                        PushFreeLocked(mfn);
                    }
                }
            }
        }

        private ref int RefWord(ulong mfn)
        {
            ref int[]? slot = ref _refs[(long)(mfn / RefChunkFrames)];
            int[]? chunk = Volatile.Read(ref slot);
            if (chunk is null)
            {
                Interlocked.CompareExchange(ref slot, new int[RefChunkFrames], null);
                chunk = Volatile.Read(ref slot)!;
            }

            return ref chunk[(int)(mfn % RefChunkFrames)];
        }

        private void PushFreeLocked(ulong mfn)
        {
            if (PoisonFreedFrames)
            {
                new Span<ulong>(_base + (mfn << EptEntry.PageBits), EptEntry.PageSize / sizeof(ulong)).Fill(PoisonPattern);
            }

            if (_freeCount == _freeStack.Length)
            {
                Array.Resize(ref _freeStack, _freeStack.Length * 2);
            }

            _freeStack[_freeCount++] = mfn;
        }

        /// <summary>True when <paramref name="mfn"/> is currently allocated. Thread-safe.</summary>
        public bool IsAllocated(ulong mfn)
        {
            _ = Base;
            CheckMfn(mfn);
            return (Volatile.Read(ref _allocated[mfn >> 6]) & (1UL << (int)(mfn & 63))) != 0;
        }

        /// <summary>A bounds-checked view of one frame. Valid until <see cref="Dispose"/>.</summary>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="mfn"/> is outside host memory.</exception>
        public Span<byte> Frame(ulong mfn)
        {
            byte* b = Base;
            CheckMfn(mfn);
            return new Span<byte>(b + (mfn << EptEntry.PageBits), EptEntry.PageSize);
        }

        /// <summary>Reads 8 bytes at <paramref name="hpa"/>; an 8-byte-aligned read is a single atomic load.</summary>
        /// <exception cref="ArgumentOutOfRangeException">The 8 bytes are not all inside host memory.</exception>
        public ulong ReadUInt64(ulong hpa)
        {
            byte* p = Pointer(hpa, sizeof(ulong));
            return (hpa & 7) == 0 ? Volatile.Read(ref *(ulong*)p) : Unsafe.ReadUnaligned<ulong>(p);
        }

        /// <summary>Writes 8 bytes at <paramref name="hpa"/>; an 8-byte-aligned write is a single atomic store.</summary>
        /// <exception cref="ArgumentOutOfRangeException">The 8 bytes are not all inside host memory.</exception>
        public void WriteUInt64(ulong hpa, ulong value)
        {
            byte* p = Pointer(hpa, sizeof(ulong));
            if ((hpa & 7) == 0)
            {
                Volatile.Write(ref *(ulong*)p, value);
            }
            else
            {
                Unsafe.WriteUnaligned(p, value);
            }
        }

        /// <summary>Copies host memory at <paramref name="hpa"/> into <paramref name="dst"/>.</summary>
        /// <exception cref="ArgumentOutOfRangeException">The range is not inside host memory.</exception>
        public void Read(ulong hpa, Span<byte> dst)
            => new ReadOnlySpan<byte>(Pointer(hpa, (ulong)dst.Length), dst.Length).CopyTo(dst);

        /// <summary>Copies <paramref name="src"/> into host memory at <paramref name="hpa"/>.</summary>
        /// <exception cref="ArgumentOutOfRangeException">The range is not inside host memory.</exception>
        public void Write(ulong hpa, ReadOnlySpan<byte> src)
            => src.CopyTo(new Span<byte>(Pointer(hpa, (ulong)src.Length), src.Length));

        /// <summary>Releases the native range. Any P2m over it must be disposed first.</summary>
        public void Dispose()
        {
            using (_lock.Enter())
            {
                _base = null;
            }

            _region.Dispose();
        }

        private byte* Pointer(ulong hpa, ulong length)
        {
            byte* b = Base;
            ulong size = (ulong)Size;
            // Overflow-safe: length <= size and hpa <= size - length.
            if (length > size || hpa > size - length)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_hpa(hpa, length);
            }

            return b + hpa;
        }

        private void CheckMfn(ulong mfn)
        {
            if (mfn >= (ulong)FrameCount)
            {
                ThrowHelper.ThrowArgumentOutOfRangeException_mfn(mfn, FrameCount);
            }
        }
    }
}
