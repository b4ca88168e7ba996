// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Buffers;
using System.Collections.Generic;

namespace FastEpt.Cli.Replay
{
    /// <summary>
    /// The trace pages of every <see cref="Stride"/>-th access, at most
    /// <see cref="Replayer.HeatSampleCapacity"/> of them (the stride doubles when they fill up),
    /// and the <see cref="HeatMap"/> built from them.
    /// </summary>
    /// <remarks>
    /// The samples (like ChunkSource's buffers) come from the shared array pool, so back-to-back
    /// replays do not churn the large-object heap.
    /// </remarks>
    internal sealed class HeatSampler : IDisposable
    {
        private const int HeatBuckets = 64;

        private readonly ulong[] _heatSamples = ArrayPool<ulong>.Shared.Rent(Replayer.HeatSampleCapacity);
        private int _heatCount;
        private long _heatStride = 1;

        /// <summary>Accesses between two samples.</summary>
        public long Stride => _heatStride;

        public void Dispose()
        {
            ArrayPool<ulong>.Shared.Return(_heatSamples);
        }

        /// <summary>Takes the sample of the access due, to <paramref name="page"/>.</summary>
        public void Add(ulong page)
        {
            // Sample j stands for access (j + 1) * stride (1-based).
            _heatSamples[_heatCount++] = page;
            if (_heatCount == Replayer.HeatSampleCapacity)
            {
                _heatCount = SampleThinning.KeepEverySecond(_heatSamples.AsSpan(0, _heatCount));
                _heatStride *= 2;
            }
        }

        // Columns split the distinct pages touched (all of them, from the page counters) in
        // address order; each sample lands in the column of its page's rank.
        public HeatMap Build(long total, ulong[] distinct)
        {
            int d = distinct.Length;
            if (_heatCount == 0 || d == 0)
            {
                return new HeatMap(Array.Empty<long[]>(), Array.Empty<ulong>(), 0, _heatStride);
            }

            int columns = Math.Min(HeatBuckets, d);
            ulong[] starts = new ulong[columns];
            for (int b = 0; b < columns; b++)
            {
                starts[b] = distinct[(int)((long)b * d / columns)] << EptEntry.PageBits;
            }

            int rows = (int)Math.Min(HeatBuckets, total);
            long perRow = (total + rows - 1) / rows;
            long[][] counts = new long[rows][];
            for (int r = 0; r < rows; r++)
            {
                counts[r] = new long[columns];
            }

            // Page -> column, looked up once per sample (cheaper than a binary search).
            var column = new Dictionary<ulong, int>(d);
            for (int rank = 0; rank < d; rank++)
            {
                column.Add(distinct[rank], (int)((long)rank * columns / d));
            }

            for (int j = 0; j < _heatCount; j++)
            {
                long accessIndex = ((j + 1) * _heatStride) - 1;
                counts[(int)(accessIndex / perRow)][column[_heatSamples[j]]] += _heatStride;
            }

            return new HeatMap(counts, starts, perRow, _heatStride);
        }
    }
}
