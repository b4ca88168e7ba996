// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.Buffers.Binary;
using System.IO;
using FastEpt.Cli.Traces;

namespace FastEpt.Tests.Cli
{
    public class TraceBinaryTests
    {
        internal static string SamplePath => Path.Combine(RepositoryRoot.Find(), "src", "Cli", "Samples", "sample.lackey");

        private static byte[] Encode(IEnumerable<TraceAccess> accesses)
        {
            var stream = new MemoryStream();
            using (var writer = new BinaryTraceWriter(stream, leaveOpen: true))
            {
                writer.Write(accesses.ToArray());
            }

            return stream.ToArray();
        }

        [Fact]
        public void Header_IsMagicVersionRecordSize()
        {
            byte[] bytes = Encode(new[] { new TraceAccess(0x1122334455667788, 0x1234, TraceKind.Fetch) });
            Assert.Equal(BinaryTraceFormat.HeaderSize + BinaryTraceFormat.RecordSize, bytes.Length);
            Assert.Equal("FEPTRACE"u8.ToArray(), bytes.AsSpan(0, 8).ToArray());
            Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)));
            Assert.Equal(12, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(10)));
            Assert.Equal(0x1122334455667788UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(16)));
            Assert.Equal(0x0002_1234U, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(24)));
        }

        [Fact]
        public void RoundTrip_SampleTrace()
        {
            List<TraceAccess> original;
            using (ITraceReader lackey = TraceReaders.Open(SamplePath))
            {
                Assert.IsType<LackeyTraceReader>(lackey);
                original = TraceReaderTests.ReadAll(lackey);
                Assert.Equal(0, lackey.MalformedCount);
            }

            Assert.True(original.Count > 10_000);
            Assert.Contains(original, a => a.Kind == TraceKind.Write);
            byte[] bytes = Encode(original);
            using ITraceReader binary = TraceReaders.Open(new MemoryStream(bytes), TraceFormat.Auto);
            Assert.IsType<BinaryTraceReader>(binary);
            Assert.Equal(original, TraceReaderTests.ReadAll(binary, chunk: 777));
            Assert.Equal(0, binary.MalformedCount);
            Assert.Equal(original.Count, binary.LinesRead);
            Assert.Equal(bytes.Length, binary.Position.Done);
        }

        [Theory]
        [InlineData(1)]
        [InlineData(11)]
        public void TruncatedRecord_CountedAtTheEnd(int extra)
        {
            byte[] full = Encode(new[] { new TraceAccess(0x1000, 4, TraceKind.Read), new TraceAccess(0x2000, 8, TraceKind.Write) });
            byte[] cut = full.AsSpan(0, BinaryTraceFormat.HeaderSize + BinaryTraceFormat.RecordSize + extra).ToArray();
            using ITraceReader reader = TraceReaders.Open(new MemoryStream(cut), TraceFormat.Binary);
            Assert.Equal(new[] { new TraceAccess(0x1000, 4, TraceKind.Read) }, TraceReaderTests.ReadAll(reader));
            Assert.Equal(1, reader.MalformedCount);
            Assert.Equal(2, reader.FirstMalformed[0].LineNumber);
            Assert.Contains("truncated", reader.FirstMalformed[0].Reason);
        }

        [Fact]
        public void BadRecords_CountedAndSkipped()
        {
            byte[] bytes = Encode(new[] { new TraceAccess(1, 1, TraceKind.Read), new TraceAccess(2, 2, TraceKind.Read), new TraceAccess(3, 3, TraceKind.Read) });
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(16 + 8), 0);                 // size 0
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(16 + 12 + 8), 0x0103_0004); // kind 3, reserved bits
            using ITraceReader reader = TraceReaders.Open(new MemoryStream(bytes), TraceFormat.Binary);
            Assert.Equal(new[] { new TraceAccess(3, 3, TraceKind.Read) }, TraceReaderTests.ReadAll(reader));
            Assert.Equal(2, reader.MalformedCount);
            Assert.Equal(new long[] { 1, 2 }, reader.FirstMalformed.Select(m => m.LineNumber));
        }

        [Theory]
        [InlineData(new byte[] { (byte)'F', (byte)'E' })]
        [InlineData(new byte[] { (byte)'N', (byte)'O', (byte)'T', (byte)'A', (byte)'T', (byte)'R', (byte)'A', (byte)'C', 1, 0, 12, 0, 0, 0, 0, 0 })]
        [InlineData(new byte[] { (byte)'F', (byte)'E', (byte)'P', (byte)'T', (byte)'R', (byte)'A', (byte)'C', (byte)'E', 2, 0, 12, 0, 0, 0, 0, 0 })]
        [InlineData(new byte[] { (byte)'F', (byte)'E', (byte)'P', (byte)'T', (byte)'R', (byte)'A', (byte)'C', (byte)'E', 1, 0, 16, 0, 0, 0, 0, 0 })]
        public void BadHeader_IsOneMalformedRecordAndNoAccesses(byte[] header)
        {
            byte[] bytes = header.Concat(new byte[48]).ToArray();
            using ITraceReader reader = TraceReaders.Open(new MemoryStream(header.Length < 16 ? header : bytes), TraceFormat.Binary);
            Assert.Empty(TraceReaderTests.ReadAll(reader));
            Assert.Equal(1, reader.MalformedCount);
            Assert.Equal(0, reader.FirstMalformed[0].LineNumber);
        }

        [Fact]
        public void Writer_RejectsSizeZero()
        {
            using var writer = new BinaryTraceWriter(new MemoryStream());
            Assert.Throws<ArgumentException>(() => writer.Write(new[] { new TraceAccess(1, 0, TraceKind.Read) }));
        }

        [Fact]
        public void LargeTrace_StreamsAcrossChunks()
        {
            var accesses = Enumerable.Range(0, 300_000).Select(i => new TraceAccess((ulong)i * 4096, (ushort)(1 + (i % 64)), (TraceKind)(i % 3))).ToList();
            using ITraceReader reader = TraceReaders.Open(new MemoryStream(Encode(accesses)), TraceFormat.Auto);
            Assert.Equal(accesses, TraceReaderTests.ReadAll(reader, chunk: 65536));
        }
    }
}
