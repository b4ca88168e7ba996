// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;

namespace FastEpt.Cli.Replay
{
    /// <summary>
    /// The one policy of the replay's bounded samples (working set, heat map): take one every
    /// stride accesses, and when the buffer is full keep every second sample and double the
    /// stride, so a trace of any length fits a fixed number of evenly spaced samples.
    /// </summary>
    internal static class SampleThinning
    {
        /// <summary>
        /// Moves the samples at odd indices to the front of <paramref name="samples"/> and returns
        /// how many there are. Sample j stands for access (j + 1) * stride, so those kept are the
        /// ones at multiples of twice the stride.
        /// </summary>
        public static int KeepEverySecond<T>(Span<T> samples)
        {
            int w = 0;
            for (int r = 1; r < samples.Length; r += 2)
            {
                samples[w++] = samples[r];
            }

            return w;
        }
    }
}
