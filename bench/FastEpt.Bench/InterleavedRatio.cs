// SPDX-License-Identifier: MIT
// Copyright (c) 2026 FastEpt contributors

using System;
using System.Diagnostics;
using FastEpt.Interop;

namespace FastEpt.Bench
{
    /// <summary>
    /// <c>--ratio</c>: managed against native walks on the default guest, measured interleaved.
    /// On a shared, noisy machine BenchmarkDotNet's one-benchmark-after-another runs can see
    /// different machine states; here every round times each contender once over the same GPAs,
    /// back to back, and the per-contender medians over many rounds give the ratios.
    /// </summary>
    internal static class InterleavedRatio
    {
        private const int GpaCount = 4096;
        private const int Rounds = 301;
        private const int RepeatsPerRound = 8;

        public static int Run()
        {
            using DefaultGuest guest = DefaultGuest.Create();
            P2m p2m = guest.P2m;
            var native = new NativeWalker(p2m);
            ulong[] gpas = DefaultGuest.RandomGpas(GpaCount, 20260401);
            var results = new EptTranslation[GpaCount];
            guest.Verify(gpas);

            (string Name, Func<ulong> Body)[] contenders =
            {
                ("managed Translate (scalar)", () =>
                {
                    ulong sum = 0;
                    for (int i = 0; i < gpas.Length; i++)
                    {
                        sum += p2m.Translate(gpas[i], AccessKind.Read).Hpa;
                    }

                    return sum;
                }),
                ("native translate (P/Invoke per GPA)", () =>
                {
                    ulong sum = 0;
                    for (int i = 0; i < gpas.Length; i++)
                    {
                        sum += native.Translate(gpas[i], AccessKind.Read).Hpa;
                    }

                    return sum;
                }),
                ("managed TranslateBatch", () =>
                {
                    p2m.TranslateBatch(gpas, AccessKind.Read, results);
                    return results[^1].Hpa;
                }),
                ("native translate_batch", () =>
                {
                    native.TranslateBatch(gpas, AccessKind.Read, results);
                    return results[^1].Hpa;
                }),
            };

            double[][] samples = new double[contenders.Length][];
            for (int c = 0; c < contenders.Length; c++)
            {
                samples[c] = new double[Rounds];
                for (int warm = 0; warm < 50; warm++)
                {
                    contenders[c].Body();   // tiering: reach the optimized code before timing
                }
            }

            ulong sink = 0;
            for (int round = 0; round < Rounds; round++)
            {
                for (int c = 0; c < contenders.Length; c++)
                {
                    long start = Stopwatch.GetTimestamp();
                    for (int r = 0; r < RepeatsPerRound; r++)
                    {
                        sink += contenders[c].Body();
                    }

                    long ticks = Stopwatch.GetTimestamp() - start;
                    samples[c][round] = ticks * 1e9 / Stopwatch.Frequency / (RepeatsPerRound * (double)GpaCount);
                }
            }

            Console.WriteLine($"Interleaved medians over {Rounds} rounds of {RepeatsPerRound} x {GpaCount} walks (default guest, 4K pages, read):");
            double[] medians = new double[contenders.Length];
            for (int c = 0; c < contenders.Length; c++)
            {
                Array.Sort(samples[c]);
                medians[c] = samples[c][Rounds / 2];
                Console.WriteLine($"  {contenders[c].Name,-38} {medians[c],7:F2} ns/walk");
            }

            Console.WriteLine($"  managed scalar / native scalar      = {medians[0] / medians[1]:F2}");
            Console.WriteLine($"  managed batch  / native batch       = {medians[2] / medians[3]:F2}");
            Console.WriteLine($"  managed scalar / native batch       = {medians[0] / medians[3]:F2}");
            Console.WriteLine($"(checksum {sink:X})");
            return 0;
        }
    }
}
