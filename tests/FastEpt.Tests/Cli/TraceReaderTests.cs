// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.IO;
using System.Text;
using FastEpt.Cli.Traces;

namespace FastEpt.Tests.Cli
{
    public class TraceReaderTests
    {
        internal static ITraceReader FromText(string text, TraceFormat format) =>
            TraceReaders.Open(new MemoryStream(Encoding.ASCII.GetBytes(text)), format);

        internal static List<TraceAccess> ReadAll(ITraceReader reader, int chunk = 1024)
        {
            var all = new List<TraceAccess>();
            var buffer = new TraceAccess[chunk];
            int n;
            while ((n = reader.Read(buffer)) > 0)
            {
                all.AddRange(buffer.AsSpan(0, n).ToArray());
            }

            return all;
        }

        [Fact]
        public void Lackey_ParsesEachKind()
        {
            using ITraceReader reader = FromText("I  0400d7d4,8\n S 7ff000398,8\n L 04016a58,4\n", TraceFormat.Lackey);
            List<TraceAccess> all = ReadAll(reader);
            Assert.Equal(
                new[]
                {
                    new TraceAccess(0x0400d7d4, 8, TraceKind.Fetch),
                    new TraceAccess(0x7ff000398, 8, TraceKind.Write),
                    new TraceAccess(0x04016a58, 4, TraceKind.Read),
                },
                all);
            Assert.Equal(3, reader.LinesRead);
            Assert.Equal(0, reader.MalformedCount);
        }

        [Fact]
        public void Lackey_ModifyIsReadThenWrite()
        {
            using ITraceReader reader = FromText(" M 0421c7f0,4\n", TraceFormat.Lackey);
            Assert.Equal(new[] { new TraceAccess(0x0421c7f0, 4, TraceKind.Read), new TraceAccess(0x0421c7f0, 4, TraceKind.Write) }, ReadAll(reader));
        }

        [Fact]
        public void Lackey_ModifySplitAcrossOneSlotBuffers()
        {
            using ITraceReader reader = FromText(" M 10,4\nI  20,2\n M 30,1\n", TraceFormat.Lackey);
            List<TraceAccess> all = ReadAll(reader, chunk: 1);
            Assert.Equal(
                new[]
                {
                    new TraceAccess(0x10, 4, TraceKind.Read),
                    new TraceAccess(0x10, 4, TraceKind.Write),
                    new TraceAccess(0x20, 2, TraceKind.Fetch),
                    new TraceAccess(0x30, 1, TraceKind.Read),
                    new TraceAccess(0x30, 1, TraceKind.Write),
                },
                all);
        }

        [Fact]
        public void Lackey_BannersAndBlanksAreSkippedNotMalformed()
        {
            string text = "==2128== Lackey, an example Valgrind tool\n==2128== \n\nI  0400d7d4,8\n==2128== Exit code:       0\n";
            using var reader = (TextTraceReader)FromText(text, TraceFormat.Lackey);
            Assert.Single(ReadAll(reader));
            Assert.Equal(0, reader.MalformedCount);
            Assert.Equal(4, reader.SkippedCount);
            Assert.Equal(5, reader.LinesRead);
        }

        [Fact]
        public void Lackey_MalformedLinesCountedWithLineNumbers()
        {
            string text = "I  10,4\nX  10,4\n L zz,4\n L 10;4\n L 10,0\n L 10,70000\n S 10,4 junk\nI  20,4\n";
            using ITraceReader reader = FromText(text, TraceFormat.Lackey);
            Assert.Equal(2, ReadAll(reader).Count);
            Assert.Equal(6, reader.MalformedCount);
            Assert.Equal(new long[] { 2, 3, 4, 5, 6, 7 }, reader.FirstMalformed.Select(m => m.LineNumber));
            Assert.Equal("X  10,4", reader.FirstMalformed[0].Text);
            Assert.All(reader.FirstMalformed, m => Assert.False(string.IsNullOrEmpty(m.Reason)));
        }

        [Fact]
        public void Malformed_KeepsOnlyFirstTen()
        {
            var text = new StringBuilder();
            for (int i = 0; i < 25; i++)
            {
                text.Append("garbage ").Append(i).Append('\n');
                text.Append("I  1000,4\n");
            }

            using ITraceReader reader = FromText(text.ToString(), TraceFormat.Lackey);
            Assert.Equal(25, ReadAll(reader).Count);
            Assert.Equal(25, reader.MalformedCount);
            Assert.Equal(10, reader.FirstMalformed.Count);
            Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)(2 * i) + 1), reader.FirstMalformed.Select(m => m.LineNumber));
        }

        [Fact]
        public void CrlfAndMissingFinalNewline()
        {
            using ITraceReader reader = FromText("I  10,4\r\n S 20,8\r\n L 30,2", TraceFormat.Lackey);
            Assert.Equal(new[] { 0x10UL, 0x20UL, 0x30UL }, ReadAll(reader).Select(a => a.Address));
            Assert.Equal(0, reader.MalformedCount);
        }

        [Theory]
        [InlineData(TraceFormat.Lackey)]
        [InlineData(TraceFormat.Din)]
        [InlineData(TraceFormat.Binary)]
        [InlineData(TraceFormat.Auto)]
        public void EmptyInputYieldsNothing(TraceFormat format)
        {
            using ITraceReader reader = TraceReaders.Open(new MemoryStream(), format);
            Assert.Empty(ReadAll(reader));
            Assert.Equal(format == TraceFormat.Binary ? 1 : 0, reader.MalformedCount);
        }

        [Theory]
        [InlineData(TextTraceReader.MaxLineLength + 1)]
        [InlineData(1 << 20)]
        public void HugeLineIsOneMalformedLine(int length)
        {
            string text = "I  10,4\n" + new string('7', length) + "\n L 20,4\n";
            using ITraceReader reader = FromText(text, TraceFormat.Lackey);
            Assert.Equal(new[] { 0x10UL, 0x20UL }, ReadAll(reader).Select(a => a.Address));
            Assert.Equal(1, reader.MalformedCount);
            Assert.Equal(2, reader.FirstMalformed[0].LineNumber);
            Assert.Equal(3, reader.LinesRead);
            Assert.True(reader.FirstMalformed[0].Text.Length <= 200);
        }

        [Fact]
        public void HugeFinalLineWithoutNewline()
        {
            using ITraceReader reader = FromText("I  10,4\n" + new string('x', 200_000), TraceFormat.Lackey);
            Assert.Single(ReadAll(reader));
            Assert.Equal(1, reader.MalformedCount);
        }

        [Fact]
        public void BinaryGarbageNeverThrows()
        {
            var random = new Random(42);
            byte[] bytes = new byte[300_000];
            random.NextBytes(bytes);
            foreach (TraceFormat format in new[] { TraceFormat.Lackey, TraceFormat.Din, TraceFormat.Binary, TraceFormat.Auto })
            {
                using ITraceReader reader = TraceReaders.Open(new MemoryStream(bytes), format);
                ReadAll(reader);
                Assert.True(reader.MalformedCount > 0);
                Assert.True(reader.FirstMalformed.Count <= 10);
                Assert.All(reader.FirstMalformed, m => Assert.DoesNotContain(m.Text, c => c < ' ' && c != '\t'));
            }
        }

        [Fact]
        public void Din_ParsesLabelsAddressesAndSizes()
        {
            string text = "0 7ff000398\n1 0x1000 8\n2 400d7d4 4\n3 1234\n4 0\n\n  0\t10\t2\n";
            using var reader = (TextTraceReader)FromText(text, TraceFormat.Din);
            Assert.Equal(
                new[]
                {
                    new TraceAccess(0x7ff000398, DinTraceReader.DefaultSize, TraceKind.Read),
                    new TraceAccess(0x1000, 8, TraceKind.Write),
                    new TraceAccess(0x400d7d4, 4, TraceKind.Fetch),
                    new TraceAccess(0x10, 2, TraceKind.Read),
                },
                ReadAll(reader));
            Assert.Equal(0, reader.MalformedCount);
            Assert.Equal(3, reader.SkippedCount);
        }

        [Fact]
        public void Din_MalformedLines()
        {
            string text = "5 1000\n0\n0 xyz\n12 1000\n0 1000 0\n0 1000 4 extra\n0 11223344556677889\n1 20\n";
            using ITraceReader reader = FromText(text, TraceFormat.Din);
            Assert.Single(ReadAll(reader));
            Assert.Equal(7, reader.MalformedCount);
            Assert.Equal(new long[] { 1, 2, 3, 4, 5, 6, 7 }, reader.FirstMalformed.Select(m => m.LineNumber));
        }

        [Theory]
        [InlineData("==1== banner\nI  0400d7d4,8\n", TraceFormat.Lackey)]
        [InlineData("\r\n L 10,4\r\n", TraceFormat.Lackey)]
        [InlineData(" M 10,4\n", TraceFormat.Lackey)]
        [InlineData("2 400d7d4\n0 10\n", TraceFormat.Din)]
        [InlineData("0\t10\n", TraceFormat.Din)]
        [InlineData("hello world\n", TraceFormat.Auto)]
        [InlineData("", TraceFormat.Auto)]
        [InlineData("FEPTRACE", TraceFormat.Binary)]
        public void Detect_ByMagicOrFirstContentLine(string head, TraceFormat expected)
        {
            Assert.Equal(expected, TraceReaders.Detect(Encoding.ASCII.GetBytes(head)));
        }

        [Fact]
        public void Open_AutoPicksTheReaderAndKeepsTheStart()
        {
            using ITraceReader din = FromText("2 400d7d4\n", TraceFormat.Auto);
            Assert.IsType<DinTraceReader>(din);
            Assert.Single(ReadAll(din));
            using ITraceReader lackey = FromText("I  400d7d4,4\n", TraceFormat.Auto);
            Assert.IsType<LackeyTraceReader>(lackey);
            Assert.Single(ReadAll(lackey));
        }

        [Fact]
        public void Open_MissingFileThrowsFileNotFound()
        {
            Assert.Throws<FileNotFoundException>(() => TraceReaders.Open(Path.Combine(Path.GetTempPath(), "fastept-no-such-trace-" + Guid.NewGuid())));
        }

        [Fact]
        public void Position_ReachesTotal()
        {
            using ITraceReader reader = FromText("I  10,4\n L 20,4\n", TraceFormat.Lackey);
            ReadAll(reader);
            Assert.Equal(reader.Position.Total, reader.Position.Done);
            Assert.Equal(16, reader.Position.Total);
        }
    }
}
