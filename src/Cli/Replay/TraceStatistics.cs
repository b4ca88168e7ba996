// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using FastEpt.Cli.Traces;

namespace FastEpt.Cli.Replay
{
    /// <summary>
    /// The statistics of the trace itself (bytes by kind, per-page counts, working set, heat
    /// map), kept apart from translation: with read-ahead they are gathered on the reader's
    /// thread as each chunk is decoded, while the engine translates the one before.
    /// </summary>
    /// <remarks>
    /// Belongs to one thread at a time (see <see cref="ChunkSource"/>): read the results only
    /// once the chunk source is disposed.
    /// </remarks>
    internal sealed class TraceStatistics : IDisposable
    {
        private const int WorkingSetMaxPoints = 400;

        private readonly long[] _kindBytes = new long[4];
        private readonly PageCounter _pages = new();
        private readonly List<WorkingSetPoint> _workingSet = new();
        private readonly HeatSampler _heat = new();
        private long _wsInterval = 1;
        private long _nextWorkingSet = 1;       // the access (1-based) of the next working-set sample
        private long _nextHeat = 1;             // likewise for the heat map
        private long _sampleCountdown = 1;      // accesses until the nearer of the two
        private long _total;

        /// <summary>Accesses counted.</summary>
        public long Total => _total;

        /// <summary>Bytes accessed, by kind (index 3 catches a kind out of range).</summary>
        public IReadOnlyList<long> KindBytes => _kindBytes;

        /// <summary>Per-page read/write/fetch counts.</summary>
        public PageCounter Pages => _pages;

        /// <summary>The heat-map samples.</summary>
        public HeatSampler Heat => _heat;

        /// <summary>The working-set curve (complete once <see cref="Finish"/> ran).</summary>
        public IReadOnlyList<WorkingSetPoint> WorkingSet => _workingSet;

        public void Dispose()
        {
            _heat.Dispose();
        }

        /// <summary>Counts one chunk (the <see cref="ChunkSource.ChunkAction"/> of a replay).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Count(ReadOnlySpan<TraceAccess> chunk)
        {
            PageCounter pages = _pages;
            ref long bytes = ref MemoryMarshal.GetArrayDataReference(_kindBytes);
            long countdown = _sampleCountdown;
            long done = _total;
            for (int i = 0; i < chunk.Length; i++)
            {
                ref readonly TraceAccess a = ref chunk[i];
                unchecked
                {
                    int k = (int)a.Kind & 3;
                    Unsafe.Add(ref bytes, k) += a.Size;
                    ulong page = a.Address >> EptEntry.PageBits;
                    Unsafe.Add(ref pages.Counters(page), k)++;
                    if (--countdown == 0)
                    {
                        countdown = Sample(done + i + 1, page);
                    }
                }
            }

            _total = done + chunk.Length;
            _sampleCountdown = countdown;
        }

        /// <summary>Ends the working-set curve at the last access.</summary>
        public void Finish()
        {
            if (_workingSet.Count == 0 || _workingSet[^1].Accesses != _total)
            {
                _workingSet.Add(new WorkingSetPoint(_total, _pages.Count));
            }
        }

        // Takes the samples due at access `total` (1-based), of `page`; returns the accesses
        // until the next one.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private long Sample(long total, ulong page)
        {
            if (total == _nextWorkingSet)
            {
                SampleWorkingSet(total);
                _nextWorkingSet = total + _wsInterval;
            }

            if (total == _nextHeat)
            {
                _heat.Add(page);
                _nextHeat = total + _heat.Stride;
            }

            return Math.Min(_nextWorkingSet, _nextHeat) - total;
        }

        private void SampleWorkingSet(long total)
        {
            _workingSet.Add(new WorkingSetPoint(total, _pages.Count));
            if (_workingSet.Count == WorkingSetMaxPoints)
            {
                // Keep the points at multiples of twice the interval.
                int w = SampleThinning.KeepEverySecond(CollectionsMarshal.AsSpan(_workingSet));
                _workingSet.RemoveRange(w, _workingSet.Count - w);
                _wsInterval *= 2;
            }
        }
    }
}
