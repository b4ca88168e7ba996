// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System.IO;
using FastEpt.Cli.Replay;
using FastEpt.Cli.Traces;

namespace FastEpt.Tests.Cli
{
    public sealed partial class ReplayTests
    {
        [Fact]
        public void Malformed_ComesFromTheReader()
        {
            MalformedLine[] bad = Enumerable.Range(1, 12).Select(i => new MalformedLine(i * 2, "junk " + i, "bad")).ToArray();
            using ReplayTestReader reader = new ReplayTestReader(MakeTrace(10), malformed: bad);
            ReplayReport report = Replayer.Run(reader, new ReplayOptions { GuestBytes = Guest }, null, CancellationToken.None);
            Assert.Equal(12, report.MalformedCount);
            Assert.Equal(bad.Take(10), report.FirstMalformed);
            Assert.Equal(22, report.LinesRead);
        }

        [Fact]
        public void Progress_ReportsTheFinalCount()
        {
            TraceAccess[] trace = MakeTrace(1000);
            List<ReplayProgress> seen = new();
            using ReplayTestReader reader = new ReplayTestReader(trace, chunk: 100);
            ReplayReport report = Replayer.Run(reader, new ReplayOptions { GuestBytes = Guest }, seen.Add, CancellationToken.None);
            ReplayProgress last = seen[^1];
            Assert.Equal(1000, last.Accesses);
            Assert.Equal(16_000, last.BytesDone);
            Assert.Equal(16_000, last.BytesTotal);
            // The final snapshot is taken after the replay clock stopped: its rate is the whole
            // run's, over the same elapsed time the report carries.
            Assert.True(report.Elapsed > TimeSpan.Zero);
            Assert.Equal(1000 / report.Elapsed.TotalSeconds, last.AccessesPerSecond);
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void Cancellation_Throws(bool readAhead)
        {
            using CancellationTokenSource cts = new();
            cts.Cancel();
            using ReplayTestReader reader = new ReplayTestReader(MakeTrace(10));
            Assert.ThrowsAny<OperationCanceledException>(() => Replayer.Run(reader, new ReplayOptions { GuestBytes = Guest, ReadAhead = readAhead }, null, cts.Token));
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void Cancellation_MidReplay_StopsAndThrows(bool readAhead)
        {
            // Cancelled by the reader itself on its fifth read (with read-ahead, from the reader's
            // thread): the replay stops with the cancellation, and the reader is not read to the end.
            using CancellationTokenSource cts = new();
            using FailingReader reader = new FailingReader(MakeTrace(200_000), failAfter: int.MaxValue, onRead: n =>
            {
                if (n == 5)
                {
                    cts.Cancel();
                }
            });
            Assert.ThrowsAny<OperationCanceledException>(() => Replayer.Run(reader, new ReplayOptions { GuestBytes = Guest, ReadAhead = readAhead }, null, cts.Token));
            Assert.InRange(reader.Reads, 5, 5 + 4);
        }

        [Fact]
        public void ReadAhead_GivesTheSameReport()
        {
            // The same trace in chunks of 1,000 with and without the reader running ahead on its
            // own thread: identical statistics (timings aside).
            TraceAccess[] trace = MakeTrace(120_000, seed: 3);
            foreach (ReplayOptions o in new[]
            {
                new ReplayOptions { GuestBytes = Guest },
                new ReplayOptions { GuestBytes = Guest, TlbEntries = 0, Views = 2, ViewAccess = P2mAccess.RX },
                new ReplayOptions { GuestBytes = Guest, Batch = 64, Pages = PageMode.Mixed },
            })
            {
                o.ReadAhead = false;
                ReplayReport serial = Run(trace, o, chunk: 1000);
                o.ReadAhead = true;
                ReplayReport ahead = Run(trace, o, chunk: 1000);
                Assert.Equal(serial.Accesses, ahead.Accesses);
                Assert.Equal(serial.Kinds, ahead.Kinds);
                Assert.Equal(serial.WalkDepth, ahead.WalkDepth);
                Assert.Equal(serial.ViewStats, ahead.ViewStats);
                Assert.Equal(serial.HotPages, ahead.HotPages);
                Assert.Equal(serial.HotRegions, ahead.HotRegions);
                Assert.Equal(serial.WorkingSet, ahead.WorkingSet);
                Assert.Equal(serial.HeatMap.Counts, ahead.HeatMap.Counts);
                Assert.Equal(serial.TlbHits, ahead.TlbHits);
            }
        }

        [Theory]
        [InlineData(false)]
        [InlineData(true)]
        public void ReaderFailure_IsRethrownAsIs(bool readAhead)
        {
            using FailingReader reader = new FailingReader(MakeTrace(50_000), failAfter: 3);
            IOException e = Assert.Throws<IOException>(() => Replayer.Run(reader, new ReplayOptions { GuestBytes = Guest, ReadAhead = readAhead }, null, CancellationToken.None));
            Assert.Equal("disk on fire", e.Message);
        }

        private sealed class FailingReader(TraceAccess[] data, int failAfter, Action<int>? onRead = null) : ITraceReader
        {
            private readonly ReplayTestReader _inner = new(data, chunk: 1000);
            private int _reads;

            public int Reads => Volatile.Read(ref _reads);

            public long LinesRead => _inner.LinesRead;

            public long MalformedCount => 0;

            public IReadOnlyList<MalformedLine> FirstMalformed => Array.Empty<MalformedLine>();

            public (long Done, long Total) Position => _inner.Position;

            public int Read(Span<TraceAccess> buffer)
            {
                int n = Interlocked.Increment(ref _reads);
                onRead?.Invoke(n);
                return n > failAfter ? throw new IOException("disk on fire") : _inner.Read(buffer);
            }

            public void Dispose() => _inner.Dispose();
        }
    }
}
