// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Diagnostics;
using System.Threading;
using FastEpt.Cli.Traces;

namespace FastEpt.Cli.Replay
{
    /// <summary>
    /// Replays a trace through FastEpt: builds a guest of <see cref="ReplayOptions.GuestBytes"/>
    /// mapped RWX with the requested page size (and altp2m views if asked), translates every
    /// access (trace address folded into the guest modulo its size), and gathers statistics.
    /// </summary>
    /// <remarks>
    /// All guest pages are mapped onto one small pool of host frames (the replay translates but
    /// never touches guest data), so a 4 GiB guest costs only its page tables. An access that
    /// crosses a page boundary is counted and translated once, at its start address. Hot-page
    /// counting keeps one hash-table slot (32 bytes, at most half the table full) per distinct
    /// 4 KiB trace page. With more than one CPU the trace is read, decoded and counted on a
    /// background task while the calling thread translates (<see cref="ReplayOptions"/>).
    /// A failed translation is handed to the guest's <see cref="Domain"/> as an EPT exit and the
    /// access translated again once the domain resolved it.
    /// </remarks>
    public static class Replayer
    {
        private const int ChunkSize = 1 << 14;
        // 64 x 64 heat-map cells get 16 samples each on average once a trace is sampled.
        internal const int HeatSampleCapacity = 1 << 16;

        /// <summary>Replays <paramref name="reader"/> to its end.</summary>
        /// <param name="reader">The trace.</param>
        /// <param name="options">Replay settings.</param>
        /// <param name="progress">Called about every 100 ms (and once at the end), on the calling thread; may be null.</param>
        /// <param name="cancellationToken">Checked between chunks.</param>
        /// <returns>The report.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="reader"/> or <paramref name="options"/> is null.</exception>
        /// <exception cref="ArgumentOutOfRangeException">An option is out of range (the message names it).</exception>
        /// <exception cref="OperationCanceledException">The replay was cancelled.</exception>
        public static ReplayReport Run(ITraceReader reader, ReplayOptions options, Action<ReplayProgress>? progress, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(reader);
            ArgumentNullException.ThrowIfNull(options);
            options.Validate();
            Stopwatch setup = Stopwatch.StartNew();
            using ReplayGuest guest = new ReplayGuest(options);
            setup.Stop();
            using TraceStatistics statistics = new TraceStatistics();
            ReplayEngine engine = new ReplayEngine(guest, options);

            // The trace's statistics are taken as each chunk is read (on the reader's thread with
            // read-ahead), its translation here on the caller's.
            Stopwatch sw = Stopwatch.StartNew();
            long lastProgressTicks = 0;
            long progressInterval = Stopwatch.Frequency / 10;
            long translated = 0;
            using (var source = new ChunkSource(reader, ChunkSize, options.ReadAhead ?? Environment.ProcessorCount > 1, statistics.Count, cancellationToken))
            {
                while (source.TryNext(out ReadOnlySpan<TraceAccess> chunk))
                {
                    engine.Translate(chunk);
                    translated += chunk.Length;
                    if (progress is not null && sw.ElapsedTicks - lastProgressTicks >= progressInterval)
                    {
                        lastProgressTicks = sw.ElapsedTicks;
                        progress(MakeProgress(source.Position, translated, sw.Elapsed));
                    }
                }
            }

            engine.Finish(statistics.Total);
            sw.Stop();
            statistics.Finish();
            progress?.Invoke(MakeProgress(reader.Position, statistics.Total, sw.Elapsed));
            return ReportBuilder.Build(options, guest, engine, statistics, reader, sw.Elapsed, setup.Elapsed);
        }

        private static ReplayProgress MakeProgress((long Done, long Total) position, long total, TimeSpan elapsed)
        {
            (long done, long all) = position;
            double rate = elapsed.TotalSeconds > 0 ? total / elapsed.TotalSeconds : 0;
            return new ReplayProgress(total, done, all, rate);
        }
    }
}
