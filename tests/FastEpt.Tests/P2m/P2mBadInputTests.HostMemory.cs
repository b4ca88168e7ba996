// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

namespace FastEpt.Tests.P2mTests
{
    public sealed partial class P2mBadInputTests
    {
        // ---- HostMemory -------------------------------------------------------------------------

        [Theory]
        [InlineData(0L)]
        [InlineData(-1L)]
        [InlineData(-4096L)]
        [InlineData(long.MinValue)]
        [InlineData((1L << 46) + 4096)]
        public void HostMemory_SizeOutOfRange_ThrowsOutOfRange(long bytes)
        {
            ArgumentOutOfRangeException ex = Assert.Throws<ArgumentOutOfRangeException>(() => new HostMemory(bytes));
            Assert.Equal("bytes", ex.ParamName);
        }

        [Theory]
        [InlineData(0L)]
        [InlineData(-1L)]
        public void HostMemory_AllocateFramesNonPositiveCount_ThrowsOutOfRangeAndChangesNothing(long count)
            => AssertRejected<ArgumentOutOfRangeException>("count", () => _memory.AllocateFrames(count));

        [Fact]
        public void HostMemory_FreeFrameOutOfRange_ThrowsOutOfRangeAndChangesNothing()
        {
            AssertRejected<ArgumentOutOfRangeException>("mfn", () => _memory.FreeFrame(FrameCount));
            AssertRejected<ArgumentOutOfRangeException>("mfn", () => _memory.FreeFrame(FrameCount + 1));
            AssertRejected<ArgumentOutOfRangeException>("mfn", () => _memory.FreeFrame(Mfn.Invalid));
        }

        [Fact]
        public void HostMemory_DoubleFree_ThrowsArgumentAndChangesNothing()
        {
            ulong a = _memory.AllocateFrame();
            _memory.FreeFrame(a);
            AssertRejected<ArgumentException>("mfn", () => _memory.FreeFrame(a));

            // The frame went onto the free list once only: two allocations get two frames.
            ulong b = _memory.AllocateFrame();
            ulong c = _memory.AllocateFrame();
            Assert.NotEqual(b, c);
            _memory.FreeFrame(b);
            _memory.FreeFrame(c);
        }

        [Fact]
        public void HostMemory_FreeNeverAllocatedFrame_ThrowsArgumentAndChangesNothing()
            => AssertRejected<ArgumentException>("mfn", () => _memory.FreeFrame(FrameCount - 1));

        [Fact]
        public void HostMemory_FrameOutOfRange_ThrowsOutOfRange()
        {
            // Frame takes a frame number, so the exception names "mfn" (API.md: "naming the argument").
            AssertRejected<ArgumentOutOfRangeException>("mfn", () => _memory.Frame(FrameCount));
            AssertRejected<ArgumentOutOfRangeException>("mfn", () => _memory.Frame(ulong.MaxValue >> 12));
            AssertRejected<ArgumentOutOfRangeException>("mfn", () => _memory.Frame(ulong.MaxValue));
        }

        [Theory]
        [InlineData(0UL, 0UL)]          // offsets below are from the end of host memory
        [InlineData(7UL, 0UL)]
        [InlineData(4UL, 0UL)]
        [InlineData(1UL, 0UL)]
        [InlineData(0UL, ulong.MaxValue)]
        [InlineData(0UL, ulong.MaxValue - 3)]
        [InlineData(0UL, ulong.MaxValue - 7)]
        [InlineData(0UL, 1UL << 63)]
        public void HostMemory_UInt64AccessOutOfRange_ThrowsOutOfRangeAndChangesNothing(ulong bytesBeforeEnd, ulong absolute)
        {
            ulong hpa = absolute != 0 ? absolute : (ulong)_memory.Size - bytesBeforeEnd;
            AssertRejected<ArgumentOutOfRangeException>("hpa", () => _memory.ReadUInt64(hpa));
            AssertRejected<ArgumentOutOfRangeException>("hpa", () => _memory.WriteUInt64(hpa, ulong.MaxValue));
        }

        [Theory]
        [InlineData(16, 8UL, 0UL)]
        [InlineData(1, 0UL, 0UL)]
        [InlineData(4096, 4095UL, 0UL)]
        [InlineData(8, 0UL, ulong.MaxValue - 3)]
        [InlineData(16, 0UL, ulong.MaxValue - 7)]
        [InlineData(1, 0UL, ulong.MaxValue)]
        public void HostMemory_SpanAccessOutOfRange_ThrowsOutOfRangeAndChangesNothing(int length, ulong bytesBeforeEnd, ulong absolute)
        {
            ulong hpa = absolute != 0 ? absolute : (ulong)_memory.Size - bytesBeforeEnd;
            ulong end = (ulong)_memory.Size;
            _memory.WriteUInt64(end - 16, 0x1111_2222_3333_4444);
            _memory.WriteUInt64(end - 8, 0x5555_6666_7777_8888);
            byte[] buffer = Enumerable.Repeat((byte)0xA5, length).ToArray();
            AssertRejected<ArgumentOutOfRangeException>("hpa", () => _memory.Read(hpa, buffer));
            Assert.All(buffer, b => Assert.Equal(0xA5, b));
            AssertRejected<ArgumentOutOfRangeException>("hpa", () => _memory.Write(hpa, buffer));
            Assert.Equal(0x1111_2222_3333_4444UL, _memory.ReadUInt64(end - 16));
            Assert.Equal(0x5555_6666_7777_8888UL, _memory.ReadUInt64(end - 8));
        }

        [Fact]
        public void HostMemory_LastBytes_AreAccessible()
        {
            // The boundary cases above are errors by one byte only.
            ulong end = (ulong)_memory.Size;
            _memory.WriteUInt64(end - 8, 0x0123_4567_89AB_CDEF);
            Assert.Equal(0x0123_4567_89AB_CDEFUL, _memory.ReadUInt64(end - 8));
            byte[] buffer = new byte[8];
            _memory.Read(end - 8, buffer);
            _memory.Write(end - 8, new byte[8]);
            Assert.Equal(0xEF, buffer[0]);
            Assert.Equal(4096, _memory.Frame(FrameCount - 1).Length);
        }

        [Fact]
        public void HostMemory_AfterDispose_EveryMethodThrowsObjectDisposed()
        {
            HostMemory memory = new HostMemory(1 << 20);
            ulong mfn = memory.AllocateFrame();
            memory.Dispose();
            memory.Dispose();   // idempotent

            Assert.Throws<ObjectDisposedException>(() => memory.AllocateFrame());
            Assert.Throws<ObjectDisposedException>(() => memory.TryAllocateFrame(out _));
            Assert.Throws<ObjectDisposedException>(() => memory.AllocateFrames(1));
            Assert.Throws<ObjectDisposedException>(() => memory.FreeFrame(mfn));
            Assert.Throws<ObjectDisposedException>(() => memory.IsAllocated(mfn));
            Assert.Throws<ObjectDisposedException>(() => memory.Frame(mfn).Length);
            Assert.Throws<ObjectDisposedException>(() => memory.ReadUInt64(0));
            Assert.Throws<ObjectDisposedException>(() => memory.WriteUInt64(0, 1));
            Assert.Throws<ObjectDisposedException>(() => memory.Read(0, new byte[8]));
            Assert.Throws<ObjectDisposedException>(() => memory.Write(0, new byte[8]));
            Assert.Throws<ObjectDisposedException>(() => new P2m(memory));
        }
    }
}
